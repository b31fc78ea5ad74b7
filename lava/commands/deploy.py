"""`lava deploy`: render and check the deployment artefacts that derive from the code."""

from __future__ import annotations

import json

import click


@click.group()
def deploy() -> None:
    """IAM policies and broker definitions for deploy/ (rendered from the code)."""


@deploy.command("iam")
@click.option("--write", is_flag=True, help="Rewrite deploy/iam/<component>.json.")
@click.option(
    "--why",
    nargs=2,
    metavar="COMPONENT OPERATION",
    help="Show the call chains behind a grant, e.g. --why provision CreateLabelingJob.",
)
def iam(write: bool, why: tuple[str, str] | None) -> None:
    """The AWS operations each deployed component calls, as IAM policies."""
    from lava.deploy.aws_calls import CallGraph, explain, usage
    from lava.deploy.iam import components, policy, write_all

    graph = CallGraph()
    by_name = {c.name: c for c in components()}
    if why:
        name, operation = why
        if name not in by_name:
            raise click.ClickException(f"unknown component {name!r}: {', '.join(by_name)}")
        chains = explain(by_name[name], operation, graph)
        if not chains:
            raise click.ClickException(f"{name} does not call {operation}")
        for chain in chains:
            click.echo(chain)
        return
    if write:
        for path in write_all():
            click.echo(f"wrote {path}")
        return
    for component in by_name.values():
        document = policy(usage(component, graph), component.name)
        click.echo(f"# {component.name}\n{json.dumps(document, indent=2)}")


@deploy.command("broker-passwords")
@click.argument("template", type=click.Path(exists=True, dir_okay=False))
@click.argument("out", type=click.Path(dir_okay=False, writable=True))
def broker_passwords(template: str, out: str) -> None:
    """Fill TEMPLATE's password hashes from LAVA_BROKER_PASSWORD_<COMPONENT> into OUT
    (LAVA_NAMESPACE names the namespace; only hashes are written)."""
    from pathlib import Path

    from lava.deploy.broker import with_passwords
    from shared.settings import load_settings

    namespace = load_settings().namespace
    document = json.loads(Path(template).read_text())
    try:
        filled, given = with_passwords(document, namespace)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    Path(out).write_text(json.dumps(filled, indent=2))
    total = len(filled["users"])
    click.echo(f"{len(given)} of {total} user(s) have a password: {', '.join(given) or '-'}")


@deploy.command("broker-prune")
@click.argument("definitions", type=click.Path(exists=True, dir_okay=False))
@click.option("--keep", multiple=True, help="A user to keep although the definitions omit it.")
@click.option("--apply", is_flag=True, help="Delete them (default: only list them).")
def broker_prune(definitions: str, keep: tuple[str, ...], apply: bool) -> None:
    """Delete the broker users DEFINITIONS does not name - `guest`, the default admin -
    with rabbitmqctl on the broker's host (run after importing the definitions)."""
    from pathlib import Path

    from lava.deploy.broker import users_to_delete
    from shared.broker_provision import BrokerAdminError, delete_user, list_users

    document = json.loads(Path(definitions).read_text())
    try:
        stale = users_to_delete(list_users(), document, keep)
        for user in stale:
            if apply:
                delete_user(user)
            click.echo(f"{'deleted' if apply else 'would delete'} broker user {user}")
    except BrokerAdminError as exc:
        raise click.ClickException(str(exc)) from None
    if not stale:
        click.echo("no broker user outside the definitions")
