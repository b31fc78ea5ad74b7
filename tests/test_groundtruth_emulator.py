"""The Ground Truth emulator, observed from outside through SNS, SQS and S3 only."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from emulators.groundtruth.store import EmulatedTask, EmulatedTaskStore
from emulators.settings import LocalSettings
from shared.aws import AwsClients
from shared.groundtruth.annotations import parse_seq_label
from shared.groundtruth.convert import from_seq_label
from shared.groundtruth.messages import OutputStatus, parse_output_message
from shared.labeling.jobs import JobManager
from shared.labeling.streaming_job import StreamingJob
from shared.layout import parse_s3_uri
from shared.storage import S3Store
from shared.taxonomy.records import ClipLabels
from tests.support.broker import wait_until
from tests.support.gt import emulator, emulator_settings, output_queue, receive, send, staged_clip

pytestmark = pytest.mark.integration

WEEK = 7 * 24 * 3600


async def _jobs(aws: AwsClients, settings: LocalSettings) -> tuple[StreamingJob, StreamingJob]:
    manager = JobManager(aws, settings)
    first = (await manager.create("VOTVehicle", "vehicle")).job
    adjust = (await manager.create("AdjVOTVehicle", "vehicle", adjusts="VOTVehicle")).job
    return first, adjust


@pytest.fixture
async def staged(aws: AwsClients, settings: LocalSettings, tmp_path: Path) -> AsyncIterator[Any]:
    source, truth = await staged_clip(aws, settings, tmp_path, "clip-e1")
    yield source, truth


async def _labels(aws: AwsClients, output: dict[str, Any], attribute: str) -> Any:
    message = parse_output_message(output, attribute)
    assert message.label_uri is not None
    seq = parse_seq_label(await S3Store(aws).get_bytes(*parse_s3_uri(message.label_uri)))
    frames, problems = from_seq_label(seq, message.class_map)
    assert problems == []
    return message, frames


def _track(obj: Any) -> str:
    return str(obj.track_id)


def _truth_vehicles(truth: ClipLabels, source_frames: list[int]) -> list[list[Any]]:
    by_no = {f.frame_no: f for f in truth.frames}
    return [[o for o in by_no[s].objects if o.category == "vehicle"] for s in source_frames]


async def test_first_level_labels_come_from_the_sidecar(
    aws: AwsClients, settings: LocalSettings, staged: Any
) -> None:
    source, truth = staged
    job, _ = await _jobs(aws, settings)
    out = await output_queue(aws, job, f"{settings.namespace}-out")
    async with emulator(emulator_settings(settings), aws):
        await send(aws, job, source, "task/a1/VOTVehicle/0")
        (output,) = await receive(aws, out, 1)
    message, frames = await _labels(aws, output, job.label_attribute)
    assert message.status is OutputStatus.COMPLETED
    assert message.job_name == job.gt_name
    assert output["lava-dedup-id"] == "task/a1/VOTVehicle/0"
    assert [list(f.objects) for f in frames] == _truth_vehicles(truth, [0, 30, 60])


async def test_a_duplicate_key_is_labeled_once_and_a_new_key_again(
    aws: AwsClients, settings: LocalSettings, staged: Any
) -> None:
    source, _ = staged
    job, _ = await _jobs(aws, settings)
    out = await output_queue(aws, job, f"{settings.namespace}-out")
    emu_settings = emulator_settings(settings)
    async with emulator(emu_settings, aws) as emu:
        await send(aws, job, source, "k/1")
        await send(aws, job, "s3://elsewhere/whatever.json", "k/1")  # same key, other content
        first = await receive(aws, out, 1, timeout=120)

        async def second_copy_ignored() -> bool:
            return (await emu.counters(job.name)).get("duplicates_ignored") == 1

        # the event meant, not a quiet spell: the emulator has taken the copy and dropped it
        # (a 4 s window for both was too short for k/1 itself on a loaded machine)
        await wait_until(second_copy_ignored, 120, interval=0.5)
        await send(aws, job, source, "k/2")  # a new key for the same frames
        second = await receive(aws, out, 1, timeout=120)
    assert [o["lava-dedup-id"] for o in first] == ["k/1"]
    assert [o["lava-dedup-id"] for o in second] == ["k/2"]
    counters = await emu.counters(job.name)
    assert counters["duplicates_ignored"] == 1 and counters["labeled"] == 2


async def test_concurrency_cap_holds(aws: AwsClients, settings: LocalSettings, staged: Any) -> None:
    source, _ = staged
    capped = emulator_settings(
        settings.replace(labeling__max_concurrent_tasks=2),
        emulator__latency_min_seconds=1.0,
        emulator__latency_max_seconds=1.0,
    )
    job, _ = await _jobs(aws, capped)
    assert job.max_concurrent_tasks == 2
    out = await output_queue(aws, job, f"{settings.namespace}-out")
    sqs = await aws.sqs()
    queue = (await sqs.get_queue_url(QueueName=job.gt_queue_name))["QueueUrl"]
    async with emulator(capped, aws) as emu:
        for i in range(5):
            await send(aws, job, source, f"cap/{i}")
        metrics = f"http://127.0.0.1:{emu.runtime.health_port}/metrics"
        peak, waiting_seen = 0.0, 0
        done: list[dict[str, Any]] = []
        # A bound against a hang, not a speed check: 5 tasks at 1 s each through a cap of 2
        # take about 3 s idle, far more on a loaded CI machine (10 s failed at load 11).
        deadline = time.monotonic() + 120
        while len(done) < 5 and time.monotonic() < deadline:
            peak = max(peak, await asyncio.to_thread(_open_tasks, metrics, job.name))
            attrs = await sqs.get_queue_attributes(
                QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"]
            )
            waiting_seen = max(
                waiting_seen, int(attrs["Attributes"]["ApproximateNumberOfMessages"])
            )
            done += await receive(aws, out, 5 - len(done), timeout=0.2)
    assert len(done) == 5
    assert peak == 2  # never more than MaxConcurrentTaskCount open
    assert waiting_seen >= 2  # the rest waited in the job's queue


def _open_tasks(url: str, job: str) -> float:
    text = urllib.request.urlopen(url, timeout=2).read().decode()
    for line in text.splitlines():
        if line.startswith("lava_gt_emulator_open_tasks{") and f'job="{job}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_an_expired_task_yields_the_expired_message(
    aws: AwsClients, settings: LocalSettings, staged: Any
) -> None:
    source, _ = staged
    # availability lifetime of a week, scaled to four seconds (the 14-day retention to eight)
    quick = emulator_settings(settings, emulator__expire_share=1.0, emulator__time_scale=4 / WEEK)
    job, _ = await _jobs(aws, quick)
    out = await output_queue(aws, job, f"{settings.namespace}-out")
    store = EmulatedTaskStore(aws, quick)
    opened: list[EmulatedTask] = []

    async def task_opened() -> bool:
        opened[:] = await store.open_tasks(job.gt_name)
        return bool(opened)

    async with emulator(quick, aws) as emu:
        # Send once the job is watched: the scaled retention starts at the send.
        await wait_until(lambda: emu.simulating(job.name), timeout=30)
        await send(aws, job, source, "exp/1")
        await wait_until(task_opened, timeout=30)
        (output,) = await receive(aws, out, 1, timeout=30)
    # Due when the (scaled) availability lifetime ends, not before: the emulator's own record.
    (task,) = opened
    assert task.fate == "expire"
    lifetime = job.task_availability_seconds * quick.emulator.time_scale
    assert task.due_at - task.created_at == pytest.approx(lifetime)
    message = parse_output_message(output, job.label_attribute)
    assert message.status is OutputStatus.EXPIRED
    assert message.failure_reason and message.failure_reason.startswith(
        "ClientError: Annotation tasks expired"
    )
    assert message.dedup_key is not None and message.dedup_key.id == "exp/1"
    assert (await emu.counters(job.name))["expired"] == 1


async def test_retention_drops_an_item_silently(
    aws: AwsClients, settings: LocalSettings, staged: Any
) -> None:
    source, _ = staged
    # 14 days scaled to 3 s; the one worker slot is busy for 8 s: the second item ages out.
    slow = emulator_settings(
        settings.replace(labeling__max_concurrent_tasks=1),
        emulator__time_scale=3.0 / (14 * 24 * 3600),
        emulator__latency_min_seconds=8.0,
        emulator__latency_max_seconds=8.0,
    )
    slow = slow.replace(labeling__task_availability_seconds=30 * 24 * 3600)
    job, _ = await _jobs(aws, slow)
    out = await output_queue(aws, job, f"{settings.namespace}-out")
    store = EmulatedTaskStore(aws, slow)

    async def first_opened() -> bool:
        return bool(await store.open_tasks(job.gt_name))

    async with emulator(slow, aws) as emu:
        await wait_until(lambda: emu.simulating(job.name), timeout=30)
        await send(aws, job, source, "ret/1")
        await wait_until(first_opened, timeout=30)  # ret/1 holds the only slot
        await send(aws, job, source, "ret/2")

        async def dropped() -> bool:
            return (await emu.counters(job.name)).get("dropped_by_retention", 0) == 1

        await wait_until(dropped, timeout=60)
        outputs = await receive(aws, out, 1, timeout=60)
    assert [o["lava-dedup-id"] for o in outputs] == ["ret/1"]
    counters = await emu.counters(job.name)
    assert counters["dropped_by_retention"] == 1 and counters.get("received") == 1


async def test_adjustment_derives_from_its_input_and_corrects_noise(
    aws: AwsClients, settings: LocalSettings, staged: Any
) -> None:
    source, truth = staged
    noisy = emulator_settings(
        settings,
        emulator__miss_share=0.5,
        emulator__box_jitter=6.0,
        emulator__wrong_attribute_share=0.5,
        emulator__adjust_fix_share=1.0,
    )
    job, adjust = await _jobs(aws, noisy)
    out1 = await output_queue(aws, job, f"{settings.namespace}-out1")
    out2 = await output_queue(aws, adjust, f"{settings.namespace}-out2")
    expected = _truth_vehicles(truth, [0, 30, 60])
    async with emulator(noisy, aws):
        await send(aws, job, source, "adj/1")
        (level1,) = await receive(aws, out1, 1)
        _, noisy_frames = await _labels(aws, level1, job.label_attribute)
        assert [list(f.objects) for f in noisy_frames] != expected  # the noise is there
        carry = {
            job.label_attribute: level1[job.label_attribute],
            f"{job.label_attribute}-metadata": level1[f"{job.label_attribute}-metadata"],
        }
        await send(aws, adjust, source, "adj/2", carry)
        (level2,) = await receive(aws, out2, 1)
    message, fixed = await _labels(aws, level2, adjust.label_attribute)
    assert message.adjustment_status == "adjusted"
    assert level2[job.label_attribute] == level1[job.label_attribute]  # the input is carried
    # every mistake corrected (object order within a frame carries no meaning)
    assert [sorted(f.objects, key=_track) for f in fixed] == [
        sorted(objects, key=_track) for objects in expected
    ]


async def test_adjustment_without_corrections_keeps_the_input(
    aws: AwsClients, settings: LocalSettings, staged: Any
) -> None:
    source, _ = staged
    lazy = emulator_settings(settings, emulator__box_jitter=4.0, emulator__adjust_fix_share=0.0)
    job, adjust = await _jobs(aws, lazy)
    out1 = await output_queue(aws, job, f"{settings.namespace}-out1")
    out2 = await output_queue(aws, adjust, f"{settings.namespace}-out2")
    async with emulator(lazy, aws):
        await send(aws, job, source, "lazy/1")
        (level1,) = await receive(aws, out1, 1)
        carry = {k: v for k, v in level1.items() if k.startswith(job.label_attribute)}
        await send(aws, adjust, source, "lazy/2", carry)
        (level2,) = await receive(aws, out2, 1)
    _, before = await _labels(aws, level1, job.label_attribute)
    message, after = await _labels(aws, level2, adjust.label_attribute)
    assert message.adjustment_status == "unadjusted"
    assert [f.objects for f in after] == [f.objects for f in before]


async def test_a_job_registered_after_start_up_is_simulated(
    aws: AwsClients, settings: LocalSettings, staged: Any
) -> None:
    source, _ = staged
    quick = emulator_settings(settings)
    async with emulator(quick, aws):
        await asyncio.sleep(0.2)
        job = (await JobManager(aws, quick).create("VODTrafficSign", "traffic_sign")).job
        out = await output_queue(aws, job, f"{settings.namespace}-out")
        await send(aws, job, source, "late/1")
        (output,) = await receive(aws, out, 1)
    message = parse_output_message(output, job.label_attribute)
    assert message.status is OutputStatus.COMPLETED
    assert message.metadata["type"] == "groundtruth/video-object-detection"


async def test_missing_sequence_gives_a_failed_output(
    aws: AwsClients, settings: LocalSettings
) -> None:
    job, _ = await _jobs(aws, settings)
    out = await output_queue(aws, job, f"{settings.namespace}-out")
    async with emulator(emulator_settings(settings), aws):
        await send(aws, job, f"s3://{settings.names.bucket}/clips/ghost/fps-1/sequence.json", "g/1")
        (output,) = await receive(aws, out, 1)
    message = parse_output_message(output, job.label_attribute)
    assert message.status is OutputStatus.FAILED
    assert "cannot read the sequence" in (message.failure_reason or "")


async def test_the_emulator_process_runs_and_stops(
    aws: AwsClients, settings: LocalSettings, staged: Any
) -> None:
    source, _ = staged
    job, _ = await _jobs(aws, settings)
    out = await output_queue(aws, job, f"{settings.namespace}-out")
    env = dict(
        os.environ,
        LAVA_NAMESPACE=settings.namespace,
        AWS_ENDPOINT_URL=settings.aws.endpoint_url or "",
        LAVA_RUNTIME__HEALTH_PORT="0",
        LAVA_EMULATOR__POLL_SECONDS="0.1",
        LAVA_EMULATOR__LATENCY_MIN_SECONDS="0",
        LAVA_EMULATOR__LATENCY_MAX_SECONDS="0.1",
        LAVA_LOG__FORMAT="json",
        LAVA_EMULATOR__PROFILE="ideal",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "emulators.groundtruth"], env=env, stderr=subprocess.PIPE
    )
    try:
        await send(aws, job, source, "proc/1")
        (output,) = await receive(aws, out, 1, timeout=30)
        assert output["lava-dedup-id"] == "proc/1"
    finally:
        proc.terminate()
        assert await asyncio.to_thread(proc.wait, 20) == 0
