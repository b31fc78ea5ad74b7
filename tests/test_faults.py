"""The throttle injector: its share of calls, its replayable seed, the errors it answers with."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from shared.faults import install_throttling


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
