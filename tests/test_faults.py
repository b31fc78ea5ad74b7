"""The throttle injector: its share of calls, its replayable seed, the errors it answers with;
and that only a drill turns fault injection on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError

from devstack.faults import (
    INJECTED,
    NONE,
    FaultConfig,
    FaultSettings,
    enabled,
    injecting,
    install_throttling,
)
from devstack.local_stack import MotoServer
from shared import fault_hooks
from shared.aws import AwsClients
from shared.settings import DispatcherSettings


class _Events:
    def __init__(self) -> None:
        self.handler: Any = None

    def register(self, name: str, handler: Any) -> None:
        assert name == "before-send"
        self.handler = handler


def _draws(service: str, rate: float, seed: int | None, calls: int = 400) -> list[bool]:
    events = _Events()
    install_throttling(SimpleNamespace(meta=SimpleNamespace(events=events)), service, rate, seed)
    request = SimpleNamespace(url=f"http://aws.test/{service}")
    return [events.handler(request) is not None for _ in range(calls)]


def test_share_of_throttled_calls_follows_the_rate() -> None:
    assert 20 <= sum(_draws("s3", 0.1, seed=1)) <= 65
    assert not any(_draws("s3", 0.0, seed=1))


def test_a_seed_replays_the_same_draws_per_service() -> None:
    assert _draws("dynamodb", 0.1, seed=815) == _draws("dynamodb", 0.1, seed=815)
    assert _draws("dynamodb", 0.1, seed=815) != _draws("sqs", 0.1, seed=815)


async def test_answers_with_the_services_own_throttling_error() -> None:
    events = _Events()
    install_throttling(SimpleNamespace(meta=SimpleNamespace(events=events)), "s3", 1.0)
    response = events.handler(SimpleNamespace(url="http://aws.test/bucket"))
    assert response.status_code == 503
    assert b"SlowDown" in await response.content


async def test_fault_variables_change_nothing_unless_a_drill_enables_them(
    monkeypatch: pytest.MonkeyPatch, moto_server: MotoServer
) -> None:
    monkeypatch.setenv("LAVA_FAULT__AWS_THROTTLE_RATE", "1.0")
    settings = DispatcherSettings.load(aws__endpoint_url=moto_server.endpoint, aws__max_attempts=1)
    before = dict(INJECTED)
    async with AwsClients(settings) as aws:
        await (await aws.dynamodb()).list_tables()  # a production service: no fault injected
    assert before == INJECTED
    with injecting(FaultSettings.load().fault):  # the drill's opt-in (python -m lava.drill)
        async with AwsClients(settings) as aws:
            with pytest.raises(ClientError, match="ThrottlingException"):
                await (await aws.dynamodb()).list_tables()
    assert INJECTED.get("dynamodb", 0) == before.get("dynamodb", 0) + 1
    assert enabled() == NONE


def test_only_the_drill_entry_point_enables_faults() -> None:
    env = {**os.environ, "LAVA_FAULT__AWS_THROTTLE_RATE": "0.25", "LAVA_FAULT__SEED": "3"}

    def probe(*entry: str) -> dict[str, Any]:
        done = subprocess.run(
            [sys.executable, "-m", *entry, "tests.support.fault_probe"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        found: dict[str, Any] = json.loads(done.stdout)
        return found

    assert probe() == NONE.model_dump()  # python -m tests.support.fault_probe
    assert probe("lava.drill") == {
        "aws_throttle_rate": 0.25,
        "seed": 3,
        "duplicate_delivery": False,
    }


def test_a_drill_reaches_the_services_through_the_hooks_only_while_enabled() -> None:
    assert not fault_hooks.duplicate_delivery()
    with injecting(FaultConfig(duplicate_delivery=True)):
        assert fault_hooks.duplicate_delivery()
        assert fault_hooks.injected("s3") == INJECTED.get("s3", 0)
    assert not fault_hooks.duplicate_delivery()
    assert fault_hooks.injected("s3") == 0  # nothing installed: production's answer
