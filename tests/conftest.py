"""Fixtures: a moto server per test session, a fresh namespace per test, the real RabbitMQ.

Every test gets its own namespace prefix, so its exchanges, queues, tables and buckets are its
own; broker objects are deleted afterwards, the moto server is stopped at the end of the run.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import uuid
from collections.abc import AsyncIterator, Iterator

import aio_pika
import pytest

from devstack.local_stack import RABBITMQ_START_HINT, MotoServer
from devstack.testing.memory_aws import ENDPOINT as MEMORY_ENDPOINT
from devstack.testing.memory_aws import memory_aws
from emulators.settings import LocalSettings
from shared.aws import AwsClients
from shared.bus import PIPELINE_TOPOLOGY, Bus, Topology
from shared.resources import provision
from shared.settings import Settings

RUN_ID = uuid.uuid4().hex[:6]
_counter = itertools.count()
AMQP_URL = os.environ.get("LAVA_BROKER__AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    server = MotoServer(port=0)  # bound by start(), then handed to the server process
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def rabbitmq() -> str:
    async def check() -> None:
        connection = await aio_pika.connect(AMQP_URL, timeout=5)
        await connection.close()

    try:
        asyncio.run(check())
    except Exception as exc:
        pytest.fail(
            f"RabbitMQ is not reachable at {AMQP_URL} ({exc!r}); start it with: "
            f"{RABBITMQ_START_HINT}",
            pytrace=False,
        )
    return AMQP_URL


def new_namespace() -> str:
    return f"t{RUN_ID}-{next(_counter)}"


@pytest.fixture
def namespace() -> str:
    return new_namespace()


@pytest.fixture
async def settings(
    namespace: str, moto_server: MotoServer, rabbitmq: str
) -> AsyncIterator[LocalSettings]:
    """Settings for one test: its own namespace, the session's moto server, fast retries.

    Every production group and the emulator's (``LocalSettings``); change them with
    ``settings.replace(group__name=value)``.

    Whatever the test declared on the broker under its namespace is deleted afterwards.
    """
    value = _test_settings(namespace, moto_server, rabbitmq)
    yield value
    cleanup = Bus(value, CLEANUP_TOPOLOGY, client_name="lava-test-cleanup")
    await cleanup.connect(verify=False)
    try:
        await cleanup.delete_topology()
    finally:
        await cleanup.close()


# Every consumer and mailbox a test may declare (the pipeline's and the bus tests' probe).
CLEANUP_TOPOLOGY = Topology(
    consumers={**PIPELINE_TOPOLOGY.consumers, "probe": ("ClipFailed",)},
    mailboxes=PIPELINE_TOPOLOGY.mailboxes,
)


def _test_settings(namespace: str, moto_server: MotoServer | None, rabbitmq: str) -> LocalSettings:
    return LocalSettings.load(
        namespace=namespace,
        aws__endpoint_url=moto_server.endpoint if moto_server else MEMORY_ENDPOINT,
        broker__amqp_url=rabbitmq,
        broker__delivery_limit=2,
        broker__redelivery_backoff_seconds=0.05,
        broker__redelivery_backoff_max_seconds=0.2,
        broker__publish_retry_seconds=20,
        runtime__shutdown_grace_seconds=10,
        runtime__health_port=0,
        log__format="console",
        aws__max_attempts=3,
        # Unit and integration tests get the kind emulator; the realistic one is the default
        # elsewhere (demo, end-to-end) and in the tests written for it.
        emulator__profile="ideal",
    )


@pytest.fixture
async def aws(settings: Settings) -> AsyncIterator[AwsClients]:
    async with AwsClients(settings) as clients:
        await provision(clients, settings.names)
        yield clients


# Policy scenarios run twice: on AWS in this process (milliseconds, no server) and on the
# moto server (marked integration). The code under test and moto's semantics are the same;
# only the transport differs (devstack/testing/memory_aws.py).
AWS_BACKENDS = ["memory", pytest.param("moto", marks=pytest.mark.integration)]


@pytest.fixture(params=AWS_BACKENDS)
def aws_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def policy_settings(
    aws_backend: str, namespace: str, request: pytest.FixtureRequest
) -> LocalSettings:
    """Test settings on the scenario's AWS backend (the in-process one needs no server)."""
    if aws_backend == "memory":
        return _test_settings(namespace, None, AMQP_URL)
    server: MotoServer = request.getfixturevalue("moto_server")
    return _test_settings(namespace, server, request.getfixturevalue("rabbitmq"))


@pytest.fixture
async def policy_aws(aws_backend: str, policy_settings: Settings) -> AsyncIterator[AwsClients]:
    """Provisioned AWS clients on the scenario's backend."""
    in_process = aws_backend == "memory"
    clients = memory_aws(policy_settings) if in_process else AwsClients(policy_settings)
    async with clients:
        await provision(clients, policy_settings.names)
        yield clients


@pytest.fixture
async def bus(settings: Settings) -> AsyncIterator[Bus]:
    instance = Bus(settings, PIPELINE_TOPOLOGY, client_name="lava-test", declare=True)
    await instance.connect()
    try:
        yield instance
    finally:
        await instance.delete_topology()
        await instance.close()
