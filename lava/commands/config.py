"""`lava config`: the effective settings and their documentation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from pydantic import BaseModel

from lava.output import json_option, print_json, show, table
from shared.settings import env_name, load_settings, settings_fields


@click.group()
def config() -> None:
    """Settings (LAVA_* environment variables, LAVA_<GROUP>__<NAME> within a group)."""


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
    help="Replace the tables between the settings-table markers in this file "
    "(docs/reference/settings.md).",
)
def table_cmd(readme: str | None) -> None:
    """Print the settings as the Markdown tables of docs/reference/settings.md (or update them
    there)."""
    if readme is None:
        click.echo(settings_table())
        return
    path = Path(readme)
    path.write_text(replace_table(path.read_text()))
    click.echo(f"updated the settings tables in {path}")


START, END = "<!-- settings-table:start -->", "<!-- settings-table:end -->"


def replace_table(text: str) -> str:
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{settings_table()}\n{END}{tail}"


def processes() -> dict[str, type[BaseModel]]:
    """Which model each process loads (its groups are all it reads)."""
    from devstack.faults import FaultSettings
    from emulators.settings import EmulatorSettings
    from shared.settings import (
        ControlSettings,
        DispatcherSettings,
        IngestSettings,
        ListenerSettings,
        PostprocSettings,
        Settings,
    )

    return {
        "ingest": IngestSettings,
        "dispatcher": DispatcherSettings,
        "listener": ListenerSettings,
        "postproc": PostprocSettings,
        "control": ControlSettings,
        "CLI": Settings,
        "the emulators": EmulatorSettings,
        "`python -m lava.drill` only": FaultSettings,
    }


def documented_variables() -> dict[str, tuple[str | None, str]]:
    """Every variable any process reads -> (group, name)."""
    found: dict[str, tuple[str | None, str]] = {}
    for model in processes().values():
        for group, name, _ in settings_fields(model):
            found[env_name(group, name)] = (group, name)
    return found


def settings_table() -> str:
    models = processes()
    sections: dict[str | None, list[str]] = {}
    described: dict[str | None, str] = {}
    readers: dict[str | None, list[str]] = {}
    for process, model in models.items():
        for group, name, field in settings_fields(model):
            if group is not None and group not in described:
                group_type = model.model_fields[group].annotation
                described[group] = (getattr(group_type, "__doc__", "") or "").strip()
            if process not in readers.setdefault(group, []):
                readers[group].append(process)
            rows = sections.setdefault(group, [])
            variable = f"`{env_name(group, name)}`"
            if any(row.startswith(f"| {variable} ") for row in rows):
                continue
            default = field.get_default(call_default_factory=True)
            shown = "(unset)" if default is None else f"`{default}`"
            rows.append(f"| {variable} | {shown} | {field.description or ''} |")
    out: list[str] = []
    for group, rows in sections.items():
        if group is None:
            out += ["**top level**", ""]
        else:
            doc = " ".join(described[group].split())
            out += [f"**`{group}`** - {doc} Read by: {', '.join(readers[group])}.", ""]
        out += ["| variable | default | meaning |", "|---|---|---|", *rows, ""]
    return "\n".join(out).rstrip()
