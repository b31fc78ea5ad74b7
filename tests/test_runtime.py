"""The service runtime as a real process: health endpoints, metrics, SIGTERM drain."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from devstack.testing.events import clip_failed
from shared.bus import Bus
from shared.events import ClipFailed
from shared.listening import hand_over, listen, port_of
from shared.runtime import ServiceRuntime
from shared.settings import Settings
from tests.support.broker import provision_topology, queue_depth, wait_until
from tests.support.ports import closed_port
from tests.support.slow_service import TOPOLOGY

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[1]


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except (urllib.error.URLError, OSError) as exc:
        return 0, str(exc)


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "LAVA_NAMESPACE": settings.namespace,
            "LAVA_BROKER__AMQP_URL": settings.broker.amqp_url.get_secret_value(),
            "AWS_ENDPOINT_URL": settings.aws.endpoint_url or "",
            "LAVA_LOG__FORMAT": "json",
            "LAVA_BROKER__DELIVERY_LIMIT": str(settings.broker.delivery_limit),
            "LAVA_BROKER__LOCAL_ALL_IN_ONE": "true",  # the probe service has no identity
            **extra,
        }
    )
    return env


async def test_sigterm_drains_in_flight_work(settings: Settings, tmp_path: Path) -> None:
    """SIGTERM lets the running handler finish; a message prefetched but not started goes back.

    One handler slot and a prefetch of four. Every step waits for what it needs: ``late`` has
    left the queue (prefetched, waiting for the slot ``slow`` holds) before SIGTERM, and the
    service reports not-ready (stop seen) before ``slow`` is released - no timing involved.
    """
    health = listen()  # handed down: the service serves on it, no port is picked early
    port = port_of(health)
    handed = hand_over({"health": health})
    await provision_topology(settings, TOPOLOGY)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.slow_service"],
        cwd=ROOT,
        env=_env(
            settings,
            LAVA_TEST_MARKERS=str(tmp_path),
            LAVA_BROKER__PREFETCH="4",
            LAVA_BROKER__HANDLER_CONCURRENCY="1",
            **handed.env,
        ),
        stderr=subprocess.PIPE,
        pass_fds=handed.fds,
    )
    bus = Bus(settings, TOPOLOGY)
    queue = settings.names.queue("probe")
    ready = f"http://127.0.0.1:{port}/readyz"
    try:
        await wait_until(lambda: _get(ready)[0] == 200, timeout=30)
        await bus.connect()
        await bus.publish(clip_failed(reason="slow"))
        await wait_until(lambda: (tmp_path / "started-slow").exists(), timeout=30)
        await bus.publish(clip_failed(reason="late"))
        await wait_until(lambda: _queue_empty(settings, queue), timeout=30)

        proc.send_signal(signal.SIGTERM)
        await wait_until(lambda: _get(ready)[0] == 503, timeout=30)
        (tmp_path / "release-slow").touch()
        code = await asyncio.to_thread(proc.wait, 60)
        stderr = proc.stderr.read().decode() if proc.stderr else ""
        assert code == 0, stderr
        assert (tmp_path / "finished-slow").exists(), "in-flight handler was cut short"
        assert not (tmp_path / "started-late").exists(), "a prefetched message started"
        # The drained message was acked; the late one is back in the queue for the next replica.
        assert await queue_depth(settings, queue) == 1
        lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
        handled = [x for x in lines if x.get("event") == "draining"]
        assert handled and handled[0]["service"] == "probe"
    finally:
        if proc.poll() is None:
            proc.kill()
        health.close()
        if not bus.connected:
            await bus.connect()
        await bus.delete_topology()
        await bus.close()


async def _queue_empty(settings: Settings, queue: str) -> bool:
    return await queue_depth(settings, queue) == 0


async def test_health_readiness_and_metrics(settings: Settings) -> None:
    await provision_topology(settings, TOPOLOGY)
    runtime = ServiceRuntime("probe", settings, consumer="probe", topology=TOPOLOGY)
    handled: list[Any] = []

    async def handle(event: Any) -> None:
        handled.append(event)

    runtime.handle(ClipFailed, handle)
    task = asyncio.create_task(runtime.run(install_signals=False))
    try:
        await wait_until(lambda: runtime.ready, timeout=15)
        base = f"http://127.0.0.1:{runtime.health_port}"
        assert (await asyncio.to_thread(_get, f"{base}/healthz"))[0] == 200
        status, body = await asyncio.to_thread(_get, f"{base}/readyz")
        assert status == 200 and json.loads(body)["broker_connected"] is True

        await runtime.bus.publish(clip_failed())
        await wait_until(lambda: len(handled) == 1)
        _, metrics = await asyncio.to_thread(_get, f"{base}/metrics")
        assert (
            'lava_messages_total{event_type="ClipFailed",outcome="handled",service="probe"} 1.0'
            in metrics
        )
        assert "lava_handler_seconds_bucket" in metrics
        assert 'lava_broker_connected{service="probe"} 1.0' in metrics
    finally:
        runtime.request_stop()
        await task
        cleanup = Bus(settings, TOPOLOGY)
        await cleanup.connect()
        await cleanup.delete_topology()
        await cleanup.close()


async def test_readiness_is_false_while_the_broker_is_unreachable(settings: Settings) -> None:
    with closed_port() as dead:
        await _not_ready_without_broker(settings, dead)


async def _not_ready_without_broker(settings: Settings, dead: int) -> None:
    broken = settings.replace(broker__amqp_url=SecretStr(f"amqp://guest:guest@127.0.0.1:{dead}/"))
    runtime = ServiceRuntime("probe", broken, consumer="probe", topology=TOPOLOGY)
    task = asyncio.create_task(runtime.run(install_signals=False))
    try:
        await wait_until(lambda: runtime.health_port is not None)
        status, body = await asyncio.to_thread(
            _get, f"http://127.0.0.1:{runtime.health_port}/readyz"
        )
        assert status == 503 and json.loads(body)["broker_connected"] is False
        assert (await asyncio.to_thread(_get, f"http://127.0.0.1:{runtime.health_port}/healthz"))[
            0
        ] == 200
    finally:
        runtime.request_stop()
        await asyncio.wait_for(task, 10)
