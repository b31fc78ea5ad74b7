"""One broker identity per component, enforced by the real RabbitMQ.

The users of one namespace are created once for this module (``rabbitmqctl`` costs ~1 s per
call) under a namespace of their own, and deleted afterwards, so parallel runs never collide.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aio_pika
import pytest

from devstack.local_stack import MotoServer
from devstack.testing.events import clip_failed, clip_ingested
from lava.rig import upload_clip
from services.ingest.service import build as build_ingest
from shared.aws import AwsClients
from shared.broker_identities import (
    BY_COMPONENT,
    IDENTITIES,
    allowed_users,
    definitions,
    permissions,
    publishers,
    username,
)
from shared.broker_provision import delete_identities, provision_identities
from shared.bus import Bus, PublishFailed, TopologyMissing
from shared.events import PAYLOAD_TYPES, Event, LevelCompleted, new_event
from shared.resources import provision
from shared.runtime import ServiceRuntime
from shared.settings import Settings, load_settings
from tests.conftest import CLEANUP_TOPOLOGY, new_namespace
from tests.support.broker import get_messages, wait_until
from tests.support.clips import small_clip

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def identities(
    tmp_path_factory: pytest.TempPathFactory, moto_server: MotoServer, rabbitmq: str
) -> Iterator[tuple[Settings, Any]]:
    """The namespace's users (provisioned once) and its topology, declared by the provisioner."""
    state = tmp_path_factory.mktemp("broker")
    base = load_settings(
        namespace=new_namespace(),
        broker__amqp_url=rabbitmq,
        aws__endpoint_url=moto_server.endpoint,
        state_dir=state,
        broker__delivery_limit=1,
        broker__redelivery_backoff_seconds=0.01,
        broker__publish_retry_seconds=5,
        # any free port: a fixed one (8080) collides with another suite running beside this one
        runtime__health_port=0,
    )
    urls: dict[str, str] = {}

    def as_component(component: str) -> Settings:
        return base.replace(broker__amqp_url=urls[component])

    async def provision() -> None:
        async with Bus(as_component("provisioner"), CLEANUP_TOPOLOGY, declare=True):
            pass

    try:
        urls.update(asyncio.run(provision_identities(base)))
        asyncio.run(provision())
        yield base, as_component
    finally:

        async def cleanup() -> None:
            bus = Bus(base, CLEANUP_TOPOLOGY)
            await bus.connect(verify=False)
            await bus.delete_topology()
            await bus.close()

        asyncio.run(cleanup())
        delete_identities(base)


def test_the_table_covers_every_component_and_event() -> None:
    components = {i.component for i in IDENTITIES}
    assert components >= {
        "rig",
        "ingest",
        "dispatcher",
        "listener",
        "postproc",
        "emulator",
        "operator",
        "control",
        "provisioner",
    }
    assert publishers("ClipIngested") == {"rig", "operator", "control"}
    assert publishers("LevelCompleted") == publishers("TaskExpired") == {"listener"}
    assert publishers("LevelFailed") == {"listener"}
    # every event type has a publisher (a new type needs a row here, or nobody may send it)
    assert all(publishers(p.EVENT_TYPE) for p in PAYLOAD_TYPES)
    assert allowed_users("prod", "LabelsFinalized") == {"prod-dispatcher"}
    names = load_settings(namespace="prod", aws__endpoint_url="http://x").names
    # nobody but the provisioner configures anything
    assert {permissions(i, names).configure for i in IDENTITIES if not i.declares} == {"^$"}
    doc = definitions(names, {"rig": "placeholder"})
    assert [u["name"] for u in doc["users"]] == ["prod-rig"]
    assert "placeholder" not in json.dumps(doc)  # only the salted hash is rendered


async def test_each_component_may_publish_only_its_own_event_types(
    identities: tuple[Settings, Any],
) -> None:
    base, as_component = identities
    rig = Bus(as_component("rig"), CLEANUP_TOPOLOGY)
    await rig.connect()  # passive: the rig may not declare, and need not
    try:
        await rig.publish(new_event(clip_ingested("clip-rig"), "clip-rig"))  # confirmed
        forged = new_event(
            LevelCompleted(
                task_id="clip-rig.vehicles",
                job_name="VOTVehicle",
                data_object_id="0",
                dedup_key="clip-rig.vehicles/1-abcd/VOTVehicle/0",
                label_attribute="VOTVehicle-ref",
                label_uri="s3://evil/labels.json",
            ),
            "clip-rig.vehicles",
        )
        with pytest.raises(PublishFailed, match=r"ACCESS_REFUSED.*LevelCompleted"):
            await rig.publish(forged)
        # the refusal closed a channel, not the rig: it carries on
        await rig.publish(new_event(clip_ingested("clip-rig-2"), "clip-rig-2"))
    finally:
        await rig.close()
    # nothing forged arrived; the good events did
    arrived = await get_messages(base, base.names.queue("ingest"), 2)
    assert [json.loads(m.body)["payload"]["clip_id"] for m in arrived] == [
        "clip-rig",
        "clip-rig-2",
    ]
    assert await get_messages(base, base.names.queue("dispatcher"), 1, timeout=0.5) == []


async def test_the_broker_refuses_a_forged_user_id_and_configuring(
    identities: tuple[Settings, Any],
) -> None:
    _, as_component = identities
    rig = as_component("rig")
    connection = await aio_pika.connect(rig.broker.amqp_url.get_secret_value())
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(rig.names.exchange)
        body = new_event(clip_ingested("clip-x"), "clip-x").model_dump_json().encode()
        with pytest.raises(Exception, match=r"PRECONDITION_FAILED.*user_id"):
            await exchange.publish(
                aio_pika.Message(body, user_id=username(rig.namespace, "listener")),
                routing_key="ClipIngested",
            )
        channel = await connection.channel()
        with pytest.raises(Exception, match="ACCESS_REFUSED"):
            await channel.declare_queue(f"{rig.namespace}.evil", durable=True)
        channel = await connection.channel()
        with pytest.raises(Exception, match="ACCESS_REFUSED"):
            queue = await channel.get_queue(rig.names.queue("dispatcher"))
            await queue.get(fail=False)
    finally:
        await connection.close()


async def test_a_consumer_refuses_events_from_a_user_not_allowed_to_publish_them(
    identities: tuple[Settings, Any],
) -> None:
    """The broker admin (guest) can publish anything; the dispatcher, running as its own
    identity, dead-letters what the table does not let that user publish."""
    base, as_component = identities
    dispatcher = Bus(as_component("dispatcher"), CLEANUP_TOPOLOGY)
    handled: list[str] = []

    async def handler(event: Event[Any]) -> None:
        handled.append(event.payload.reason)

    await dispatcher.connect()
    assert dispatcher.checks_origin
    await dispatcher.consume("dispatcher", handler)
    admin = Bus(base, CLEANUP_TOPOLOGY)
    postproc = Bus(as_component("postproc"), CLEANUP_TOPOLOGY)
    try:
        await admin.connect()
        await postproc.connect()
        await admin.publish(clip_failed("clip-f", reason="from the admin"))
        await postproc.publish(clip_failed("clip-g", reason="from postproc"))
        await wait_until(lambda: handled == ["from postproc"], timeout=15)
        (dead,) = await get_messages(base, base.names.dead_letter_queue("dispatcher"), 1)
        reason = str(dead.headers["x-lava-dead-reason"])
        assert "published by broker user 'guest'" in reason
        assert username(base.namespace, "postproc") in reason
    finally:
        await admin.close()
        await postproc.close()
        await dispatcher.close()


async def test_services_declare_nothing_and_say_when_the_topology_is_missing(
    identities: tuple[Settings, Any], tmp_path: Path
) -> None:
    _, as_component = identities
    ingest = as_component("ingest")
    unprovisioned = load_settings(
        namespace=f"{ingest.namespace}-none",
        broker__amqp_url=ingest.broker.amqp_url,
        aws__endpoint_url=ingest.aws.endpoint_url,
    )
    with pytest.raises(TopologyMissing, match="lava stack provision"):
        await Bus(unprovisioned, CLEANUP_TOPOLOGY).connect()
    assert BY_COMPONENT["emulator"].publishes == ()


async def test_a_service_runs_under_its_own_identity(
    identities: tuple[Settings, Any], tmp_path: Path
) -> None:
    """Ingest as ``<ns>-ingest``, fed by the rig as ``<ns>-rig``: the table's rights suffice
    for the real work, and what ingest publishes carries its validated identity."""
    base, as_component = identities
    ingest_settings, rig_settings = as_component("ingest"), as_component("rig")
    clip = small_clip(tmp_path, seconds=1, gop=10)
    async with AwsClients(base) as aws:
        await provision(aws, base.names)
        runtime = ServiceRuntime("ingest", ingest_settings, consumer="ingest")
        await build_ingest(runtime)
        task = asyncio.create_task(runtime.run(install_signals=False))
        try:
            await wait_until(lambda: runtime.ready, timeout=20)
            good = await upload_clip(
                rig_settings,
                clip.video,
                clip.labels.drive,
                clip.labels.clip,
                fps=1,
                workflows=["vehicles"],
                aws=aws,
            )
            rig = Bus(rig_settings, CLEANUP_TOPOLOGY)
            await rig.connect()
            try:
                foreign = clip_ingested("clip-foreign", video_uri="s3://someone-else/raw/x.mp4")
                await rig.publish(new_event(foreign, "clip-foreign"))
            finally:
                await rig.close()
            out = await get_messages(base, base.names.queue("dispatcher"), 2, timeout=60)
        finally:
            runtime.request_stop()
            await task
    events = {m.type: m for m in out}
    assert set(events) == {"FramesReady", "ClipFailed"}
    assert json.loads(events["FramesReady"].body)["payload"]["clip_id"] == good.clip_id
    assert {m.user_id for m in out} == {username(base.namespace, "ingest")}
