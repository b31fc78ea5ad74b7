"""Wiring of the listener: SQS in, the bus out, Prometheus counters."""

from __future__ import annotations

import asyncio

from services.listener.listener import Listener, Metrics
from shared.plugins import load
from shared.runtime import ServiceRuntime, run_service
from shared.settings import ListenerSettings

# Named, not imported: only a listener configured for Label Studio loads its code.
LABEL_STUDIO_SIDE = "services.listener.labelstudio_service:add_labelstudio"


def make_listener(runtime: ServiceRuntime[ListenerSettings]) -> Listener:
    m, name = runtime.metrics, runtime.name
    received = m.counter("lava_listener_received", "Output messages received from SQS.")
    translated = m.counter("lava_listener_translated", "Outputs translated, per event.", ("kind",))
    unparseable = m.counter("lava_listener_unparseable", "Outputs that could not be parsed.")
    unknown = m.counter("lava_listener_unknown_key", "Outputs whose key matches no data object.")
    refused = m.counter(
        "lava_listener_refused", "Outputs refused by a trust check (moved to the DLQ)."
    )
    key_checks = m.counter(
        "lava_listener_key_checks",
        "How outputs' keys were checked: by their seal (no request) or looked up (a Query).",
        ("how",),
    )
    latency = m.histogram(
        "lava_listener_receive_to_publish_seconds", "From receiving an output to its confirm."
    )
    metrics = Metrics(
        received=lambda n: received.labels(name).inc(n),
        translated=lambda kind: translated.labels(name, kind).inc(),
        unparseable=lambda: unparseable.labels(name).inc(),
        unknown_key=lambda: unknown.labels(name).inc(),
        refused=lambda: refused.labels(name).inc(),
        key_checked=lambda how: key_checks.labels(name, how).inc(),
        latency=lambda s: latency.labels(name).observe(s),
    )
    return Listener(runtime.settings, runtime.aws, runtime.bus.publish, metrics)


async def build(runtime: ServiceRuntime[ListenerSettings]) -> None:
    listener = make_listener(runtime)
    lock = asyncio.Lock()
    started = asyncio.Event()

    async def receiving(stop: asyncio.Event) -> None:
        # The queue and subscriptions are set up once, by whichever loop gets here first
        # (retried by the runtime if AWS is not reachable yet).
        async with lock:
            if not started.is_set():
                await listener.start()
                started.set()
        await listener.receive_loop(stop)

    runtime.add_readiness_check(started.is_set)
    for i in range(runtime.settings.listener.concurrency):
        runtime.add_loop(f"receive-{i}", receiving)
    runtime.add_loop("refresh", listener.refresh_loop)
    runtime.add_loop("deletes", listener.deletes.run)
    if runtime.settings.labelstudio.url:
        load(LABEL_STUDIO_SIDE)(runtime, listener.metrics.key_checked)


def main() -> None:
    run_service("listener", build, settings=ListenerSettings.load_or_exit())
