"""Reads that stay flat: status, one list page and one dispatcher sweep at 1k, 10k, 50k tasks.

One moto server, one namespace that grows: at each size the table holds that many tasks
(mostly completed, as a long-running system's table does) plus a fixed working set - 30
active tasks with a waiting data object each and 20 failed ones; before each sweep the clock
moves 5 days, so the 30 waiting objects are due for their same-key re-send. Measured at each
size (median of --rounds):
- ``pipeline_status`` (what `lava status`, `GET /v1/status` and the dashboard read), and
  within it the counter read alone (one GetItem: every count of the funnel);
- one page of 50 tasks from ``GET /v1/tasks`` (status index, cursor pagination);
- one dispatcher sweep over the 30 due objects (claims, SNS PublishBatch, send records);
with the AWS calls each makes. Seeding uses BatchWriteItem (not measured).

    python -m bench.status_bench [--sizes 1000,10000,50000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from services.dispatcher.dispatcher import Dispatcher
from services.dispatcher.service import wire_dispatcher
from shared.aws import CALL_TIMES, AwsClients
from shared.clock import FakeClock
from shared.dynamo import to_item
from shared.ids import task_id_of
from shared.labeling.jobs import JobManager
from shared.local_stack import MotoServer, free_port
from shared.operations.status import pipeline_status
from shared.resources import provision
from shared.settings import Settings, load_settings
from shared.tasks.counters import task_counter
from shared.tasks.model import TaskStatus
from shared.tasks.store import TaskStore
from shared.testing.events import frames_ready
from shared.workflows import load_catalog

DAY = 86400.0
PAGE = 50


async def _discard(event: Any) -> None:
    return None


def calls() -> int:
    return int(sum(count for count, _ in CALL_TIMES.values()))


async def timed(work: Callable[[], Awaitable[Any]], rounds: int) -> tuple[float, float]:
    """Median seconds and AWS calls of one ``work()``."""
    seconds, made = [], []
    for _ in range(rounds):
        before, started = calls(), time.perf_counter()
        await work()
        seconds.append(time.perf_counter() - started)
        made.append(calls() - before)
    return statistics.median(seconds), statistics.median(made)


async def seed_completed(
    aws: AwsClients, store: TaskStore, dispatcher: Dispatcher, start: int, count: int, now: float
) -> None:
    """``count`` completed tasks (task item + done object each), written in batches of 25."""
    db = await aws.dynamodb()
    template = dispatcher._task_of(
        frames_ready("seed", bucket="lava-data").payload, now, [["VOTVehicle"]]
    ).model_copy(update={"status": TaskStatus.COMPLETED})
    batch: list[dict[str, Any]] = []
    for i in range(start, start + count):
        task = template.model_copy(
            update={"task_id": f"seed-{i}.vehicles", "clip_id": f"seed-{i}", "updated_at": now - i}
        )
        obj = dispatcher._new_object(task, "VOTVehicle", 1, now)
        obj_item = obj.model_dump(mode="json")
        obj_item.update(
            pk=f"task#{task.task_id}",
            sk="obj#01#VOTVehicle#0",
            kind="obj",
            status="done",
            due_at=None,
        )
        obj_item.pop("due_at")
        batch += [
            {"PutRequest": {"Item": store._task_item(task, None)}},
            {"PutRequest": {"Item": to_item(obj_item)}},
        ]
        if len(batch) >= 24:
            await _write(db, store.table, batch)
            batch = []
    if batch:
        await _write(db, store.table, batch)
    await store.counters.add({task_counter("completed", 1): count, "objects": count})


async def _write(db: Any, table: str, batch: list[dict[str, Any]]) -> None:
    pending: dict[str, Any] = {table: batch}
    while pending:
        answer = await db.batch_write_item(RequestItems=pending)
        pending = answer.get("UnprocessedItems") or {}


async def working_set(dispatcher: Dispatcher, settings: Settings, clock: FakeClock) -> float:
    """50 active tasks waiting at level 1, 20 of them failed; the time they were made."""
    for i in range(50):
        await dispatcher.on_frames_ready(frames_ready(f"live-{i}", bucket=settings.names.bucket))
    now = clock.now().timestamp()
    for i in range(20):
        task_id = task_id_of(f"live-{i}", "vehicles")
        await dispatcher.store.set_task_status(
            task_id, TaskStatus.FAILED, [TaskStatus.ACTIVE], now, reason="bench"
        )
        await dispatcher.store.stop_objects(task_id)
    return float(now)


async def main(sizes: list[int], rounds: int) -> None:
    moto = MotoServer(port=free_port())
    moto.start()
    try:
        settings: Settings = load_settings(
            namespace=f"b{uuid.uuid4().hex[:6]}",
            aws__endpoint_url=moto.endpoint,
            log__level="WARNING",
            log__format="console",
            dispatch__resend_interval_seconds=5 * DAY,
            dispatch__level_timeout_seconds=100 * DAY,  # the sweep only re-sends
            dispatch__retry_base_seconds=0.0,
        )
        async with AwsClients(settings) as aws:
            await provision(aws, settings.names)
            await JobManager(aws, settings).create_from_catalog(load_catalog())
            clock = FakeClock()
            dispatcher = wire_dispatcher(settings, aws, _discard, clock)
            store = dispatcher.store
            now = await working_set(dispatcher, settings, clock)
            print(
                f"{'tasks':>7} {'counters s':>10} {'status s':>9} {'calls':>5} {'page s':>8} "
                f"{'calls':>5} "
                f"{'sweep s':>8} {'calls':>5} {'resent':>6}"
            )
            seeded = 70
            for size in sizes:
                await seed_completed(aws, store, dispatcher, seeded, size - seeded, now)
                seeded = size
                counters_s, _ = await timed(store.counters.totals, rounds)
                status_s, status_calls = await timed(
                    lambda: pipeline_status(store, clock.now().timestamp(), 5 * DAY), rounds
                )
                page_s, page_calls = await timed(
                    lambda: store.tasks_page("completed", PAGE), rounds
                )
                await clock.advance(5 * DAY + 1)
                due_now = await store.due("object", clock.now().timestamp(), 1000)
                before, started = calls(), time.perf_counter()
                report = await dispatcher.sweep()
                sweep_s, sweep_calls = time.perf_counter() - started, calls() - before
                print(
                    f"{size:>7} {counters_s:>10.3f} {status_s:>9.3f} {status_calls:>5.0f} "
                    f"{page_s:>8.3f} "
                    f"{page_calls:>5.0f} {sweep_s:>8.3f} {sweep_calls:>5} "
                    f"{report.resent:>6}  (due {len(due_now)})"
                )
    finally:
        moto.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,50000")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main([int(s) for s in args.sizes.split(",")], args.rounds))
