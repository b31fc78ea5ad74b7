"""Tracing's cost: the bus hooks off vs on in process, and the whole pipeline off vs on.

1. In process (no broker): N events through the in-memory bus (publish + process, a trivial
   handler) with tracing off, then on (SDK, sampled at 100%, batch processor, an exporter
   that drops the spans): microseconds per message, and what one hook call costs while off.
2. The local pipeline (moto, RabbitMQ, emulator, four services as processes, instant
   workforce, as bench/pipeline_bench.py): the same clips with tracing off, then on (every
   service exports OTLP/HTTP, sampled at 100%, to a sink in this process that counts spans),
   alternating for ``--rounds`` rounds: clips per minute of each run.

    python -m bench.tracing_bench [--events 20000] [--clips 4] [--size 640x360]
        [--seconds 4] [--rounds 2] [--skip-pipeline]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_ON

from bench.pipeline_bench import WORKFLOWS, run_clips
from devstack.testing.events import clip_ingested
from devstack.testing.memory_bus import InMemoryBus
from lava.sample_clips import SampleSpec, make_sample
from shared import tracing
from shared.events import new_event
from shared.listening import listen, port_of
from shared.settings import Settings
from shared.tracing.otel import OtelTracing
from shared.tracing.provider import SkipOrphanAwsCalls


class _Dropping(SpanExporter):
    """Exports nowhere: the SDK's own cost, without any I/O."""

    def __init__(self) -> None:
        self.spans = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans += len(spans)
        return SpanExportResult.SUCCESS


async def bus_seconds(events: int) -> float:
    settings = Settings.load(namespace="tracebench")
    bus = InMemoryBus(settings)

    async def handle(event: Any) -> None:
        return None

    await bus.consume("ingest", handle)
    batch = [new_event(clip_ingested(f"clip-{i}"), f"clip-{i}") for i in range(events)]
    started = time.perf_counter()
    for event in batch:
        await bus.publish(event)
    await bus.drain(max_deliveries=events + 1)
    return time.perf_counter() - started


def hook_ns_while_off(calls: int = 200_000) -> float:
    headers: dict[str, Any] = {}
    started = time.perf_counter_ns()
    for _ in range(calls):
        with tracing.publishing("x", "ClipIngested", "e", "c", headers):
            pass
    return (time.perf_counter_ns() - started) / calls


async def in_process(events: int) -> None:
    tracing.install(None)
    await bus_seconds(min(events, 2000))  # warm-up
    off = [await bus_seconds(events) for _ in range(3)]
    exporter = _Dropping()
    provider = TracerProvider(sampler=SkipOrphanAwsCalls(ALWAYS_ON))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracing.install(OtelTracing(provider, aws=False))
    try:
        on = [await bus_seconds(events) for _ in range(3)]
    finally:
        tracing.install(None)
        provider.shutdown()
    off_us, on_us = (statistics.median(x) / events * 1e6 for x in (off, on))
    print(f"in-memory bus, {events} events (publish + process), median of 3 runs:")
    print(f"  tracing off  {off_us:7.1f} us/message")
    print(f"  tracing on   {on_us:7.1f} us/message  (+{on_us - off_us:.1f} us; 2 spans/message)")
    print(f"  one hook call while off: {hook_ns_while_off():.0f} ns")
    print(f"  spans exported while on: {exporter.spans}")


class OtlpSink:
    """An OTLP/HTTP receiver on loopback that counts what the services export."""

    def __init__(self) -> None:
        self.sock = listen()  # bound now: nothing can take the port before the sink serves
        self.port = port_of(self.sock)
        self.spans = 0
        self.traces: set[bytes] = set()
        self.services: set[str] = set()
        self._runner: web.AppRunner | None = None

    async def receive(self, request: web.Request) -> web.Response:
        message = ExportTraceServiceRequest()
        message.ParseFromString(await request.read())
        for resource_spans in message.resource_spans:
            for attribute in resource_spans.resource.attributes:
                if attribute.key == "service.name":
                    self.services.add(attribute.value.string_value)
            for scope in resource_spans.scope_spans:
                self.spans += len(scope.spans)
                self.traces.update(span.trace_id for span in scope.spans)
        return web.Response(body=b"", content_type="application/x-protobuf")

    async def __aenter__(self) -> OtlpSink:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/traces", self.receive)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.SockSite(self._runner, self.sock).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


async def pipeline_run(work: Path, clips: list[Any], traced: bool, sink: OtlpSink) -> float:
    """One pipeline run; clips per minute. OTEL_* reach the processes through the env."""
    names = {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink.port}",
        "OTEL_TRACES_SAMPLER": "always_on",
    }
    for name, value in names.items():
        if traced:
            os.environ[name] = value
        else:
            os.environ.pop(name, None)
    try:
        for attempt in range(3):
            try:
                run = await run_clips(work / f"run-{time.time_ns()}", clips, fps=1)
                break
            except RuntimeError as exc:  # a service not ready within 60 s on a busy machine
                if "not ready" not in str(exc) or attempt == 2:
                    raise
                print(f"  ({exc}; starting again)", flush=True)
    finally:
        for name in names:
            os.environ.pop(name, None)
    failed = [s for s in run.states if s is None or s.value != "completed"]
    if failed:
        raise SystemExit(f"clips did not complete: {failed}")
    return len(run.uploaded) / run.wall * 60


async def pipeline(args: argparse.Namespace) -> None:
    width, height = (int(x) for x in args.size.split("x"))
    work = Path(tempfile.mkdtemp(prefix="lava-tracing-bench-"))
    clips = [
        await asyncio.to_thread(
            make_sample,
            work / "clips",
            SampleSpec(seconds=args.seconds, width=width, height=height, seed=700 + i),
        )
        for i in range(args.clips)
    ]
    results: dict[bool, list[float]] = {False: [], True: []}
    async with OtlpSink() as sink:
        for _ in range(args.rounds):
            for traced in (False, True):
                rate = await pipeline_run(work, clips, traced, sink)
                results[traced].append(rate)
                label = "on " if traced else "off"
                print(f"  tracing {label}: {rate:6.1f} clips/min", flush=True)
    print(
        f"pipeline, {args.clips} clips x {len(WORKFLOWS)} workflows x 2 levels, {args.size}, "
        f"{args.seconds:g} s, instant workforce, {args.rounds} rounds:"
    )
    for traced, rates in results.items():
        label = "on (100%, OTLP/HTTP)" if traced else "off"
        print(f"  tracing {label:<22} median {statistics.median(rates):6.1f} clips/min {rates}")
    print(f"  the sink received {sink.spans} spans in {len(sink.traces)} traces")
    print(f"  from {sorted(sink.services)}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--clips", type=int, default=4)
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--skip-pipeline", action="store_true")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}", flush=True)
    await in_process(args.events)
    if not args.skip_pipeline:
        await pipeline(args)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    asyncio.run(main())
