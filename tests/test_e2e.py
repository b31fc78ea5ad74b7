"""The whole pipeline, every part a real process: RabbitMQ, a moto server, the Ground Truth
emulator and the four services."""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import aio_pika
import pytest

from lava.local_pipeline import metric
from lava.status import Snapshot, snapshot
from shared.aws import AwsClients
from shared.bus import DEAD_REASON_HEADER
from shared.dynamo import items
from shared.events import ClipCompleted, decode_event, new_event
from shared.labeling.jobs import JobManager, JobRegistry
from shared.layout import summary_key
from shared.settings import Settings
from shared.storage import S3Store
from shared.tasks.model import ClipFailure, ClipRecord
from tests.support.broker import drop_connections, get_messages
from tests.support.clips import truncate
from tests.support.e2e import (
    WORKFLOW_CLASSES,
    frame_index,
    labels_of,
    make_clips,
    match_truth,
    pipeline,
    upload,
    wait_for_clips,
)
from tests.support.tracking_metrics import tracking_scores

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

WORKFLOWS = ["vehicles", "lanes", "signs_lights"]


# Level-1 workers make mistakes the adjustment level corrects (all of them here): jittered
# boxes, missed objects, wrong attributes. The emulator runs its realistic profile: UUID object
# ids, partial attribute sets, class maps of present classes only.
NOISY_LEVEL_1 = {
    "box_jitter": 6.0,
    "miss_share": 0.15,
    "wrong_attribute_share": 0.2,
    "adjust_fix_share": 1.0,
}
TRACKED_BOXES = {"vehicle", "pedestrian"}


async def test_clips_through_every_workflow_and_level(tmp_path: Path, rabbitmq: str) -> None:
    clips = make_clips(tmp_path, 3)
    async with pipeline(tmp_path, **NOISY_LEVEL_1) as run:
        assert run.settings is not None
        ids = await upload(run.settings, clips, WORKFLOWS)
        snap = await wait_for_clips(run.settings, ids)
        assert snap.failures() == []
        assert {snap.clips[c].status for c in ids} == {"completed"}
        statuses = {t.task_id: t.status for t in snap.tasks.values()}
        assert set(statuses.values()) == {"completed"}
        assert len(snap.tasks) == 3 * len(WORKFLOWS)
        gaps: list[int] = []
        adjusted: list[str | None] = []
        for clip, clip_id in zip(clips, ids, strict=True):
            labels = await labels_of(run.settings, clip_id)
            index = await frame_index(run.settings, clip_id, 2)
            classes = set().union(*(WORKFLOW_CLASSES[w] for w in WORKFLOWS))
            assert match_truth(labels, clip.labels, index, classes) == []
            scores = tracking_scores(labels, clip.labels, index, classes & TRACKED_BOXES)
            assert scores.truth_boxes > 0
            assert scores.mota >= 0.99 and scores.idf1 >= 0.99, scores
            assert labels.frames[0].drive == clip.labels.drive
            summary = await summary_agrees(run.settings, clip_id, labels)
            # partial attribute sets were filled from their tracks; nothing stayed missing
            assert summary["attribute_gaps"]["missing"] == 0
            gaps.append(summary["attribute_gaps"]["carried"])
            adjusted.extend(a["adjustment_status"] for a in summary["adjustment"])
        assert sum(gaps) > 0
        assert "adjusted" in adjusted  # Ground Truth says so only where a worker changed labels


async def summary_agrees(settings: Settings, clip_id: str, labels: Any) -> dict[str, Any]:
    async with AwsClients(settings) as aws:
        summary = json.loads(
            await S3Store(aws).get_bytes(settings.names.bucket, summary_key(clip_id))
        )
    counts = Counter(o.category for f in labels.frames for o in f.objects)
    assert summary["objects_per_class"] == dict(counts)
    assert summary["frames"] == len(labels.frames)
    tracks = {(o.category, o.track_id) for f in labels.frames for o in f.objects if o.track_id}
    assert sum(summary["tracks_per_class"].values()) == len(tracks)
    found: dict[str, Any] = summary
    return found


async def data_objects(settings: Settings) -> list[dict[str, Any]]:
    async with AwsClients(settings) as aws:
        db = await aws.dynamodb()
        found = items(db, "scan", TableName=settings.names.table("tasks"))
        return [item async for item in found if item.get("kind") == "obj"]


async def emulator_counters(settings: Settings) -> Counter[str]:
    total: Counter[str] = Counter()
    async with AwsClients(settings) as aws:
        for job in await JobRegistry(aws, settings).list():
            total.update(job.counters)
    return total


def _failure(clip: ClipRecord) -> ClipFailure:
    assert isinstance(clip.outcome, ClipFailure), clip
    return clip.outcome


def all_completed(snap: Snapshot, ids: list[str]) -> None:
    assert snap.failures() == [], snap.failures()
    assert {snap.clips[c].status for c in ids} == {"completed"}


async def test_an_expiry_storm(tmp_path: Path, rabbitmq: str) -> None:
    clips = make_clips(tmp_path, 3)
    async with pipeline(tmp_path, expire_share=0.3, time_scale=5e-6) as run:
        assert run.settings is not None
        ids = await upload(run.settings, clips, ["vehicles", "lanes"])
        snap = await wait_for_clips(run.settings, ids, timeout=240)
        all_completed(snap, ids)
        objects = await data_objects(run.settings)
        await asyncio.sleep(1.5)  # the emulator's last counters reach the registry
        counters = await emulator_counters(run.settings)
    expirations = sum(int(o["expirations"]) for o in objects)
    assert expirations > 0, "the storm should have expired something"
    for obj in objects:
        keys = obj["keys"]
        # each expiry caused exactly one new key, and nothing else did
        assert len(keys) == int(obj["expirations"]) + 1 == len(set(keys))
        assert obj["expired_keys"] == keys[:-1]
    assert counters["expired"] == expirations
    assert counters["live_duplicates"] == 0  # never two live tasks for one data object


async def test_retention_drops_are_rescued_by_same_key_resends(
    tmp_path: Path, rabbitmq: str
) -> None:
    clips = make_clips(tmp_path, 2, seconds=2)
    scale = 1.5 / (14 * 24 * 3600)  # the 14-day input-queue retention becomes 1.5 s
    slow = {
        "time_scale": scale,
        "max_concurrent_tasks": 1,
        "latency_min": 2.5,
        "latency_max": 2.5,
        "extra_env": {
            "LAVA_DISPATCH__LEVEL_TIMEOUT_SECONDS": "120",
            "LAVA_LABELING__TASK_AVAILABILITY_SECONDS": str(200 * 24 * 3600),  # never expires here
        },
    }
    async with pipeline(tmp_path, **slow) as run:
        assert run.settings is not None
        ids = await upload(run.settings, clips, ["vehicles"])
        snap = await wait_for_clips(run.settings, ids, timeout=240)
        all_completed(snap, ids)
        objects = await data_objects(run.settings)
        await asyncio.sleep(1.5)
        counters = await emulator_counters(run.settings)
    assert counters["dropped_by_retention"] > 0  # items vanished from the job's queue...
    assert all(len(o["keys"]) == 1 for o in objects)  # ...and came back under the same key
    assert sum(int(o["send_count"]) for o in objects) > len(objects)
    assert counters["expired"] == 0


async def test_services_killed_at_random_moments(tmp_path: Path, rabbitmq: str) -> None:
    clips = make_clips(tmp_path, 3)
    rng = random.Random(7)
    kills: Counter[str] = Counter()
    async with pipeline(tmp_path) as run:
        assert run.settings is not None
        ports = {service: process.port for service, process in run.processes.items()}

        async def chaos() -> None:
            order = ["ingest", "dispatcher", "listener", "postproc"] * 2
            rng.shuffle(order)
            for service in order:
                await asyncio.sleep(rng.uniform(0.5, 2.0))
                run.kill(service)  # SIGKILL: no drain, no clean-up
                kills[service] += 1
                await asyncio.sleep(rng.uniform(0.0, 1.0))
                await run.restart(service)
                # served again on the socket the pipeline holds for it (shared/listening.py)
                assert run.processes[service].port == ports[service]

        monkey = asyncio.create_task(chaos())
        ids = await upload(run.settings, clips, ["vehicles", "lanes"])
        await monkey
        snap = await wait_for_clips(run.settings, ids, timeout=240)
        all_completed(snap, ids)
        outcomes = await get_messages(
            run.settings, run.settings.names.queue("outcomes"), 100, timeout=3
        )
    assert set(kills) == {"ingest", "dispatcher", "listener", "postproc"}
    completed: dict[str, set[str]] = {}
    for message in outcomes:
        event = decode_event(message.body)
        if isinstance(event.payload, ClipCompleted):
            completed.setdefault(event.payload.clip_id, set()).add(event.event_id)
    # every clip completed, and as one completion (a redelivery repeats the same event)
    assert {k: len(v) for k, v in completed.items()} == {c: 1 for c in ids}
    assert len(snap.tasks) == len(ids) * 2


async def test_broker_connections_closed_mid_run(tmp_path: Path, rabbitmq: str) -> None:
    clips = make_clips(tmp_path, 3)
    async with pipeline(tmp_path) as run:
        assert run.settings is not None
        ids = await upload(run.settings, clips, ["vehicles", "lanes"])
        for _ in range(2):
            await asyncio.sleep(1.5)
            assert await asyncio.to_thread(drop_connections, run.settings.namespace, "e2e drill")
        snap = await wait_for_clips(run.settings, ids, timeout=240)
        all_completed(snap, ids)
        await run.wait_ready(("ingest", "dispatcher", "listener", "postproc"), timeout=30)


# With this seed every AWS client's first or second call is throttled, so each service's retry
# path runs for certain; a fresh random draw left a 2-clip ingest unthrottled ~4% of the time.
FAULT_SEED = "815"


async def test_throttled_aws_calls(tmp_path: Path, rabbitmq: str) -> None:
    clips = make_clips(tmp_path, 2)
    async with pipeline(
        tmp_path, aws_fault_rate=0.1, extra_env={"LAVA_FAULT__SEED": FAULT_SEED}
    ) as run:
        assert run.settings is not None
        ids = await upload(run.settings, clips, ["vehicles", "signs_lights"])
        snap = await wait_for_clips(run.settings, ids, timeout=240)
        all_completed(snap, ids)
        injected = {
            service: sum(
                metric(process.port, "lava_aws_faults_injected", {"aws": aws})
                for aws in ("s3", "sns", "sqs", "dynamodb")
            )
            for service, process in run.processes.items()
        }
    assert sum(injected.values()) > 20, injected
    services = ("ingest", "dispatcher", "listener", "postproc")
    assert all(injected[s] > 0 for s in services), injected


async def test_every_event_delivered_twice(tmp_path: Path, rabbitmq: str) -> None:
    clips = make_clips(tmp_path, 2)
    async with pipeline(tmp_path, duplicate_delivery=True) as run:
        assert run.settings is not None
        ids = await upload(run.settings, clips, ["vehicles", "lanes"])
        snap = await wait_for_clips(run.settings, ids, timeout=180)
        all_completed(snap, ids)
        objects = await data_objects(run.settings)
        for clip, clip_id in zip(clips, ids, strict=True):
            labels = await labels_of(run.settings, clip_id)
            index = await frame_index(run.settings, clip_id, 2)
            assert match_truth(labels, clip.labels, index, {"vehicle", "lane"}) == []
    assert len(snap.tasks) == 4 and len(objects) == 8  # 2 clips x 2 workflows x 2 levels
    assert all(len(o["keys"]) == 1 for o in objects)  # nothing re-keyed


async def test_bad_input_ends_visibly_while_good_clips_complete(
    tmp_path: Path, rabbitmq: str
) -> None:
    clips = make_clips(tmp_path, 3)
    async with pipeline(tmp_path) as run:
        s = run.settings
        assert s is not None
        async with AwsClients(s) as aws:
            store = S3Store(aws)
            await store.put_bytes(s.names.bucket, "raw/bad/notes.mp4", b"not a video\n" * 100)
            cut = truncate(clips[0].video, tmp_path / "cut.mp4", 0.5)
            await store.put_bytes(s.names.bucket, "raw/bad/cut.mp4", cut.read_bytes())
        bad_uploads = [
            ("notes", f"s3://{s.names.bucket}/raw/bad/notes.mp4", ["vehicles"]),
            ("cut", f"s3://{s.names.bucket}/raw/bad/cut.mp4", ["vehicles"]),
            ("foreign", "s3://somebody-else/raw/x.mp4", ["vehicles"]),
        ]
        from devstack.testing.events import clip_ingested
        from shared.bus import Bus

        async with Bus(s, client_name="e2e") as bus:
            for clip_id, uri, workflows in bad_uploads:
                await bus.publish(
                    new_event(clip_ingested(clip_id, video_uri=uri, workflows=workflows), clip_id)
                )
            connection = await aio_pika.connect(s.broker.amqp_url.get_secret_value())
            channel = await connection.channel()
            exchange = await channel.get_exchange(s.names.exchange)
            await exchange.publish(
                aio_pika.Message(b'{"type": "ClipIngested", "version": 1}'),
                routing_key="ClipIngested",
            )
            await connection.close()
        ids = await upload(s, clips[:2], ["vehicles"])
        unknown = await upload(s, [clips[2]], ["bicycles"])  # an unknown workflow
        async with AwsClients(s) as aws:
            sns = await aws.sns()
            job = await JobRegistry(aws, s).get("VOTVehicle")
            assert job is not None
            await sns.publish(TopicArn=job.output_topic_arn, Message="garbage on an output topic")
        snap = await wait_for_clips(s, [*ids, "notes", "cut", "foreign", *unknown], timeout=180)
        for clip_id in ids:
            assert snap.clips[clip_id].status == "completed"
        reasons = {c: _failure(snap.clips[c]).reason for c in ("notes", "cut", "foreign")}
        assert "not a readable video" in reasons["notes"]
        assert "truncated or corrupt MP4/MOV" in reasons["cut"]
        assert "bucket 'somebody-else' is not allowed" in reasons["foreign"]
        failed_task = snap.tasks[f"{unknown[0]}.bicycles"]
        assert failed_task.status == "failed"
        assert "unknown workflow 'bicycles'" in (failed_task.failure_reason or "")
        # the run's caller is the operator; a dead-letter queue is read as the broker's admin
        assert run.admin is not None
        dead = await get_messages(run.admin, s.names.dead_letter_queue("ingest"), 1, timeout=10)
        assert "invalid event" in str(dead[0].headers[DEAD_REASON_HEADER])
        async with AwsClients(s) as aws:
            sqs = await aws.sqs()
            url = (await sqs.get_queue_url(QueueName=f"{s.namespace}-gt-output-dead"))["QueueUrl"]
            found: list[Any] = []
            for _ in range(40):
                got = await sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)
                found += got.get("Messages", [])
                if found:
                    break
            assert found and "garbage on an output topic" in found[0]["Body"]


# Ground Truth's Initializing period, scaled to 8 s at the pipeline's time scale (2e-5). A
# worker takes 8 s per task, so a task is still open when its job is stopped.
LIFECYCLE = {"initializing_seconds": 8 / 2e-5, "latency_min": 8.0, "latency_max": 8.0}


async def held_for(settings: Settings, job: str, words: str, timeout: float = 60) -> None:
    """Until `lava status` shows a data object held for ``job`` with ``words`` in the reason."""
    deadline = asyncio.get_running_loop().time() + timeout
    async with AwsClients(settings) as aws:
        while True:
            snap = await snapshot(aws, settings)
            if any(j == job and words in reason for j, reason in snap.held):
                return
            assert asyncio.get_running_loop().time() < deadline, snap.held
            await asyncio.sleep(0.25)


async def test_work_waits_for_initializing_and_stopped_jobs_and_then_resumes(
    tmp_path: Path, rabbitmq: str
) -> None:
    clips = make_clips(tmp_path, 2, seconds=2)
    async with pipeline(tmp_path, **LIFECYCLE) as run:
        s = run.settings
        assert s is not None
        async with AwsClients(s) as aws:
            manager = JobManager(aws, s)
            # Fed while its job is stopped, then while the re-created job is Initializing: held
            # visibly all along, and nothing published too early.
            await manager.stop("VOTVehicle")
            (first,) = await upload(s, clips[:1], ["vehicles"])
            await held_for(s, "VOTVehicle", "it is Stopped")
            recreated = await manager.create("VOTVehicle", "vehicle")
            assert recreated.job.generation == 2 and recreated.job.status == "Initializing"
            await held_for(s, "VOTVehicle", "it is Initializing")
        snap = await wait_for_clips(s, [first], timeout=180)
        all_completed(snap, [first])

        # A job stopped mid-run: its data object is held, visibly, and resumed with a new key
        # once the job is created again. The stop comes right after the dispatcher's next first
        # send (its /metrics, read cheaply), while the worker still has the task.
        port = run.processes["dispatcher"].port
        sends = {"action": "sends"}
        before = await asyncio.to_thread(metric, port, "lava_dispatch_actions_total", sends)
        (second,) = await upload(s, clips[1:], ["vehicles"])
        task_id = f"{second}.vehicles"
        for _ in range(1200):
            now = await asyncio.to_thread(metric, port, "lava_dispatch_actions_total", sends)
            if now > before:
                break
            await asyncio.sleep(0.05)
        async with AwsClients(s) as aws:
            manager = JobManager(aws, s)
            await manager.stop("VOTVehicle")
            await held_for(s, "VOTVehicle", "it is Stopped")
            recreated = await manager.create("VOTVehicle", "vehicle")
            assert recreated.created and recreated.job.generation == 3
        snap = await wait_for_clips(s, [second], timeout=180)
        all_completed(snap, [second])
        (obj,) = [
            o for o in await data_objects(s) if o["task_id"] == task_id and o["job"] == "VOTVehicle"
        ]
        await asyncio.sleep(1.5)  # the emulator's last counters reach the registry
        counters = await emulator_counters(s)
    assert len(obj["keys"]) == 2 and int(obj["generation"]) == 3  # a new job: a new key
    assert int(obj["expirations"]) == 0
    assert counters.get("lost_initializing", 0) == 0  # held, never published too early
