"""`lava events`: the event contracts."""

from __future__ import annotations

import json

import click

from lava.output import json_option, print_json, show, table
from shared.events import PAYLOAD_TYPES, InvalidEvent, event_json_schema


@click.group()
def events() -> None:
    """Event contracts on the bus."""


@events.command("schema")
@click.argument("event_type")
@click.option(
    "--version", "version", type=int, default=None, help="Contract version (default: the newest)."
)
def schema(event_type: str, version: int | None) -> None:
    """Print the JSON Schema of EVENT_TYPE's envelope (what a publisher must send)."""
    try:
        click.echo(json.dumps(event_json_schema(event_type, version), indent=2))
    except InvalidEvent as exc:
        raise click.ClickException(str(exc)) from None


@events.command("list")
@json_option
def list_events(as_json: bool) -> None:
    """List event types and versions (--json: type, version and summary of each)."""
    found = [
        {
            "type": model.EVENT_TYPE,
            "version": model.VERSION,
            "summary": " ".join((model.__doc__ or "").strip().split("\n\n")[0].split()),
        }
        for model in PAYLOAD_TYPES
    ]
    if as_json:
        print_json(found)
        return
    show(
        table(
            ("TYPE", "VERSION", "SUMMARY"),
            ((e["type"], f"v{e['version']}", e["summary"]) for e in found),
        )
    )
