"""`lava config`: the effective settings and their documentation."""

from __future__ import annotations

import json

import click

from shared.settings import Settings, load_settings


@click.group()
def config() -> None:
    """Settings (LAVA_* environment variables)."""


@config.command("show")
def show() -> None:
    """Print the effective settings as JSON."""
    click.echo(json.dumps(load_settings().model_dump(mode="json"), indent=2))


@config.command("table")
def table() -> None:
    """Print the settings as the Markdown table in the README."""
    click.echo(settings_table())


def env_name(field: str) -> str:
    return f"LAVA_{field.upper()}"


def settings_table() -> str:
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        shown = "(unset)" if default is None else f"`{default}`"
        rows.append(f"| `{env_name(name)}` | {shown} | {field.description or ''} |")
    return "\n".join(rows)
