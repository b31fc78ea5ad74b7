"""Malformed and oversized events on the real broker: refused with a reason, nothing stuck.

Each attack is published raw (as a client outside the project would) into a consumer's queue
next to good events; the bad ones end in the dead-letter queue with a reason at the first
delivery, the good ones are handled.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import pytest

from devstack.testing.events import clip_failed, clip_ingested
from shared.acking import deliveries_before
from shared.bus import DEAD_REASON_HEADER, Bus, Topology
from shared.events import Event, decode_event, new_event
from shared.runtime import RuntimeMetrics
from shared.settings import Settings
from tests.support.broker import get_messages, provision_topology, wait_until

pytestmark = pytest.mark.integration

TOPOLOGY = Topology(consumers={"probe": ("ClipFailed", "ClipIngested", "LevelCompleted")})


def _ingested(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(
        new_event(clip_ingested("clip-ok"), "clip-ok").model_dump_json()
    )
    body["payload"].update(changes)
    return body


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


LONG_ROUTE = {
    "drive_id": "drive-1",
    "weather": "clear",
    "time_of_day": "daytime",
    "route": "r" * 5000,
}

ATTACKS: dict[str, tuple[bytes, str]] = {
    "too-large": (b'{"pad": "' + b"x" * 300_000 + b'"}', "larger than"),
    "nan": (json.dumps(_ingested(fps=float("nan"))).encode(), "non-finite"),
    "overflow": (json.dumps(_ingested()).replace('"fps": 1.0', '"fps": 1e400').encode(), "finite"),
    "nan-string": (json.dumps(_ingested(fps="nan")).encode(), "fps"),
    "deep": (json.dumps(_ingested(extra=_nested(100))).encode(), "nests deeper"),
    "very-deep": (b'{"a":' * 5000 + b"1" + b"}" * 5000, "nests deeper"),
    "long-string": (json.dumps(_ingested(drive=LONG_ROUTE)).encode(), "drive.route"),
    "long-list": (
        json.dumps(_ingested(workflows=[f"w{i}" for i in range(500)])).encode(),
        "workflows",
    ),
    "unknown-type": (json.dumps({**_ingested(), "type": "Evil" * 10}).encode(), "type"),
}


@pytest.fixture
async def probe(settings: Settings) -> AsyncIterator[tuple[Bus, list[Event[Any]], RuntimeMetrics]]:
    await provision_topology(settings, TOPOLOGY)
    bus = Bus(settings, TOPOLOGY, client_name="lava-test-security")
    await bus.connect()
    handled: list[Event[Any]] = []
    metrics = RuntimeMetrics("probe")

    async def handler(event: Event[Any]) -> None:
        handled.append(event)

    await bus.consume("probe", handler, on_outcome=metrics.record)
    try:
        yield bus, handled, metrics
    finally:
        await bus.close()


async def _publish_raw(settings: Settings, body: bytes, routing_key: str, **props: Any) -> None:
    connection = await aio_pika.connect(settings.broker.amqp_url.get_secret_value())
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(settings.names.exchange)
        await exchange.publish(aio_pika.Message(body, **props), routing_key=routing_key)
    finally:
        await connection.close()


async def test_malformed_events_are_dead_lettered_with_a_reason_and_good_ones_pass(
    settings: Settings, probe: Any
) -> None:
    bus, handled, metrics = probe
    await bus.publish(clip_failed("before", reason="before"))
    for name, (body, _) in ATTACKS.items():
        await _publish_raw(settings, body, "ClipIngested", message_id=name)
    # a forged routing key / type must not become a metric label
    await _publish_raw(settings, b"{}", "ClipIngested", message_id="typed", type="x" * 200)
    await bus.publish(clip_failed("after", reason="after"))

    await wait_until(lambda: len(handled) == 2, timeout=20)
    assert [e.payload.reason for e in handled] == ["before", "after"]
    dead = await get_messages(settings, settings.names.dead_letter_queue("probe"), len(ATTACKS) + 1)
    reasons = {m.message_id: str(m.headers[DEAD_REASON_HEADER]) for m in dead}
    for name, (_, expected) in ATTACKS.items():
        assert expected in reasons[name], (name, reasons[name])
    assert all(len(r) <= 2000 for r in reasons.values())
    labels = {s.labels["event_type"] for s in metrics.messages.collect()[0].samples}
    assert labels <= {"ClipFailed", "ClipIngested", "unknown"}


async def test_forged_delivery_count_headers_neither_stick_nor_dead_letter_at_once(
    settings: Settings, probe: Any
) -> None:
    _, handled, _ = probe
    good = new_event(clip_ingested("clip-h"), "clip-h").model_dump_json().encode()
    forged: list[Any] = ["abc", 2**62, -5, 3.5, {"nested": 1}, [1, 2], True]
    for value in forged:
        await _publish_raw(settings, good, "ClipIngested", headers={"x-delivery-count": value})
    await wait_until(lambda: len(handled) == len(forged), timeout=20)
    assert (
        await get_messages(settings, settings.names.dead_letter_queue("probe"), 1, timeout=0.5)
        == []
    )


def test_delivery_count_parsing_is_defensive() -> None:
    assert deliveries_before({"x-delivery-count": 3}) == 3
    assert deliveries_before({"x-delivery-count": "2"}) == 2
    for bad in ("abc", -5, 3.5, {"a": 1}, [1], b"\xff", True, None, 10**30):
        assert deliveries_before({"x-delivery-count": bad}) == 0
    assert deliveries_before(None) == 0


def test_decode_refuses_what_would_overflow_or_recurse() -> None:
    for body, _ in ATTACKS.values():
        with pytest.raises(ValueError):
            decode_event(body)
