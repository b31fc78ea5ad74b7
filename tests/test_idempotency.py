"""The idempotency guard against DynamoDB (moto): once per event, waiting out a live claim."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from shared.aws import AwsClients
from shared.clock import FakeClock
from shared.dynamo import to_item
from shared.idempotency import ClaimedElsewhere, IdempotencyGuard
from shared.settings import Settings
from tests.support.requests import counting

pytestmark = pytest.mark.integration


async def test_concurrent_duplicates_run_once(aws: AwsClients, settings: Settings) -> None:
    guard = IdempotencyGuard(aws, settings.replace(runtime__handler_lease_seconds=5), "c")
    runs: list[int] = []

    async def slow() -> None:
        runs.append(1)
        await asyncio.sleep(0.6)

    results = await asyncio.gather(guard.run_once("e-1", slow), guard.run_once("e-1", slow))
    assert sorted(results) == [False, True]  # the second waited, then skipped
    assert runs == [1]


async def test_a_crashed_workers_claim_is_taken_over(aws: AwsClients, settings: Settings) -> None:
    s = settings.replace(runtime__handler_lease_seconds=1)
    db = await aws.dynamodb()
    # a claim left by a worker that died: its lease has run out
    await db.put_item(
        TableName=s.names.table("processed-events"),
        Item=to_item({"pk": "c#e-2", "status": "claimed", "lease_until": 0, "expires_at": 0}),
    )
    ran: list[int] = []

    async def work() -> None:
        ran.append(1)

    assert await IdempotencyGuard(aws, s, "c").run_once("e-2", work) is True
    assert ran == [1]


async def test_a_live_claim_that_never_ends_gives_up(aws: AwsClients, settings: Settings) -> None:
    s = settings.replace(runtime__handler_lease_seconds=0.5)
    db = await aws.dynamodb()
    await db.put_item(
        TableName=s.names.table("processed-events"),
        Item=to_item({"pk": "c#e-3", "status": "claimed", "lease_until": 4e9, "expires_at": 0}),
    )

    async def work() -> None:
        raise AssertionError("must not run")

    with pytest.raises(ClaimedElsewhere):
        await IdempotencyGuard(aws, s, "c").run_once("e-3", work)


async def test_another_events_claim_is_left_to_it_at_once(
    aws: AwsClients, settings: Settings
) -> None:
    """A clip's second event finds the merge claimed by the first: it leaves, no polling."""
    guard = IdempotencyGuard(aws, settings.replace(runtime__handler_lease_seconds=5), "c")
    inside, release = asyncio.Event(), asyncio.Event()

    async def merge() -> None:
        inside.set()
        await release.wait()

    first = asyncio.create_task(guard.run_once("merge-1", merge, holder="event-a"))
    await inside.wait()

    async def never() -> None:
        raise AssertionError("must not run")

    # returns while the first is still inside its work (waiting would raise after the lease)
    assert await guard.run_once("merge-1", never, holder="event-b") is False
    release.set()
    assert await first is True
    assert await guard.run_once("merge-1", never, holder="event-b") is False  # done


class SleepWatch(FakeClock):
    """A fake clock that says when someone first sleeps on it (then moving it wakes them)."""

    def __init__(self) -> None:
        super().__init__()
        self.sleeping = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        self.sleeping.set()
        await super().sleep(seconds)


async def test_a_redelivery_of_the_holder_waits_out_its_own_claim_then_takes_over(
    aws: AwsClients, settings: Settings
) -> None:
    """The holder's delivery died inside the work: its redelivery takes over after the lease
    (the clip's other event had left it to the holder, at once and without a second read)."""
    s = settings.replace(runtime__handler_lease_seconds=10)
    clock = SleepWatch()
    db = await aws.dynamodb()
    left = {"pk": "c#merge-2", "status": "claimed", "holder": "event-a", "expires_at": 0}
    lease_until = clock.now().timestamp() + 3  # the dead delivery's claim, live 3 s more
    await db.put_item(
        TableName=s.names.table("processed-events"),
        Item=to_item({**left, "lease_until": lease_until}),
    )
    guard = IdempotencyGuard(aws, s, "c", clock=clock)
    ran: list[str] = []

    async def work() -> None:
        ran.append("merged")

    async with counting(aws, "dynamodb") as calls:
        assert await guard.run_once("merge-2", work, holder="event-b") is False
    assert calls.operations() == Counter({"PutItem": 1})  # the claim returned who holds it
    redelivered = asyncio.create_task(guard.run_once("merge-2", work, holder="event-a"))
    await clock.sleeping.wait()  # its own claim found live: it waits (polls) for the lease
    await clock.advance(4)
    assert await redelivered is True
    assert ran == ["merged"]
