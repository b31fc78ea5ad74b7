"""`lava config`: the effective settings and their documentation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from lava.output import json_option, print_json, show, table
from shared.settings import Settings, load_settings


@click.group()
def config() -> None:
    """Settings (LAVA_* environment variables)."""


@config.command("show")
@json_option
def show_cmd(as_json: bool) -> None:
    """Show the effective settings, secrets masked (--json: one object, nested as the settings
    are)."""
    values = load_settings().model_dump(mode="json")
    if as_json:
        print_json(values)
        return
    show(table(("SETTING", "VALUE"), flatten(values)))


def flatten(values: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """``(dotted name, value)`` for every leaf of a settings dump (nested groups as
    ``group.name``); a value that is not a plain string as JSON writes it (``null``, ``""``)."""
    rows: list[tuple[str, str]] = []
    for name, value in values.items():
        if isinstance(value, dict) and value:
            rows += flatten(value, f"{prefix}{name}.")
        else:
            text = value if isinstance(value, str) and value else json.dumps(value)
            rows.append((f"{prefix}{name}", text))
    return rows


@config.command("table")
@click.option(
    "--write",
    "readme",
    type=click.Path(dir_okay=False),
    default=None,
    help="Replace the table between the settings-table markers in this file (the README).",
)
def table_cmd(readme: str | None) -> None:
    """Print the settings as the Markdown table in the README (or update it there)."""
    if readme is None:
        click.echo(settings_table())
        return
    path = Path(readme)
    path.write_text(replace_table(path.read_text()))
    click.echo(f"updated the settings table in {path}")


START, END = "<!-- settings-table:start -->", "<!-- settings-table:end -->"


def replace_table(text: str) -> str:
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{settings_table()}\n{END}{tail}"


def env_name(field: str) -> str:
    return f"LAVA_{field.upper()}"


def settings_table() -> str:
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        shown = "(unset)" if default is None else f"`{default}`"
        rows.append(f"| `{env_name(name)}` | {shown} | {field.description or ''} |")
    return "\n".join(rows)
