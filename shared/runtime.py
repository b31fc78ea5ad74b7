"""The runner every service uses: connect, declare, consume, serve health, drain on SIGTERM.

A service builds its handlers from the runtime's ports (``bus``, ``aws``, ``metrics``), registers
them with :meth:`ServiceRuntime.handle` (and background loops with :meth:`add_loop`), then calls
:meth:`run`. The runtime owns everything about the process lifecycle:

- readiness (``/readyz``) is false until the broker is connected and consuming, and again
  whenever the connection is down; liveness (``/healthz``) only says the loop is alive;
- ``/metrics`` serves Prometheus counters of handled/failed messages per type and latency;
- the health server serves on the socket its starter handed down (``shared/listening.py``),
  else on ``health_host:health_port`` (0 = any free; :attr:`ServiceRuntime.health_port`);
- SIGTERM/SIGINT stop consuming, let in-flight handlers and loops finish (within
  ``shutdown_grace_seconds``), then close the broker and AWS clients.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, Generic, Literal, TypeVar, cast

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.exposition import generate_latest

from shared import fault_hooks, tracing
from shared.acking import Reject
from shared.aws import CALL_TIMES, AwsClients
from shared.bus import PIPELINE_TOPOLOGY, Bus, Topology
from shared.events import (
    ClipFailed,
    ClipIngested,
    Event,
    EventPayload,
    FramesReady,
    LabelsFinalized,
    bounded_reason,
    derived_event_id,
    new_event,
)
from shared.listening import exit_when_unservable, port_of, server_socket
from shared.loops import pause
from shared.ports import AnyHandler, Handler
from shared.settings import ServiceSettings

log = structlog.get_logger(__name__)

Loop = Callable[[asyncio.Event], Awaitable[None]]
P = TypeVar("P", bound=EventPayload)
S = TypeVar("S", bound=ServiceSettings)
# A runtime on richer settings serves a build that needs fewer groups.
S_co = TypeVar("S_co", bound=ServiceSettings, covariant=True)

# Consumers whose dead-lettered clip events become a ClipFailed, and the stage they report.
FAILURE_STAGES: dict[str, Literal["ingest", "dispatch", "postproc"]] = {
    "ingest": "ingest",
    "dispatcher": "dispatch",
    "postproc": "postproc",
}
CLIP_EVENTS = (ClipIngested, FramesReady, LabelsFinalized)


class _AwsCallCollector:
    """AWS calls made by this process: count and seconds per service and operation."""

    def __init__(self, service: str) -> None:
        self.service = service

    def collect(self) -> Any:
        calls = CounterMetricFamily(
            "lava_aws_calls", "AWS calls made, per operation.", labels=["service", "aws", "op"]
        )
        seconds = CounterMetricFamily(
            "lava_aws_call_seconds",
            "Time spent in AWS calls (retries included).",
            labels=["service", "aws", "op"],
        )
        for (aws, op), (count, total) in sorted(CALL_TIMES.items()):
            calls.add_metric([self.service, aws, op], count)
            seconds.add_metric([self.service, aws, op], total)
        yield calls
        yield seconds


def _injected(aws_service: str) -> float:
    return float(fault_hooks.injected(aws_service))


class RuntimeMetrics:
    """Prometheus metrics of one service process, in its own registry."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry()
        self.messages = Counter(
            "lava_messages",
            "Bus messages by event type and outcome (handled, requeued, dead_lettered).",
            ["service", "event_type", "outcome"],
            registry=self.registry,
        )
        self.handler_seconds = Histogram(
            "lava_handler_seconds",
            "Time from delivery to settlement, per event type.",
            ["service", "event_type"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
        )
        self.broker_connected = Gauge(
            "lava_broker_connected",
            "1 while the broker connection is up.",
            ["service"],
            registry=self.registry,
        )

    def record(self, event_type: str, outcome: str, seconds: float) -> None:
        self.messages.labels(self.service, event_type, outcome).inc()
        self.handler_seconds.labels(self.service, event_type).observe(seconds)

    def counter(self, name: str, documentation: str, labels: tuple[str, ...] = ()) -> Counter:
        return Counter(name, documentation, ["service", *labels], registry=self.registry)

    def gauge(self, name: str, documentation: str, labels: tuple[str, ...] = ()) -> Gauge:
        return Gauge(name, documentation, ["service", *labels], registry=self.registry)

    def histogram(self, name: str, documentation: str, labels: tuple[str, ...] = ()) -> Histogram:
        return Histogram(name, documentation, ["service", *labels], registry=self.registry)


class ServiceRuntime(Generic[S_co]):
    """One service process; ``settings`` is that service's model (its groups only)."""

    def __init__(
        self,
        name: str,
        settings: S_co,
        *,
        consumer: str | None = None,
        topology: Topology = PIPELINE_TOPOLOGY,
        uses_bus: bool = True,
    ) -> None:
        self.name = name
        self.settings = settings
        self.consumer = consumer
        self.uses_bus = uses_bus
        self.bus = Bus(settings, topology, client_name=f"lava-{name}")
        self.aws = AwsClients(settings)
        self.metrics = RuntimeMetrics(name)
        self._handlers: dict[str, AnyHandler] = {}
        self._loops: list[tuple[str, Loop]] = []
        self._readiness: list[Callable[[], bool]] = []
        self._stop = asyncio.Event()
        self._loop_tasks: list[asyncio.Task[None]] = []
        self._consumer: Any = None
        self._consuming = False
        self._web_runner: web.AppRunner | None = None
        self._started = False
        self.health_port: int | None = None
        self.metrics.broker_connected.labels(name).set_function(
            lambda: 1.0 if self.bus.connected else 0.0
        )
        faults = self.metrics.gauge(
            "lava_aws_faults_injected", "AWS calls answered with an injected throttle.", ("aws",)
        )
        for aws_service in ("s3", "sns", "sqs", "dynamodb"):
            faults.labels(name, aws_service).set_function(partial(_injected, aws_service))
        self.metrics.registry.register(_AwsCallCollector(name))

    # --- wiring -----------------------------------------------------------------------------
    def handle(self, event: type[P], handler: Handler[P]) -> None:
        """Subscribe ``handler`` to one event type; mypy checks the handler takes that event.

        The consumer's queue must be bound to the type, or the subscription could never fire.
        """
        name = event.EVENT_TYPE
        if self.consumer is None:
            raise ValueError(f"{self.name} has no consumer queue to subscribe {name} on")
        bound = self.bus.topology.consumers.get(self.consumer, ())
        if name not in bound:
            raise ValueError(
                f"{self.name}: queue {self.consumer!r} is not bound to {name} "
                f"(bound: {', '.join(bound) or 'nothing'}); add it to the topology"
            )
        self._handlers[name] = cast(AnyHandler, handler)

    def add_loop(self, name: str, loop: Loop) -> None:
        """A background coroutine; it gets the stop event and should return once it is set."""
        self._loops.append((name, loop))

    def add_readiness_check(self, check: Callable[[], bool]) -> None:
        self._readiness.append(check)

    @property
    def stopping(self) -> asyncio.Event:
        return self._stop

    def request_stop(self) -> None:
        # Close the consumer's gate at once: a message delivered from now on is not started,
        # even before shutdown() gets to cancel the subscription.
        if self._consumer is not None:
            self._consumer.close_gate()
        self._stop.set()

    @property
    def ready(self) -> bool:
        if not self._started or self._stop.is_set():
            return False  # a stopping replica takes no new work: out of the endpoints at once
        if self.uses_bus and not self.bus.connected:
            return False
        if self.consumer is not None and not self._consuming:
            return False
        return all(check() for check in self._readiness)

    async def _dispatch(self, event: Event[Any]) -> None:
        handler = self._handlers.get(event.type)
        if handler is None:
            raise Reject(f"{self.name} has no handler for {event.type}")
        await handler(event)

    async def _report_failure(self, event: Event[Any], reason: str) -> None:
        """A clip's event this service gave up on ends as a visible ClipFailed, not only a
        dead letter (an operator sees it in `lava status` and the outcomes mailbox)."""
        stage = FAILURE_STAGES.get(self.consumer or "")
        clip_id = getattr(event.payload, "clip_id", None)
        if stage is None or not isinstance(event.payload, CLIP_EVENTS) or clip_id is None:
            return
        task_id = getattr(event.payload, "task_id", None)
        await self.bus.publish(
            new_event(
                ClipFailed(
                    clip_id=clip_id, task_id=task_id, stage=stage, reason=bounded_reason(reason)
                ),
                event.correlation_id,
                event_id=derived_event_id(event.event_id, "ClipFailed", "dead-lettered"),
            )
        )

    # --- lifecycle --------------------------------------------------------------------------
    async def run(self, *, install_signals: bool = True) -> None:
        """Start, serve until SIGTERM/SIGINT (or :meth:`request_stop`), then shut down cleanly."""
        if install_signals:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self._on_signal, sig)
        try:
            await self.start()
            await self._stop.wait()
        finally:
            await self.shutdown()

    def _on_signal(self, sig: signal.Signals) -> None:
        log.info("stop requested", signal=sig.name)
        self.request_stop()

    async def start(self) -> None:
        await self._start_health_server()
        if self.uses_bus:
            await self._connect_bus()
        if self._stop.is_set():
            return
        if self.consumer is not None:
            self._consumer = await self.bus.consume(
                self.consumer,
                self._dispatch,
                on_outcome=self.metrics.record,
                on_dead=self._report_failure,
            )
            self._consuming = True
        for name, loop_fn in self._loops:
            self._loop_tasks.append(asyncio.create_task(self._run_loop(name, loop_fn)))
        self._started = True
        log.info("service started", consumer=self.consumer, health_port=self.health_port)

    async def _connect_bus(self) -> None:
        # A broker that is down at start-up is waited for, not a crash loop; readiness says so.
        delay = 1.0
        while not self._stop.is_set():
            try:
                await self.bus.connect()
                return
            except Exception as exc:
                log.warning("broker unavailable; retrying", error=repr(exc), retry_in=delay)
                await pause(self._stop, delay)
                delay = min(delay * 2, 15.0)

    async def _run_loop(self, name: str, loop_fn: Loop) -> None:
        # A loop that crashes is restarted after a pause; it must never take the service down.
        while not self._stop.is_set():
            try:
                await loop_fn(self._stop)
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("background loop failed; restarting", loop=name)
                await pause(self._stop, 1.0)

    async def shutdown(self) -> None:
        self._stop.set()
        grace = self.settings.runtime.shutdown_grace_seconds
        if self._consumer is not None:
            log.info("draining", in_flight=self._consumer.in_flight)
            await self._consumer.stop(grace=grace)
            self._consuming = False
        if self._loop_tasks:
            _, pending = await asyncio.wait(self._loop_tasks, timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self.bus.close()
        await self.aws.close()
        if self._web_runner is not None:
            await self._web_runner.cleanup()
        log.info("service stopped")

    # --- health and metrics -----------------------------------------------------------------
    async def _start_health_server(self) -> None:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        runtime = self.settings.runtime
        # A socket handed down by whoever started this process, else the configured address.
        sock = server_socket("health", runtime.health_host, runtime.health_port)
        self._web_runner = runner
        await web.SockSite(runner, sock).start()
        self.health_port = port_of(sock)

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "service": self.name})

    async def _readyz(self, request: web.Request) -> web.Response:
        ready = self.ready
        body = {
            "ready": ready,
            "service": self.name,
            "broker_connected": self.bus.connected,
            "consuming": self._consuming,
        }
        return web.json_response(body, status=200 if ready else 503)

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(self.metrics.registry),
            headers={"Content-Type": CONTENT_TYPE_LATEST},
        )


Build = Callable[[ServiceRuntime[S]], Awaitable[None]]


def run_service(
    name: str,
    build: Build[S],
    *,
    settings: S,
    consumer: str | None = None,
    topology: Topology = PIPELINE_TOPOLOGY,
    uses_bus: bool = True,
) -> None:
    """Entry point of ``python -m services.<name>``: logging, wiring, run, on the settings
    the service loaded (``XSettings.load()``: only its own groups)."""
    from shared.logging import configure_logging

    configure_logging(settings, name)
    if uses_bus:
        exit_unless_identity(settings, name)
    tracing.configure(name)  # only if OTEL_* asks for traces

    async def main() -> None:
        runtime = ServiceRuntime(
            name, settings, consumer=consumer, topology=topology, uses_bus=uses_bus
        )
        await build(runtime)
        await runtime.run()

    try:
        with exit_when_unservable():
            asyncio.run(main())
    finally:
        tracing.shutdown()  # flush the spans still batched


def exit_unless_identity(settings: ServiceSettings, component: str) -> None:
    """Stop (one line, exit 2) a service whose broker user is not its component identity,
    unless the settings say this is a local all-in-one run."""
    from urllib.parse import urlsplit

    from shared.broker_identities import identity_problem

    user = urlsplit(settings.broker.amqp_url.get_secret_value()).username or ""
    problem = identity_problem(settings.namespace, user, component)
    if problem and not settings.broker.local_all_in_one:
        print(f"refusing to start: {problem}", file=sys.stderr)
        raise SystemExit(2)
