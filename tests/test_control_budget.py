"""The mutation budget holds across control replicas: its counts live in DynamoDB.

Two budgets over one table stand for two replicas (a clock the test moves); then two control
service processes on one namespace refuse the caller's fourth mutation whichever answers it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from services.control.limits import MutationBudget
from shared.aws import AwsClients
from shared.settings import Settings
from tests.support.control import control_service
from tests.support.dispatch import dispatch_settings
from tests.test_control_api import PROBLEM, call

pytestmark = pytest.mark.integration


class Clock:
    def __init__(self) -> None:
        self.at = 1_000.0

    def __call__(self) -> float:
        return self.at


async def test_replicas_spend_one_budget_per_caller(aws: AwsClients, settings: Settings) -> None:
    clock = Clock()
    one, two = (MutationBudget(aws, settings, 3, now=clock) for _ in range(2))
    assert [await one.take("token:otto"), await two.take("token:otto")] == [0, 0]
    clock.at += 10
    assert await one.take("token:otto") == 0
    # spent, on either replica, until the window that opened with the first call ends
    assert await two.take("token:otto") == pytest.approx(50.0)
    assert await one.take("token:otto") == pytest.approx(50.0)
    assert await two.take("oidc:alice") == 0  # per caller
    clock.at += 50
    assert await two.take("token:otto") == 0  # a new window
    assert await one.take("token:otto") == 0
    clock.at += 59.5
    assert await one.take("token:otto") == 0
    assert await two.take("token:otto") == pytest.approx(0.5)


async def test_concurrent_calls_on_two_replicas_count_once_each(
    aws: AwsClients, settings: Settings
) -> None:
    clock = Clock()
    one, two = (MutationBudget(aws, settings, 5, now=clock) for _ in range(2))
    # a fresh window opened by both at once, then spent by both at once
    waits = await asyncio.gather(*(b.take("token:otto") for _ in range(8) for b in (one, two)))
    assert sorted(waits)[:5] == [0] * 5 and all(w > 0 for w in sorted(waits)[5:])


async def test_two_service_processes_share_the_budget(
    aws: AwsClients, settings: Settings, tmp_path: Path
) -> None:
    s = dispatch_settings(settings)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    budget = {"LAVA_CONTROL__MUTATIONS_PER_MINUTE": "3"}
    async with (
        control_service(s, tmp_path / "a", **budget) as a,
        control_service(s, tmp_path / "b", **budget) as b,
    ):
        # each process has its own token for "otto"; the budget is the caller's
        for replica in (a, b, a):
            code, _, _ = await call(replica, "POST", "/v1/tasks/no-such.task/stop", "operator")
            assert code == 404
        for replica in (b, a):
            code, headers, problem = await call(
                replica, "POST", "/v1/tasks/no-such.task/stop", "operator"
            )
            assert code == 429 and headers["Content-Type"] == PROBLEM
            assert 1 <= int(headers["Retry-After"]) <= 60 and problem["status"] == 429
        # reads are not budgeted
        code, _, _ = await call(b, "GET", "/v1/status", "viewer")
        assert code == 200
