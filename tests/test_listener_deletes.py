"""PendingDeletes (services/listener/deletes.py) on its own: when deletes go, and how they are
numbered. The real SQS path (a stop's flush in one DeleteMessageBatch) is in test_listener.py."""

from __future__ import annotations

import asyncio

from structlog.testing import capture_logs

from services.listener.deletes import BATCH, Entry, PendingDeletes
from shared.settings import Settings
from tests.support.broker import wait_until


class Sent:
    """The DeleteMessageBatch requests made, each a list of entries; ``fail`` makes them raise."""

    def __init__(self, fail: bool = False) -> None:
        self.requests: list[list[Entry]] = []
        self.fail = fail

    async def __call__(self, entries: list[Entry]) -> None:
        self.requests.append(entries)
        if self.fail:
            raise RuntimeError("SQS unreachable")


def handles(*names: str) -> list[Entry]:
    return [{"Id": "0", "ReceiptHandle": name} for name in names]


async def test_without_the_loop_a_delete_goes_at_once() -> None:
    sent = Sent()
    deletes = PendingDeletes(sent, seconds=60)
    await deletes.add(handles("a", "b"))
    assert sent.requests == [[{"Id": "0", "ReceiptHandle": "a"}, {"Id": "1", "ReceiptHandle": "b"}]]


async def test_while_the_loop_runs_ten_waiting_go_in_one_request_and_the_rest_at_stop() -> None:
    sent = Sent()
    deletes = PendingDeletes(sent, seconds=3600)  # the periodic flush never comes in the test
    stop = asyncio.Event()
    loop = asyncio.create_task(deletes.run(stop))
    await wait_until(lambda: deletes.running)
    for i in range(BATCH + 2):
        await deletes.add(handles(f"h{i}"))
    assert [len(r) for r in sent.requests] == [BATCH]  # the tenth sent them
    assert deletes.waiting == 2
    stop.set()
    await loop
    assert [len(r) for r in sent.requests] == [BATCH, 2] and not deletes.running


async def test_two_copies_of_one_message_get_distinct_ids() -> None:
    """A standard queue may hand one message to two receives: a batch naming an Id twice is
    refused whole by SQS, so Ids are positions, not anything the message carries."""
    sent = Sent()
    await PendingDeletes(sent, seconds=0).add(handles("same", "same", "other"))
    (request,) = sent.requests
    assert [e["Id"] for e in request] == ["0", "1", "2"]


async def test_a_failed_delete_is_logged_not_raised() -> None:
    sent = Sent(fail=True)
    with capture_logs() as logs:
        await PendingDeletes(sent, seconds=0).add(handles(*(f"h{i}" for i in range(BATCH + 1))))
    assert [len(r) for r in sent.requests] == [BATCH, 1]  # the second chunk is still tried
    warned = "could not delete handled outputs (they will come again)"
    assert [e["event"] for e in logs] == [warned, warned]


def test_the_wait_is_capped_at_a_quarter_of_the_visibility_timeout(settings: Settings) -> None:
    """A waiting delete must not outlast the output's invisibility (it would be offered again)."""
    s = settings.replace(listener__visibility_timeout_seconds=8, listener__delete_batch_seconds=5)
    assert s.listener.delete_wait_seconds == 2
    assert s.replace(listener__delete_batch_seconds=1).listener.delete_wait_seconds == 1
