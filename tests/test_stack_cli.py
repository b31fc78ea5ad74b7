"""`lava stack up/status/down` as a user runs them."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from devstack.local_stack import endpoint_answers
from shared.bus import Bus
from shared.settings import load_settings
from tests.support.cli import table_rows
from tests.support.ports import closed_port

pytestmark = pytest.mark.integration


def lava(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lava", *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_stack_up_status_down_on_a_free_port(tmp_path: Path, namespace: str, rabbitmq: str) -> None:
    env = dict(os.environ)
    env.pop("AWS_ENDPOINT_URL", None)
    env.update(
        {
            "LAVA_STATE_DIR": str(tmp_path),
            "LAVA_NAMESPACE": namespace,
            "LAVA_BROKER__AMQP_URL": rabbitmq,
        }
    )
    port = 0
    try:
        # --port 0: the server is bound to any free port, which the output names
        up = lava("stack", "up", "--port", "0", env=env)
        assert up.returncode == 0, up.stderr
        found = re.search(r"moto server started on http://127\.0\.0\.1:(\d+) ", up.stdout)
        assert found, up.stdout
        port = int(found[1])
        assert f"export AWS_ENDPOINT_URL=http://127.0.0.1:{port}" in up.stdout
        assert (tmp_path / f"moto-{port}.log").exists()
        assert f"bucket {namespace}-123456789012-" in up.stdout
        assert endpoint_answers(f"http://127.0.0.1:{port}")

        again = lava("stack", "up", "--port", str(port), env=env)
        assert again.returncode == 0 and "already running" in again.stdout

        status = lava("stack", "status", "--port", str(port), env=env)
        assert status.returncode == 0, status.stdout
        rows = {r["COMPONENT"]: r for r in table_rows(status.stdout, "COMPONENT")}
        assert rows["AWS endpoint"]["ADDRESS"] == f"http://127.0.0.1:{port}"
        assert rows["AWS endpoint"]["STATE"] == "up" and rows["AWS endpoint"]["PID"].isdigit()
        assert rows["RabbitMQ"]["STATE"] == "up" and rows["RabbitMQ"]["NEXT STEP"] == "-"
        as_json = json.loads(lava("stack", "status", "--port", str(port), "--json", env=env).stdout)
        assert as_json["namespace"] == namespace and as_json["healthy"] is True
        assert [c["component"] for c in as_json["components"]] == ["AWS endpoint", "RabbitMQ"]

        down = lava("stack", "down", "--port", str(port), env=env)
        assert down.returncode == 0 and "stopped moto server" in down.stdout
        assert not endpoint_answers(f"http://127.0.0.1:{port}")

        after = lava("stack", "status", "--port", str(port), env=env)
        assert after.returncode == 1
        aws = table_rows(after.stdout, "COMPONENT")[0]
        assert aws["STATE"].startswith("DOWN") and "lava stack up" in aws["NEXT STEP"]
    finally:
        if port:
            lava("stack", "down", "--port", str(port), env=env)
        settings = load_settings(namespace=namespace, broker__amqp_url=rabbitmq)

        async def cleanup() -> None:
            async with Bus(settings) as bus:
                await bus.delete_topology()

        asyncio.run(cleanup())


def test_stack_status_explains_an_unreachable_broker(tmp_path: Path, namespace: str) -> None:
    env = dict(os.environ)
    with closed_port() as no_broker, closed_port() as no_aws:
        env.update(
            {
                "LAVA_STATE_DIR": str(tmp_path),
                "LAVA_NAMESPACE": namespace,
                "LAVA_BROKER__AMQP_URL": f"amqp://guest:guest@127.0.0.1:{no_broker}/",
            }
        )
        status = lava("stack", "status", "--port", str(no_aws), env=env)
    assert status.returncode == 1
    broker = table_rows(status.stdout, "COMPONENT")[1]
    assert broker["COMPONENT"] == "RabbitMQ" and broker["STATE"].startswith("DOWN")
    assert "rabbitmq-server -detached" in broker["NEXT STEP"]


def test_events_schema_command() -> None:
    out = lava("events", "schema", "ClipIngested", env=dict(os.environ))
    assert out.returncode == 0 and '"ClipIngested v1"' in out.stdout
    bad = lava("events", "schema", "ClipIngested", "--version", "9", env=dict(os.environ))
    assert bad.returncode != 0 and "version 9 is not supported" in bad.stderr
