"""Reads that stay flat: status, one list page and one dispatcher sweep at 1k, 10k, 50k tasks.

One moto server, one namespace that grows: at each size the table holds that many tasks
(mostly completed, as a long-running system's table does) plus a fixed working set - ``--due``
active tasks with a waiting data object each and 20 failed ones; before each sweep the clock
moves 5 days, so the waiting objects are due for their same-key re-send. Measured at each
size (median of --rounds):
- ``pipeline_status`` (what `lava status`, `GET /v1/status` and the dashboard read), and
  within it the counter read alone (one GetItem: every count of the funnel);
- one page of 50 tasks from ``GET /v1/tasks`` (status index, cursor pagination);
- one dispatcher sweep over the due objects (claims, SNS PublishBatch, send records);
with the AWS calls each makes (at the end by operation) and the moto server's CPU time per run
(read from /proc: what the machine's load does not inflate). Seeding uses BatchWriteItem (not
measured).

    python -m bench.status_bench [--sizes 1000,10000,50000] [--rounds 5] [--due 30]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devstack.local_stack import MotoServer
from devstack.testing.events import frames_ready
from emulators.settings import LocalSettings
from services.dispatcher.dispatcher import Dispatcher
from services.dispatcher.policy import Abort
from services.dispatcher.policy_cases import new_object, new_task
from services.dispatcher.service import wire_dispatcher
from shared.aws import CALL_TIMES, AwsClients
from shared.clock import FakeClock
from shared.dynamo import to_item
from shared.ids import task_id_of
from shared.labeling.jobs import JobManager
from shared.logging import configure_logging
from shared.operations.status import pipeline_status
from shared.resources import provision
from shared.tasks.counters import task_counter
from shared.tasks.model import TaskStatus
from shared.tasks.store import TaskStore
from shared.workflows import load_catalog

DAY = 86400.0
PAGE = 50


async def _discard(event: Any) -> None:
    return None


def calls() -> int:
    return int(sum(count for count, _ in CALL_TIMES.values()))


def by_operation() -> Counter[str]:
    return Counter({op: int(count) for (_, op), (count, _) in CALL_TIMES.items()})


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc; 0 elsewhere): the moto server's
    work, which the machine's load does not inflate the way it inflates wall time."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Measured:
    seconds: float  # median wall time of one run
    server_ms: float  # the moto server's CPU per run (mean: the clock ticks in 10 ms)
    calls: float  # median AWS calls of one run


class Meter:
    """Runs a read ``rounds`` times; keeps its AWS calls by operation (last run)."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.operations: dict[str, Counter[str]] = {}

    async def measure(
        self, name: str, work: Callable[[], Awaitable[Any]], rounds: int = 1
    ) -> tuple[Measured, Any]:
        seconds, made = [], []
        cpu_before = cpu_seconds(self.server_pid)
        result = None
        for _ in range(rounds):
            ops_before, started = by_operation(), time.perf_counter()
            result = await work()
            seconds.append(time.perf_counter() - started)
            self.operations[name] = by_operation() - ops_before
            made.append(sum(self.operations[name].values()))
        server_ms = (cpu_seconds(self.server_pid) - cpu_before) * 1000 / rounds
        return Measured(statistics.median(seconds), server_ms, statistics.median(made)), result

    def lines(self) -> list[str]:
        return [
            f"  {name}: " + ", ".join(f"{op} {n}" for op, n in sorted(ops.items()))
            for name, ops in self.operations.items()
        ]


def _cells(measured: Measured) -> str:
    return f"{measured.seconds:>8.3f} {measured.server_ms:>6.0f} {measured.calls:>5.0f}"


async def seed_completed(
    aws: AwsClients, store: TaskStore, dispatcher: Dispatcher, start: int, count: int, now: float
) -> None:
    """``count`` completed tasks (task item + done object each), written in batches of 25."""
    db = await aws.dynamodb()
    template = new_task(
        frames_ready("seed", bucket="lava-data").payload, now, [["VOTVehicle"]]
    ).model_copy(update={"status": TaskStatus.COMPLETED})
    batch: list[dict[str, Any]] = []
    for i in range(start, start + count):
        task = template.model_copy(
            update={"task_id": f"seed-{i}.vehicles", "clip_id": f"seed-{i}", "updated_at": now - i}
        )
        obj = new_object(task, "VOTVehicle", 1, now)
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


async def working_set(
    dispatcher: Dispatcher, settings: LocalSettings, clock: FakeClock, due: int
) -> tuple[float, int]:
    """``due`` active tasks waiting at level 1 and 20 failed ones; (when, how many tasks)."""
    live = due + 20
    for i in range(live):
        await dispatcher.on_frames_ready(frames_ready(f"live-{i}", bucket=settings.names.bucket))
    now = clock.now().timestamp()
    for i in range(20):
        task_id = task_id_of(f"live-{i}", "vehicles")
        await dispatcher.handle(task_id, Abort(f"live-{i}", task_id, "bench"))
    return float(now), live


def _header() -> None:
    head = f"{'s':>8} {'srv ms':>6} {'calls':>5}"
    print(f"{'':>7}  {'counters':<21}  {'status':<21}  {'page':<21}  {'sweep':<21}")
    print(f"{'tasks':>7}  {head}  {head}  {head}  {head} {'resent':>6}")


async def main(sizes: list[int], rounds: int, due: int) -> None:
    moto = MotoServer(port=0)
    moto.start()
    try:
        settings = LocalSettings.load(
            namespace=f"b{uuid.uuid4().hex[:6]}",
            aws__endpoint_url=moto.endpoint,
            log__level="WARNING",
            log__format="console",
            dispatch__resend_interval_seconds=5 * DAY,
            dispatch__level_timeout_seconds=100 * DAY,  # the sweep only re-sends
            dispatch__retry_base_seconds=0.0,
            # jobs InProgress at once: the sweep re-sends instead of holding for start-up
            emulator__profile="ideal",
        )
        configure_logging(settings, "bench")
        async with AwsClients(settings) as aws:
            await provision(aws, settings.names)
            await JobManager(aws, settings).create_from_catalog(load_catalog())
            clock = FakeClock()
            dispatcher = wire_dispatcher(settings, aws, _discard, clock)
            store = dispatcher.store
            now, seeded = await working_set(dispatcher, settings, clock, due)
            _header()
            meter = Meter(moto.pid or 0)
            for size in sizes:
                await seed_completed(aws, store, dispatcher, seeded, size - seeded, now)
                seeded = size
                counters, _ = await meter.measure("counters", store.counters.totals, rounds)
                status, _ = await meter.measure(
                    "status",
                    lambda: pipeline_status(store, clock.now().timestamp(), 5 * DAY),
                    rounds,
                )
                page, _ = await meter.measure(
                    "page", lambda: store.tasks_page("completed", PAGE), rounds
                )
                await clock.advance(5 * DAY + 1)
                due_now = await store.due("object", clock.now().timestamp(), 1000)
                sweep, report = await meter.measure("sweep", dispatcher.sweep)
                print(
                    f"{size:>7}  {_cells(counters)}  {_cells(status)}  {_cells(page)}  "
                    f"{_cells(sweep)} {report.resent:>6}  (due {len(due_now)})"
                )
            print("AWS calls by operation (last size):", *meter.lines(), sep="\n")
    finally:
        moto.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,50000")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--due", type=int, default=30, help="Waiting objects due per sweep.")
    args = parser.parse_args()
    asyncio.run(main([int(s) for s in args.sizes.split(",")], args.rounds, args.due))
