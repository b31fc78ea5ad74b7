"""`lava stack up|status|down`: the local AWS stand-in and the broker topology."""

from __future__ import annotations

import asyncio
import shutil
import sys

import aio_pika
import click
from pydantic import SecretStr

from lava.commands import settings_and_logging
from lava.output import json_option, print_json, show, table
from shared.aws import AwsClients
from shared.broker_identities import username
from shared.broker_provision import BrokerAdminError, provision_identities, secrets_path
from shared.bus import Bus
from shared.resources import provision
from shared.settings import Settings, load_settings, redact_url

port_option = click.option(
    "--port", type=int, default=4566, show_default=True, help="Port of the moto server."
)
up_port_option = click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=4566,
    show_default=True,
    help="Port of the moto server (0 = any free one; the output names it).",
)


@click.group()
def stack() -> None:
    """The local stack: a moto server for AWS, plus the namespace's resources."""


def _settings_for(port: int) -> Settings:
    settings_and_logging()
    return load_settings(aws__endpoint_url=f"http://127.0.0.1:{port}")


async def provision_namespace(settings: Settings, *, declare_broker: bool = True) -> str | None:
    """Create the namespace's bucket, tables and broker topology; the broker error, if any."""
    async with AwsClients(settings) as aws:
        await provision(aws, settings.names)
    if not declare_broker:
        return None
    try:
        async with Bus(settings, client_name="lava-cli", declare=True):
            pass  # connecting declares the topology
    except Exception as exc:
        return repr(exc)
    return None


async def broker_problem(settings: Settings) -> str | None:
    try:
        connection = await aio_pika.connect(settings.broker.amqp_url.get_secret_value(), timeout=3)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    await connection.close()
    return None


@stack.command("up")
@up_port_option
def up(port: int) -> None:
    """Start a moto server in the background and provision the namespace (idempotent)."""
    # Local tooling, imported here: `lava stack provision` runs in the production image,
    # which does not hold devstack.
    from devstack.local_stack import RABBITMQ_START_HINT, MotoServer, StackState

    base = load_settings()
    state = StackState(base.state_dir)
    known = state.load(port) if port else None
    if known is not None and known.pid is not None:
        click.echo(f"moto server already running on {known.endpoint} (pid {known.pid})")
    else:
        base.state_dir.mkdir(parents=True, exist_ok=True)
        # Binding is the check: a port in use fails here, with nothing started.
        server = MotoServer(port=port, log_path=base.state_dir / "moto-{port}.log")
        try:
            server.start()
        except RuntimeError as exc:
            message = str(exc)
            if "already in use" in message:
                message = (
                    f"port {port} is in use by something `lava stack up` did not start; "
                    "use --port to pick another (0 = any free one)"
                )
            raise click.ClickException(message) from None
        port = server.port
        state.save(server)
        click.echo(f"moto server started on {server.endpoint} (pid {server.pid})")
    settings = _settings_for(port)
    broker_error = asyncio.run(provision_namespace(settings))
    click.echo(
        f"provisioned namespace {settings.namespace!r}: bucket {settings.names.bucket}, tables"
    )
    if broker_error:
        click.echo(
            f"RabbitMQ not reachable at {_redact(settings.broker.amqp_url)} ({broker_error}); "
            f"the topology is declared when it is. Start it with: {RABBITMQ_START_HINT}",
            err=True,
        )
    else:
        click.echo(f"declared the broker topology on exchange {settings.names.exchange}")
    click.echo(f"export AWS_ENDPOINT_URL=http://127.0.0.1:{port}")


@stack.command("provision")
@click.option(
    "--identities/--no-identities",
    default=None,
    help="Create one broker user per component (shared/broker_identities.py) with "
    "rabbitmqctl; default: when rabbitmqctl is on PATH.",
)
def provision_cmd(identities: bool | None) -> None:
    """Create the namespace's bucket, tables and broker topology where AWS_ENDPOINT_URL points
    (or in real AWS when it is unset), and the broker users of its components. Idempotent;
    used by docker-compose and the k8s Job."""
    settings = settings_and_logging()
    broker_error = asyncio.run(provision_namespace(settings))
    where = settings.aws.endpoint_url or f"AWS {settings.aws.region}"
    click.echo(f"provisioned namespace {settings.namespace!r} in {where}")
    if broker_error:
        raise click.ClickException(
            f"RabbitMQ not reachable at {_redact(settings.broker.amqp_url)}: {broker_error}"
        )
    if identities is None:
        identities = shutil.which("rabbitmqctl") is not None
    if identities:
        try:
            urls = asyncio.run(provision_identities(settings))
        except BrokerAdminError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(
            f"broker users {', '.join(username(settings.namespace, c) for c in urls)}; "
            f"their AMQP URLs (secret) are in {secrets_path(settings)} (mode 600)"
        )


@stack.command("status")
@port_option
@json_option
def status(port: int, as_json: bool) -> None:
    """Report the AWS endpoint and RabbitMQ reachability; exit 1 if either is down (--json:
    each component's address, state and next step)."""
    from devstack.local_stack import RABBITMQ_START_HINT, StackState, endpoint_answers

    base = load_settings()
    endpoint = base.aws.endpoint_url or f"http://127.0.0.1:{port}"
    settings = load_settings(aws__endpoint_url=endpoint)
    known = StackState(base.state_dir).load(port)
    aws_up = endpoint_answers(endpoint)
    problem = asyncio.run(broker_problem(settings))
    components = [
        {
            "component": "AWS endpoint",
            "address": endpoint,
            "up": aws_up,
            "pid": known.pid if known is not None else None,
            "problem": None if aws_up else "does not answer",
            "next_step": None if aws_up else f"start it with: lava stack up --port {port}",
        },
        {
            "component": "RabbitMQ",
            "address": _redact(settings.broker.amqp_url),
            "up": problem is None,
            "pid": None,
            "problem": problem,
            "next_step": None if problem is None else f"start it with: {RABBITMQ_START_HINT}",
        },
    ]
    healthy = aws_up and problem is None
    if as_json:
        print_json({"namespace": settings.namespace, "healthy": healthy, "components": components})
    else:
        show(
            f"namespace {settings.namespace}",
            table(
                ("COMPONENT", "ADDRESS", "STATE", "PID", "NEXT STEP"),
                (
                    (
                        c["component"],
                        c["address"],
                        "up" if c["up"] else f"DOWN ({c['problem']})",
                        c["pid"],
                        c["next_step"],
                    )
                    for c in components
                ),
            ),
        )
    sys.exit(0 if healthy else 1)


@stack.command("down")
@port_option
def down(port: int) -> None:
    """Stop the moto server `lava stack up` started on PORT."""
    from devstack.local_stack import StackState

    state = StackState(load_settings().state_dir)
    server = state.load(port)
    if server is None or server.pid is None:
        state.forget(port)
        click.echo(f"no moto server started by `lava stack up` is running on port {port}")
        return
    pid = server.pid
    server.stop()
    state.forget(port)
    click.echo(f"stopped moto server on port {port} (pid {pid})")


def _redact(url: SecretStr) -> str:
    return redact_url(url.get_secret_value())
