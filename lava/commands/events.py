"""`lava events`: the event contracts."""

from __future__ import annotations

import json

import click

from shared.events import PAYLOAD_TYPES, InvalidEvent, event_json_schema


@click.group()
def events() -> None:
    """Event contracts on the bus."""


@events.command("schema")
@click.argument("event_type")
@click.option("--version", "version", type=int, default=None, help="Default: the newest.")
def schema(event_type: str, version: int | None) -> None:
    """Print the JSON Schema of EVENT_TYPE's envelope (what a publisher must send)."""
    try:
        click.echo(json.dumps(event_json_schema(event_type, version), indent=2))
    except InvalidEvent as exc:
        raise click.ClickException(str(exc)) from None


@events.command("list")
def list_events() -> None:
    """List event types and versions."""
    for model in PAYLOAD_TYPES:
        summary = " ".join((model.__doc__ or "").strip().split("\n\n")[0].split())
        click.echo(f"{model.EVENT_TYPE}\tv{model.VERSION}\t{summary}")
