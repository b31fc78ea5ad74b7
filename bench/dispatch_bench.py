"""Dispatcher benchmark, on one moto server and the machine's RabbitMQ.

1. Throughput: N FramesReady handled by the dispatcher (ONE TransactWriteItems: the task, its
   object with its next re-send, the counters and the clip record's link; SNS PublishBatch;
   no confirmation since 2026-12-07) at concurrency C, against the bare aiobotocore calls the
   same work needs (TransactWriteItems, PublishBatch) with the same items, at the same
   concurrency, alternating rounds.
   Target: the dispatcher takes at most 1.3x the bare calls' time.
2. Latency from a LevelCompleted published on the bus to the next level's first publish to
   SNS, through the running dispatcher service (p50/p99).

    python -m bench.dispatch_bench [--objects 200] [--concurrency 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from typing import Any

from devstack.local_stack import MotoServer
from devstack.testing.events import completed, frames_ready
from emulators.settings import LocalSettings
from services.dispatcher.dispatcher import Dispatcher
from services.dispatcher.policy_cases import new_object, new_task
from services.dispatcher.sender import InputSender
from services.dispatcher.service import make_dispatcher, wire_dispatcher
from shared.aws import AwsClients
from shared.bus import Bus
from shared.clock import SystemClock
from shared.events import FramesReady, LevelCompleted
from shared.labeling.jobs import JobManager
from shared.labeling.streaming_job import StreamingJob
from shared.resources import provision
from shared.runtime import ServiceRuntime
from shared.settings import Settings
from shared.tasks.plan import NEW, LinkClip, PutObject, PutTask
from shared.tasks.store import TaskStore
from shared.workflows import load_catalog

TARGET = 1.3


class NullPublish:
    async def __call__(self, event: Any) -> None:
        return None


async def bare_calls(
    aws: AwsClients, settings: Settings, topic: str, store: TaskStore, task_id: str
) -> None:
    """What dispatching one data object costs at the least: the same AWS requests with the
    same items (encoded by the store's own helpers), and none of the dispatcher's logic: ONE
    TransactWriteItems (task, object, counters with the new clip's, the clip record's link)
    and the PublishBatch."""
    db, sns = await aws.dynamodb(), await aws.sns()
    now = time.time()
    ready = frames_ready(task_id.removesuffix(".vehicles"), bucket=settings.names.bucket).payload
    task = new_task(ready, now, [["VOTVehicle"], ["AdjVOTVehicle"]]).model_copy(
        update={"due_at": now + 432000, "rev": 1}
    )
    claimed = {"send_count": 1, "last_sent_at": now, "due_at": now + 432000, "rev": 1}
    obj = new_object(task, "VOTVehicle", 1, now).model_copy(update=claimed)
    counts = {"t_active_1": 1, "objects": 1, "o_waiting": 1, "sends": 1, "c_labeling": 1}
    items: list[Any] = [
        store._write_request(PutTask(task, NEW)),
        store._write_request(PutObject(obj, NEW)),
        *store.counters.updates(counts, {"sends": 1}, now),
        store._link_request(LinkClip(task.clip_id, task.task_id, now), new_clip=True),
    ]
    await db.transact_write_items(TransactItems=items)
    body = {
        "source-ref": ready.frames.sequence_uri,
        "dataset-objectid-attribute-name": "lava-dedup-id",
        "lava-dedup-id": obj.key,
    }
    await sns.publish_batch(
        TopicArn=topic, PublishBatchRequestEntries=[{"Id": "0", "Message": json.dumps(body)}]
    )


async def timed(count: int, concurrency: int, one: Any) -> float:
    gate = asyncio.Semaphore(concurrency)

    async def run(i: int) -> None:
        async with gate:
            await one(i)

    started = time.perf_counter()
    await asyncio.gather(*(run(i) for i in range(count)))
    return time.perf_counter() - started


async def fresh(settings: Settings, aws: AwsClients) -> tuple[Settings, str]:
    """A new namespace (tables, topics, queues): every round starts from empty tables, so
    both paths meet the same table sizes and queue depths."""
    ns = settings.replace(namespace=f"b{uuid.uuid4().hex[:8]}")
    await provision(aws, ns.names)
    jobs = await create_jobs(aws, ns)
    return ns, jobs["VOTVehicle"].input_topic_arn


async def throughput(
    args: argparse.Namespace, settings: Settings, aws: AwsClients
) -> tuple[float, float]:
    ours, bare = [], []
    for r in range(args.rounds):
        ns, _ = await fresh(settings, aws)
        dispatcher: Dispatcher = wire_dispatcher(ns, aws, NullPublish(), SystemClock())
        await dispatcher.on_frames_ready(frames_ready("warm", bucket=ns.names.bucket))
        ours.append(
            await timed(
                args.objects,
                args.concurrency,
                lambda i, d=dispatcher, n=ns: d.on_frames_ready(
                    frames_ready(f"d-{i}", bucket=n.names.bucket)
                ),
            )
        )
        ns, topic = await fresh(settings, aws)
        store = TaskStore(aws, ns)
        await bare_calls(aws, ns, topic, store, "warm.vehicles")
        bare.append(
            await timed(
                args.objects,
                args.concurrency,
                lambda i, n=ns, t=topic, st=store: bare_calls(aws, n, t, st, f"b-{i}.vehicles"),
            )
        )
        print(
            f"round {r + 1}: dispatcher {ours[-1]:.2f} s, bare calls {bare[-1]:.2f} s", flush=True
        )
    return statistics.median(ours), statistics.median(bare)


class TimingSender(InputSender):
    def __init__(self, aws: AwsClients, key_name: str) -> None:
        super().__init__(aws, key_name)
        self.first_publish: dict[str, float] = {}

    async def send(self, items: Any) -> None:
        await super().send(items)
        now = time.perf_counter()
        for obj, _, _ in items:
            if obj.level == 2:
                self.first_publish.setdefault(obj.task_id, now)


async def latency(args: argparse.Namespace, settings: Settings, aws: AwsClients) -> list[float]:
    jobs = await create_jobs(aws, settings)
    runtime = ServiceRuntime("dispatcher", settings, consumer="dispatcher")
    dispatcher = make_dispatcher(runtime)
    sender = TimingSender(aws, settings.dispatch.dedup_key_name)
    dispatcher.applier.sender = sender
    runtime.handle(FramesReady, dispatcher.on_frames_ready)
    runtime.handle(LevelCompleted, dispatcher.on_level_completed)
    # The topology first: a service that starts before it exists stops with TopologyMissing
    # (it does not declare), and a bench that waited for its readiness would wait forever.
    bus = Bus(settings, client_name="lava-bench", declare=True)
    await bus.connect()
    run = asyncio.create_task(runtime.run(install_signals=False))
    try:
        while not runtime.ready:
            if run.done():
                run.result()  # the service's own error
                raise RuntimeError("the dispatcher stopped before it was ready")
            await asyncio.sleep(0.05)
        samples = []
        job = jobs["VOTVehicle"]
        for i in range(args.latency_samples):
            ready = frames_ready(f"lat-{i}", bucket=settings.names.bucket)
            await dispatcher.on_frames_ready(ready)
            (obj,) = await dispatcher.store.objects(ready.payload.task_id)
            started = time.perf_counter()
            await bus.publish(completed(ready.payload.task_id, job, obj.key, settings.names.bucket))
            while ready.payload.task_id not in sender.first_publish:
                await asyncio.sleep(0.001)
            samples.append(sender.first_publish[ready.payload.task_id] - started)
        return samples
    finally:
        runtime.request_stop()
        await run
        await bus.delete_topology()
        await bus.close()


def pct(values_: list[float], q: float) -> float:
    ordered = sorted(values_)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency-samples", type=int, default=200)
    args = parser.parse_args()
    server = MotoServer(port=0)
    server.start()
    try:
        settings = LocalSettings.load(
            namespace=f"bench{uuid.uuid4().hex[:6]}",
            aws__endpoint_url=server.endpoint,
            log__level="WARNING",
            log__format="console",
            runtime__health_port=0,
            # jobs InProgress at once: the bench measures sending, not Ground Truth's start-up
            emulator__profile="ideal",
        )
        from shared.logging import configure_logging

        configure_logging(settings, "bench")
        async with AwsClients(settings) as aws:
            await provision(aws, settings.names)
            ours, bare = await throughput(args, settings, aws)
            lat = await latency(args, (await fresh(settings, aws))[0], aws)
    finally:
        server.stop()
    ratio = ours / bare
    print(
        f"\n{args.objects} data objects at concurrency {args.concurrency}, median of "
        f"{args.rounds} rounds (same moto server):"
    )
    print(f"  dispatcher   {ours:6.2f} s  ({args.objects / ours:6.1f} objects/s)")
    print(f"  bare calls   {bare:6.2f} s  ({args.objects / bare:6.1f} objects/s)")
    verdict = "met" if ratio <= TARGET else "NOT met"
    print(f"  ratio        {ratio:6.2f}  (target <= {TARGET}) -> {verdict}")
    print(
        f"LevelCompleted on the bus -> next level's first SNS publish, {len(lat)} samples: "
        f"p50 {pct(lat, 0.5) * 1000:.1f} ms, p99 {pct(lat, 0.99) * 1000:.1f} ms"
    )
    return 0 if ratio <= TARGET else 1


async def create_jobs(aws: AwsClients, settings: Settings) -> dict[str, StreamingJob]:
    results = await JobManager(aws, settings).create_from_catalog(load_catalog())
    return {r.job.name: r.job for r in results}


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
