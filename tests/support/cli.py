"""Reading what the `lava` CLI prints when piped (``lava.output``): plain tables, cells two or
more blanks apart, an empty cell shown as ``-``."""

from __future__ import annotations

import re

_GAP = re.compile(r"\s{2,}")


def table_rows(text: str, first_column: str) -> list[dict[str, str]]:
    """The rows of the table whose header starts with ``first_column``, each by column name."""
    lines = text.splitlines()
    start = next(
        (i for i, line in enumerate(lines) if _GAP.split(line.strip())[0] == first_column), None
    )
    assert start is not None, f"no table headed {first_column!r} in:\n{text}"
    header = _GAP.split(lines[start].strip())
    rows = []
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        cells = _GAP.split(line.strip())
        assert len(cells) == len(header), f"{line!r} does not fit {header}"
        rows.append(dict(zip(header, cells, strict=True)))
    return rows


def field_values(text: str) -> dict[str, str]:
    """The ``name  value`` lines a show command starts with (up to the first blank line)."""
    values = {}
    for line in text.splitlines():
        if not line.strip():
            break
        name, value = _GAP.split(line.strip(), maxsplit=1)
        values[name] = value
    return values
