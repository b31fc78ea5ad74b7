"""`lava control`: the control service (API + dashboard) and its tokens."""

from __future__ import annotations

import click


@click.group()
def control() -> None:
    """The control service: HTTP API and operator dashboard."""


@control.command("token")
@click.option("--name", required=True, help="Who the token is for (shown in audit lines).")
@click.option(
    "--role",
    type=click.Choice(["viewer", "operator"]),
    required=True,
    help="viewer reads; operator also creates, retries and stops.",
)
def token(name: str, role: str) -> None:
    """Make a random API token. Give the token to its holder; put the printed entry in
    LAVA_CONTROL__TOKENS (comma-separated; the service keeps only the hash)."""
    from services.control.auth import Role, new_token

    if not name.replace("-", "").replace("_", "").isalnum():
        raise click.BadParameter("letters, digits, - and _ only", param_hint="--name")
    secret, entry = new_token(name, Role(role))
    click.echo(f"token  {secret}")
    click.echo(f"entry  {entry}")


@control.command("serve")
def serve() -> None:
    """Run the control service in the foreground (LAVA_CONTROL__HOST:LAVA_CONTROL__PORT)."""
    from services.control.service import main

    main()
