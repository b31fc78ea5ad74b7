"""Clip record benchmark: AWS calls and latency of each clip-record step (moto server).

python -m bench.clip_bench [--clips 50] [--fill 0]

Per clip: acceptance (control API's write before ClipIngested), the task's creation (its clip
write rides on it), completion with the dataset entry (one transaction), the clip view, and one
status read at the end (with its failures from tasks and clips). ``--fill N`` first stores N
other items in the tasks table: moto copies every table a transaction touches before applying
it (to roll back), so the completion's cost on moto grows with the tables; DynamoDB's does not.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from devstack.local_stack import MotoServer
from devstack.testing.events import frames_ready
from shared.aws import CALL_TIMES, AwsClients
from shared.dataset.index import DatasetIndex, IndexEntry
from shared.operations.clips import show_clip
from shared.operations.status import pipeline_status
from shared.resources import provision
from shared.settings import load_settings
from shared.tasks.model import AnnotationTask, ClipCompletion, ClipFailure
from shared.tasks.plan import NEW, Changes, LinkClip, PutTask
from shared.tasks.store import TaskStore

STEPS = ("accept", "create task", "fail at ingest", "complete + entry", "clip view", "status")


def _calls() -> dict[tuple[str, str], float]:
    return {k: v[0] for k, v in CALL_TIMES.items()}


async def _timed(
    results: dict[str, list[tuple[float, dict[str, float]]]],
    step: str,
    work: Callable[[], Awaitable[Any]],
) -> None:
    before = _calls()
    started = time.perf_counter()
    await work()
    took = time.perf_counter() - started
    after = _calls()
    delta = {f"{s}:{op}": n - before.get((s, op), 0) for (s, op), n in after.items()}
    results.setdefault(step, []).append((took, {k: n for k, n in delta.items() if n}))


def _entry(clip_id: str) -> IndexEntry:
    return IndexEntry(
        clip_id=clip_id,
        drive_id="d1",
        weather="rainy",
        time_of_day="night",
        route="A1",
        scene="tunnel",
        traffic="undefined",
        traffic_density="low",
        frames=10,
        labels_uri=f"s3://b/labels/{clip_id}.json",
        summary_uri=f"s3://b/summary/{clip_id}.json",
        completed_at=0.0,
    )


def _task(clip_id: str) -> AnnotationTask:
    fields = frames_ready(clip_id).payload.model_dump()
    return AnnotationTask.model_validate(
        {**fields, "levels": [["J"]], "created_at": 1, "updated_at": 1, "level_started_at": 1}
    )


async def _clip(aws: AwsClients, settings: Any, results: Any, i: int) -> None:
    store, index = TaskStore(aws, settings), DatasetIndex(aws, settings)
    clip_id = f"clip-{i:05d}"
    task = _task(clip_id)
    await _timed(results, "accept", lambda: store.clips.accept(clip_id, [task.task_id], 1.0))
    if i % 10 == 9:  # one in ten fails at ingest
        failure = ClipFailure(stage="ingest", reason="clip not found")
        await _timed(
            results, "fail at ingest", lambda: store.set_clip_outcome(clip_id, failure, 2.0)
        )
        return
    created = Changes(writes=(PutTask(task, NEW),), link=LinkClip(clip_id, task.task_id, 1.5))
    await _timed(results, "create task", lambda: store.commit(created))
    done = ClipCompletion(labels_uri="s3://b/l.json", summary_uri="s3://b/s.json")

    async def complete() -> None:
        seen = await index.clips.get(clip_id)  # what post-processing reads first
        await index.clips.complete_with(
            clip_id, done, 3.0, [index.put_action(_entry(clip_id))], seen=seen
        )

    await _timed(results, "complete + entry", complete)
    await _timed(results, "clip view", lambda: show_clip(store, clip_id))


async def _fill(aws: AwsClients, table: str, count: int) -> None:
    db = await aws.dynamodb()
    for start in range(0, count, 25):
        batch: list[Any] = [
            {"PutRequest": {"Item": {"pk": {"S": f"filler#{i}"}, "sk": {"S": "x"}}}}
            for i in range(start, min(count, start + 25))
        ]
        await db.batch_write_item(RequestItems={table: batch})


def _report(results: dict[str, list[tuple[float, dict[str, float]]]]) -> None:
    print(f"{'step':<18} {'n':>4} {'p50 ms':>8} {'p99 ms':>8}  AWS calls per step")
    for step in STEPS:
        runs = results.get(step, [])
        if not runs:
            continue
        times = sorted(t * 1000 for t, _ in runs)
        p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
        calls: dict[str, float] = {}
        for _, delta in runs:
            for name, n in delta.items():
                calls[name] = calls.get(name, 0) + n / len(runs)
        shown = ", ".join(f"{k} {v:g}" for k, v in sorted(calls.items()))
        print(f"{step:<18} {len(runs):>4} {statistics.median(times):8.1f} {p99:8.1f}  {shown}")


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=50)
    parser.add_argument("--fill", type=int, default=0)
    args = parser.parse_args()
    server = MotoServer(port=0)
    server.start()
    try:
        settings = load_settings(
            namespace=f"cb{uuid.uuid4().hex[:6]}", aws__endpoint_url=server.endpoint
        )
        results: dict[str, list[tuple[float, dict[str, float]]]] = {}
        async with AwsClients(settings) as aws:
            await provision(aws, settings.names)
            await _fill(aws, settings.names.table("tasks"), args.fill)
            for i in range(args.clips):
                await _clip(aws, settings, results, i)
            store = TaskStore(aws, settings)
            for _ in range(5):
                await _timed(results, "status", lambda: pipeline_status(store, 4.0, 86400.0))
        _report(results)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
