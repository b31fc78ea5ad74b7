"""`lava demo`: the local pipeline, start to finish, on this machine."""

from __future__ import annotations

import asyncio

import click

from lava.commands.stack import broker_problem, provision_namespace
from shared.local_stack import RABBITMQ_START_HINT, MotoServer, free_port
from shared.settings import load_settings


@click.command()
def demo() -> None:
    """Bring up a local stack (moto server + the machine's RabbitMQ), provision, report, stop."""
    server = MotoServer(port=free_port())
    server.start()
    try:
        settings = load_settings(aws_endpoint_url=server.endpoint)
        problem = asyncio.run(broker_problem(settings))
        if problem:
            raise click.ClickException(
                f"RabbitMQ is not reachable ({problem}); start it with: {RABBITMQ_START_HINT}"
            )
        asyncio.run(provision_namespace(settings))
        click.echo(f"AWS (moto) at {server.endpoint}; RabbitMQ at {settings.amqp_url}")
        click.echo(f"namespace {settings.namespace}: bucket, tables and topology provisioned")
    finally:
        server.stop()
