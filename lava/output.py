"""What the CLI prints: tables through rich, or one JSON document with ``--json``.

Every list and show command takes :data:`json_option`; with it the command prints exactly one
JSON document on stdout (:func:`print_json`), otherwise tables (:func:`table`, :func:`fields`)
shown with :func:`show`. Errors never come through here: they go to stderr as one line
(``lava.errors``, click's usage errors), with a non-zero exit code, in both modes.

On a terminal the tables get a header rule and bold headers and fit the window. Piped (a file,
``grep``, ``awk``, a test) they are plain text: no colour or cursor codes (rich writes none when
stdout is not a terminal), no box characters, one row per line however long (the console is as
wide as the widest row instead of 80 columns, so nothing wraps), no trailing blanks.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import click
from pydantic import TypeAdapter
from rich import box
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

# Width of the console when stdout is not a terminal: wide enough that no row wraps.
PIPE_WIDTH = 100_000
# What an empty cell shows, so a piped row keeps its column count for `awk`.
EMPTY = "-"
# Serialises whatever a command hands over the way model_dump(mode="json") would.
_JSONABLE = TypeAdapter(Any)

json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON document instead of tables."
)


def print_json(data: Any) -> None:
    """``data`` (pydantic models, dataclasses, lists and dicts of them) as one JSON document."""
    click.echo(json.dumps(_JSONABLE.dump_python(data, mode="json"), indent=2))


def cell(value: object) -> Text:
    """A table cell: the value's text on one line (blanks and line breaks collapsed, so a piped
    row stays one line with cells two blanks apart), never read as rich markup (a reason may
    hold ``[...]``)."""
    text = " ".join(str("" if value is None else value).split())
    return Text(text or EMPTY)


def _terminal() -> bool:
    return Console().is_terminal


def table(
    columns: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    title: str | None = None,
    numeric: Iterable[str] = (),
    wrap: Iterable[str] | None = None,
) -> Table:
    """A table with ``columns`` and ``rows``; without rows only its title shows.

    ``numeric`` columns are right-aligned. On a terminal too narrow for the table, the ``wrap``
    columns (default: the last one, where prose such as a reason goes) wrap onto more lines
    first; the others keep an id on one line and end in an ellipsis only when nothing else
    can give way.
    """
    right = set(numeric)
    prose = set(columns[-1:] if wrap is None else wrap)
    terminal = _terminal()
    cells = [[cell(value) for value in row] for row in rows]
    out = Table(
        title=title,
        title_justify="left",
        title_style="bold" if terminal else "",
        # the header rule's box draws a blank between columns: pad on one side only, so
        # columns stand two blanks apart on a terminal as in a pipe
        box=box.SIMPLE_HEAD if terminal else None,
        padding=(0, 1, 0, 0) if terminal else (0, 1),
        show_edge=False,
        show_header=bool(cells),
        pad_edge=False,
        header_style="bold" if terminal else "",
    )
    for name in columns:
        out.add_column(
            name,
            justify="right" if name in right else "left",
            no_wrap=name not in prose,
            overflow="fold" if name in prose else "ellipsis",
        )
    for row in cells:
        out.add_row(*row)
    return out


def fields(pairs: Iterable[tuple[str, object]], *, title: str | None = None) -> Table:
    """A show command's header: one ``name  value`` line per pair."""
    terminal = _terminal()
    out = Table(
        title=title,
        title_justify="left",
        title_style="bold" if terminal else "",
        box=None,
        show_header=False,
        pad_edge=False,
    )
    out.add_column(style="bold" if terminal else "", no_wrap=True)
    out.add_column(overflow="fold")
    for name, value in pairs:
        out.add_row(Text(name), cell(value))
    return out


def show(*parts: RenderableType | str) -> None:
    """Print tables and plain lines (taken literally, never as markup) one after another, with
    a blank line between a table and what comes before or after it. A table's title is a line
    of its own (rich would wrap it to the table's width)."""
    console = Console(highlight=False)
    spaced: list[RenderableType] = []
    after_table = False
    for part in parts:
        is_table = isinstance(part, Table)
        if isinstance(part, Table) and part.row_count == 0 and part.title is None:
            continue  # nothing to show
        if spaced and (is_table or after_table):
            spaced.append(Text(""))
        if isinstance(part, Table) and part.title is not None:
            spaced.append(Text(str(part.title), style=part.title_style or ""))
            part.title = None
        spaced.append(Text(part) if isinstance(part, str) else part)
        after_table = is_table
    if console.is_terminal:
        for part in spaced:
            console.print(part)
        return
    console.width = PIPE_WIDTH
    with console.capture() as captured:
        for part in spaced:
            console.print(part)
    for line in captured.get().splitlines():
        click.echo(line.rstrip())
