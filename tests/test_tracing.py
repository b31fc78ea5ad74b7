"""Tracing: off unless OTEL_* asks; W3C context through the bus; one clip, one trace."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import structlog
import yaml
from opentelemetry.trace import SpanKind, StatusCode

from devstack.testing.events import clip_failed, clip_ingested
from devstack.testing.memory_bus import InMemoryBus
from emulators.settings import LocalSettings
from lava.sample_clips import upload_sample
from services.dispatcher.service import build as dispatcher
from services.ingest.service import build as ingest
from services.listener.service import build as listener
from services.postproc.service import build as postproc
from shared import tracing
from shared.acking import Reject
from shared.aws import AwsClients
from shared.dedup import trace_headers
from shared.events import ClipIngested, Event, new_event
from shared.logging import configure_logging
from shared.settings import Settings
from shared.tracing.config import TracingRequest
from tests.security.test_labelstudio_claims import sent_to_label_studio
from tests.support.broker import wait_until
from tests.support.clips import small_clip
from tests.support.control import control_service
from tests.support.deploy import kubectl, rendered_text
from tests.support.dispatch import create_jobs, dispatch_settings
from tests.support.e2e import wait_for_clips
from tests.support.gt import emulator, emulator_settings
from tests.support.services import running
from tests.support.tracing import (
    console_spans,
    is_aws_call,
    orphans,
    parent_of,
    trace_of,
    traced,
)

ROOT = Path(__file__).resolve().parents[1]


# --- configuration --------------------------------------------------------------------------
def test_tracing_is_off_unless_otel_variables_ask_for_it() -> None:
    assert not TracingRequest.from_env({}).enabled
    assert not TracingRequest.from_env({"OTEL_SERVICE_NAME": "x"}).enabled
    assert not TracingRequest.from_env({"OTEL_TRACES_EXPORTER": "none"}).enabled
    assert TracingRequest.from_env({"OTEL_TRACES_EXPORTER": "console"}).exporters == ("console",)
    endpoint = TracingRequest.from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert endpoint.exporters == ("otlp",)
    assert endpoint.entry_point("otlp") == "otlp_proto_http"
    grpc = TracingRequest.from_env(
        {"OTEL_TRACES_EXPORTER": "otlp,console", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
    )
    assert [grpc.entry_point(n) for n in grpc.exporters] == ["otlp_proto_grpc", "console"]
    disabled = {"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"}
    assert not TracingRequest.from_env(disabled).enabled


def test_the_service_name_is_per_component_unless_otel_names_it() -> None:
    assert TracingRequest.from_env({}).service("ingest") == "lava-ingest"
    named = TracingRequest.from_env({"OTEL_SERVICE_NAME": "edge-ingest"})
    assert named.service("ingest") == "edge-ingest"
    attributes = {"OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=prod,service.name=x"}
    assert TracingRequest.from_env(attributes).service("ingest") == "x"


def test_configure_leaves_tracing_off_without_otel_variables() -> None:
    assert tracing.configure("ingest", {}) is False
    assert tracing.active() is None
    headers: dict[str, Any] = {}
    with tracing.publishing("x", "ClipIngested", "id", "c", headers) as span:
        span.outcome("dead_lettered", "nothing happens")
    assert headers == {}
    assert tracing.carrier() is None


def test_a_service_process_traces_to_the_console_when_asked() -> None:
    script = (
        "from shared import tracing\n"
        "assert tracing.configure('ingest')\n"
        "with tracing.publishing('lava', 'ClipIngested', 'e1', 'c1', {}):\n"
        "    pass\n"
        "tracing.shutdown()\n"
    )
    env = {**os.environ, "OTEL_TRACES_EXPORTER": "console", "OTEL_BSP_SCHEDULE_DELAY": "10"}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, timeout=60
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    out = done.stdout.decode()
    span = json.loads(out[out.index("{\n") :])  # after the (unconfigured) log line
    assert span["name"] == "lava.ClipIngested publish"
    assert span["kind"] == "SpanKind.PRODUCER"
    assert span["resource"]["attributes"]["service.name"] == "lava-ingest"
    assert span["attributes"]["messaging.system"] == "rabbitmq"


def test_services_import_no_opentelemetry_while_tracing_is_off() -> None:
    # (FastAPI >= 0.16x imports the OpenTelemetry API for its own telemetry, if installed: the
    # control service is left out; it loads no SDK either.)
    script = (
        "import sys\n"
        "import services.ingest.service, services.dispatcher.service\n"
        "import services.listener.service, services.postproc.service\n"
        "from shared import tracing\n"
        "assert not tracing.configure('dispatcher')\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, timeout=60
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert done.stdout.decode().strip() == "[]"


def test_without_the_tracing_packages_a_service_says_so_and_runs_untraced() -> None:
    script = (
        "import sys\n"
        "sys.modules['opentelemetry'] = None  # as if the [tracing] extra were not installed\n"
        "from shared import tracing\n"
        "assert tracing.configure('postproc') is False\n"
        "assert tracing.active() is None\n"
    )
    env = {**os.environ, "OTEL_TRACES_EXPORTER": "console"}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, timeout=60
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert "tracing packages are missing" in done.stdout.decode() + done.stderr.decode()


def test_the_tracing_component_points_every_service_at_a_collector(tmp_path: Path) -> None:
    k8s = os.path.relpath(ROOT / "deploy" / "k8s", tmp_path)
    (tmp_path / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: lava\n"
        f"resources: [{k8s}/overlays/production]\ncomponents: [{k8s}/components/tracing]\n"
    )
    rendered = subprocess.run(
        [kubectl(), "kustomize", str(tmp_path)], capture_output=True, text=True, check=True
    ).stdout
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    settings = next(d for d in docs if d["metadata"]["name"] == "lava-settings")["data"]
    assert settings["OTEL_EXPORTER_OTLP_ENDPOINT"].endswith(":4318")
    assert TracingRequest.from_env(settings).exporters == ("otlp",)
    policy = next(d for d in docs if d["metadata"]["name"] == "lava-egress-otel-collector")
    assert policy["spec"]["egress"][0]["ports"] == [{"protocol": "TCP", "port": 4318}]
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in rendered_text("production")  # off by default


# --- the bus's spans and headers (in memory: the same hooks as the RabbitMQ bus) ------------
async def test_a_process_span_is_the_child_of_its_publish_span(settings: LocalSettings) -> None:
    bus = InMemoryBus(settings)
    seen: list[str | None] = []

    async def handle(event: Event[Any]) -> None:
        seen.append((tracing.carrier() or {}).get("traceparent"))

    await bus.consume("ingest", handle)
    with traced(aws=False) as exporter:
        await bus.publish(clip_ingested_event())
        await bus.drain()
    publish, process = sorted(exporter.get_finished_spans(), key=lambda s: s.kind.value)
    exchange = settings.names.exchange
    assert process.name == f"{exchange}.ClipIngested process"
    assert publish.name == f"{exchange}.ClipIngested publish"
    assert (publish.kind, process.kind) == (SpanKind.PRODUCER, SpanKind.CONSUMER)
    assert process.parent is not None and process.parent.span_id == publish.context.span_id
    assert process.context.trace_id == publish.context.trace_id
    assert process.attributes is not None
    assert process.attributes["messaging.system"] == "rabbitmq"
    assert process.attributes["messaging.message.conversation_id"] == "clip-t"
    assert process.attributes["lava.outcome"] == "handled"
    ids = f"00-{process.context.trace_id:032x}-{process.context.span_id:016x}-"
    assert len(seen) == 1 and str(seen[0]).startswith(ids)  # the handler runs in the span


async def test_a_dead_lettered_message_ends_its_span_in_error(settings: LocalSettings) -> None:
    bus = InMemoryBus(settings)

    async def refuse(event: Event[Any]) -> None:
        raise Reject("no such clip")

    await bus.consume("dispatcher", refuse)
    with traced(aws=False) as exporter:
        await bus.publish(clip_failed())
        await bus.drain()
    process = next(s for s in exporter.get_finished_spans() if s.kind is SpanKind.CONSUMER)
    assert process.status.status_code is StatusCode.ERROR
    assert process.status.description == "no such clip"
    assert process.attributes is not None
    assert process.attributes["lava.outcome"] == "dead_lettered"


async def test_forged_or_missing_trace_headers_start_a_new_trace(settings: LocalSettings) -> None:
    bus = InMemoryBus(settings)

    async def handle(event: Event[Any]) -> None:
        return None

    await bus.consume("ingest", handle)
    body = clip_ingested_event().model_dump_json().encode()
    with traced(aws=False) as exporter:
        bus.publish_raw(body, "ClipIngested", {"traceparent": "00-zz" + "x" * 5000})
        bus.publish_raw(body, "ClipIngested", {"traceparent": b"not-a-traceparent"})
        await bus.drain()
    spans = exporter.get_finished_spans()
    assert len(spans) == 2 and all(s.parent is None for s in spans)


def test_log_lines_carry_the_trace_and_span_ids(settings: LocalSettings) -> None:
    configure_logging(settings.replace(log__format="json"), "ingest")
    out = io.StringIO()
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=out))
    with traced(aws=False), tracing.processing("x", "ClipIngested", "e", "c", {}, 0) as span:
        structlog.get_logger().info("handling")
        context = span.span.get_span_context()
    line = json.loads(out.getvalue())
    assert line["trace_id"] == f"{context.trace_id:032x}"
    assert line["span_id"] == f"{context.span_id:016x}"
    structlog.get_logger().info("outside any span")
    assert "trace_id" not in json.loads(out.getvalue().splitlines()[-1])


def test_a_stored_trace_context_is_read_defensively() -> None:
    assert trace_headers({"traceparent": "00-ab-cd-01"}) == {"traceparent": "00-ab-cd-01"}
    assert trace_headers({"traceparent": 3}) is None
    assert trace_headers("00-ab-cd-01") is None
    assert trace_headers(None) is None


def clip_ingested_event() -> Event[ClipIngested]:
    return new_event(clip_ingested("clip-t"), "clip-t")


# --- the control API -------------------------------------------------------------------------
@pytest.mark.integration
async def test_a_control_api_request_continues_the_callers_trace(
    aws: AwsClients, settings: LocalSettings, tmp_path: Path
) -> None:
    caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    console = {"OTEL_TRACES_EXPORTER": "console", "OTEL_BSP_SCHEDULE_DELAY": "50"}
    async with control_service(settings, tmp_path, **console) as control:
        headers = {**control.auth("viewer"), "traceparent": caller}
        async with (
            aiohttp.ClientSession() as session,
            session.get(control.url + "/v1/jobs", headers=headers) as response,
        ):
            assert response.status == 200, control.log()[-3000:]
    trace_id = "0x4bf92f3577b34da6a3ce929d0e0e4736"
    spans = [s for s in console_spans(control.log()) if s["context"]["trace_id"] == trace_id]
    request = [s for s in spans if s["kind"] == "SpanKind.SERVER"]
    assert [(s["name"], s["parent_id"]) for s in request] == [
        ("GET /v1/jobs", "0x00f067aa0ba902b7")
    ]
    assert request[0]["resource"]["attributes"]["service.name"] == "lava-control"
    assert [s for s in spans if s["attributes"].get("rpc.system") == "aws-api"]


# --- one clip through every service on the real broker ---------------------------------------
@pytest.mark.integration
@pytest.mark.parametrize("seal_keys", ["", "t" * 32], ids=["looked-up", "sealed"])
async def test_one_clip_through_every_service_and_both_levels_is_one_connected_trace(
    aws: AwsClients, settings: LocalSettings, tmp_path: Path, seal_keys: str
) -> None:
    """Looked up or sealed (shared/seal.py), an output continues the trace of its send."""
    s = emulator_settings(dispatch_settings(settings)).replace(labeling__seal_keys=seal_keys)
    await create_jobs(aws, s)
    with traced() as exporter:
        async with AsyncExitStack() as services:
            runtimes = {}
            for build, name, consumer in (
                (ingest, "ingest", "ingest"),
                (dispatcher, "dispatcher", "dispatcher"),
                (listener, "listener", None),
                (postproc, "postproc", "postproc"),
            ):
                runtime = await services.enter_async_context(running(build, s, name, consumer))
                runtimes[name] = runtime
            await services.enter_async_context(emulator(s, aws))
            clip_id = await upload_one(s, aws, tmp_path)
            await wait_for_clips(s, [clip_id], timeout=90)
            await wait_for_span(exporter, f"{s.names.exchange}.ClipCompleted process")
            checks = runtimes["listener"].metrics.registry.get_sample_value
            opened = checks(
                "lava_listener_key_checks_total", {"service": "listener", "how": "seal"}
            )
            looked = checks(
                "lava_listener_key_checks_total", {"service": "listener", "how": "lookup"}
            )
        check_one_connected_trace(exporter.get_finished_spans(), s.names.exchange)
        # each output went the way its settings say: every one sealed, or every one looked up
        assert ((opened or 0) >= 2 and not looked) if seal_keys else (not opened and looked)


async def upload_one(settings: LocalSettings, aws: AwsClients, tmp_path: Path) -> str:
    clip = small_clip(tmp_path, seconds=2, gop=15, seed=7, name="traced")
    payload = await upload_sample(settings, clip, fps=2, workflows=["vehicles"], aws=aws)
    return payload.clip_id


async def wait_for_span(exporter: Any, name: str, timeout: float = 30) -> None:
    await wait_until(
        lambda: any(s.name == name for s in exporter.get_finished_spans()), timeout=timeout
    )


def check_one_connected_trace(spans: Any, exchange: str) -> None:
    root = next(s for s in spans if s.name == f"{exchange}.ClipIngested publish")
    clip = trace_of(spans, root.context.trace_id)
    assert orphans(clip) == []
    assert [s for s in clip if s.parent is None] == [root]
    names = [s.name for s in clip]
    for event_type, count in (
        ("ClipIngested", 1),
        ("FramesReady", 1),
        ("LevelCompleted", 2),  # both levels: the trace survives each Ground Truth round trip
        ("LabelsFinalized", 1),
        ("ClipCompleted", 1),
    ):
        # (at least: a sweep may finish a task's work too, and consumers are idempotent)
        assert names.count(f"{exchange}.{event_type} process") >= count, event_type
    sqs = [s for s in clip if (s.attributes or {}).get("messaging.system") == "aws_sqs"]
    assert len(sqs) >= 2  # the listener, once per level
    calls = [s for s in clip if is_aws_call(s)]
    assert {"S3", "DynamoDB", "SNS"} <= {str((s.attributes or {})["rpc.service"]) for s in calls}
    for call in calls:  # each AWS call is the child of the span of the work that made it
        parent = parent_of(clip, call)
        assert parent is not None, call.name
        handler = parent.kind is SpanKind.CONSUMER or parent.name.startswith("dispatcher sweep")
        assert handler, (call.name, parent.name)


@pytest.mark.parametrize("aws_backend", ["memory"])
async def test_a_label_studio_completion_continues_the_clips_trace(
    policy_aws: AwsClients, policy_settings: Settings
) -> None:
    """The Label Studio round trip is linked back like Ground Truth's: the data object keeps
    its send's trace context, and the annotation's LevelCompleted is published in that trace."""
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    with traced(aws=False) as exporter:
        with tracing.resuming({"traceparent": f"00-{trace_id}-b7ad6b7169203331-01"}, "clip"):
            x = await sent_to_label_studio(policy_aws, policy_settings)
        imported = await x.side.importer.import_message(x.job, x.message)
        assert imported.task_id is not None
        x.studio.annotate(imported.task_id, "2026-01-01T00:00:09Z")
        assert await x.side.handle_task(x.job, x.studio.tasks[imported.task_id], via="webhook")
    spans = exporter.get_finished_spans()
    (process,) = [span for span in spans if span.name == "labelstudio.VOTVehicle process"]
    assert f"{process.context.trace_id:032x}" == trace_id
    assert (process.attributes or {}).get("messaging.system") == "labelstudio"
