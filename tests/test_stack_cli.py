"""`lava stack up/status/down` as a user runs them."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared.bus import Bus
from shared.local_stack import endpoint_answers, free_port
from shared.settings import load_settings

pytestmark = pytest.mark.integration


def lava(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lava", *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_stack_up_status_down_on_a_free_port(tmp_path: Path, namespace: str, rabbitmq: str) -> None:
    port = free_port()
    env = dict(os.environ)
    env.pop("AWS_ENDPOINT_URL", None)
    env.update(
        {
            "LAVA_STATE_DIR": str(tmp_path),
            "LAVA_NAMESPACE": namespace,
            "LAVA_BROKER__AMQP_URL": rabbitmq,
        }
    )
    try:
        up = lava("stack", "up", "--port", str(port), env=env)
        assert up.returncode == 0, up.stderr
        assert f"moto server started on http://127.0.0.1:{port}" in up.stdout
        assert f"bucket {namespace}-123456789012-" in up.stdout
        assert endpoint_answers(f"http://127.0.0.1:{port}")

        again = lava("stack", "up", "--port", str(port), env=env)
        assert again.returncode == 0 and "already running" in again.stdout

        status = lava("stack", "status", "--port", str(port), env=env)
        assert status.returncode == 0, status.stdout
        assert "AWS endpoint" in status.stdout and ": up" in status.stdout
        assert "RabbitMQ" in status.stdout

        down = lava("stack", "down", "--port", str(port), env=env)
        assert down.returncode == 0 and "stopped moto server" in down.stdout
        assert not endpoint_answers(f"http://127.0.0.1:{port}")

        after = lava("stack", "status", "--port", str(port), env=env)
        assert after.returncode == 1
        assert "DOWN - start it with: lava stack up" in after.stdout
    finally:
        lava("stack", "down", "--port", str(port), env=env)
        settings = load_settings(namespace=namespace, broker__amqp_url=rabbitmq)

        async def cleanup() -> None:
            async with Bus(settings) as bus:
                await bus.delete_topology()

        asyncio.run(cleanup())


def test_stack_status_explains_an_unreachable_broker(tmp_path: Path, namespace: str) -> None:
    env = dict(os.environ)
    env.update(
        {
            "LAVA_STATE_DIR": str(tmp_path),
            "LAVA_NAMESPACE": namespace,
            "LAVA_BROKER__AMQP_URL": f"amqp://guest:guest@127.0.0.1:{free_port()}/",
        }
    )
    status = lava("stack", "status", "--port", str(free_port()), env=env)
    assert status.returncode == 1
    assert "RabbitMQ" in status.stdout and "DOWN" in status.stdout
    assert "rabbitmq-server -detached" in status.stdout


def test_events_schema_command() -> None:
    out = lava("events", "schema", "ClipIngested", env=dict(os.environ))
    assert out.returncode == 0 and '"ClipIngested v1"' in out.stdout
    bad = lava("events", "schema", "ClipIngested", "--version", "9", env=dict(os.environ))
    assert bad.returncode != 0 and "version 9 is not supported" in bad.stderr
