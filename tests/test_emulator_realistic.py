"""The emulator's realistic profile: outputs and job lifecycle as the AWS guide describes them."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from emulators.settings import LocalSettings
from shared.aws import AwsClients
from shared.groundtruth.annotations import parse_seq_label
from shared.groundtruth.convert import AttributeStats, class_map, from_seq_label
from shared.groundtruth.job_types import job_type
from shared.groundtruth.messages import OutputStatus, parse_output_message
from shared.labeling.jobs import JobManager, JobRegistry
from shared.labeling.streaming_job import StreamingJob
from shared.layout import parse_s3_uri
from shared.storage import S3Store
from tests.support.broker import wait_until
from tests.support.gt import emulator, emulator_settings, output_queue, receive, send, staged_clip

pytestmark = pytest.mark.integration


def realistic(settings: LocalSettings, **changes: Any) -> LocalSettings:
    base: dict[str, Any] = {
        "emulator__profile": "realistic",
        "emulator__initializing_seconds": 0.0,
        "emulator__idle_stop_seconds": 0.0,
        "emulator__partial_attribute_share": 1.0,
    }
    return emulator_settings(settings, **{**base, **changes})


async def _status(aws: AwsClients, settings: LocalSettings, name: str) -> StreamingJob:
    found = await JobRegistry(aws, settings).get(name)
    assert found is not None
    return found


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


async def test_outputs_carry_uuids_partial_attributes_and_present_classes_only(
    aws: AwsClients, settings: LocalSettings, tmp_path: Path
) -> None:
    s = realistic(settings)
    source, truth = await staged_clip(aws, s, tmp_path, "clip-r1")
    manager = JobManager(aws, s)
    job = (await manager.create("VOTVehicle", "vehicle")).job
    adjust = (await manager.create("AdjVOTVehicle", "vehicle", adjusts="VOTVehicle")).job
    out = await output_queue(aws, job, f"{s.namespace}-out")
    adj_out = await output_queue(aws, adjust, f"{s.namespace}-adj-out")
    async with emulator(s, aws):
        await send(aws, job, source, "r/1")
        (output,) = await receive(aws, out, 1)
        message = parse_output_message(output, job.label_attribute)
        assert message.status is OutputStatus.COMPLETED and message.label_uri
        carry = {job.label_attribute: message.label_uri, f"{job.label_attribute}-metadata": {}}
        carry[f"{job.label_attribute}-metadata"] = message.metadata
        await send(aws, adjust, source, "r/2", carry)
        (adjusted,) = await receive(aws, adj_out, 1)
    raw = json.loads(await S3Store(aws).get_bytes(*parse_s3_uri(message.label_uri)))
    annotations = [a for f in raw["tracking-annotations"] for a in f["annotations"]]
    assert annotations and all(_is_uuid(a["object-id"]) for a in annotations)
    assert all(a["object-name"].split(":")[1].isdigit() for a in annotations)
    # the class map lists only the classes drawn
    used = {a["class-id"] for a in annotations}
    assert set(message.class_map) == used and set(message.class_map) <= set(
        class_map(job_type("vehicle"))
    )
    # later frames carry partial or empty attribute sets; first appearances carry them all
    vehicles = [a for a in annotations if message.class_map[a["class-id"]] == "vehicle"]
    seen: set[str] = set()
    partial = 0
    for a in vehicles:
        if a["object-id"] not in seen:
            assert set(a["label-category-attributes"]) == {"type", "occlusion"}
        else:
            partial += len(a["label-category-attributes"]) < 2
        seen.add(a["object-id"])
    assert partial > 0
    # read back: every gap is carried from the track, nothing is missing, nothing lost
    stats = AttributeStats()
    seq = parse_seq_label(raw)
    frames, problems = from_seq_label(seq, message.class_map, stats)
    assert problems == [] and stats.carried > 0 and stats.missing == 0
    by_source = {f.frame_no: f for f in truth.frames}
    for frame, source_frame in zip(frames, [0, 30, 60], strict=True):
        expected = [o for o in by_source[source_frame].objects if o.category == "vehicle"]
        got = list(frame.objects)
        assert [o.model_copy(update={"track_id": None}) for o in got] == [
            o.model_copy(update={"track_id": None}) for o in expected
        ]  # parts attached by geometry, attributes carried
    # the adjustment level keeps the object ids, and says nothing when nothing changed
    adjusted_message = parse_output_message(adjusted, adjust.label_attribute)
    assert "adjustment-status" not in adjusted_message.metadata
    assert adjusted_message.label_uri is not None
    raw2 = json.loads(await S3Store(aws).get_bytes(*parse_s3_uri(adjusted_message.label_uri)))
    ids2 = {a["object-id"] for f in raw2["tracking-annotations"] for a in f["annotations"]}
    assert ids2 == {a["object-id"] for a in annotations}


async def test_an_expired_output_has_the_real_shape(
    aws: AwsClients, settings: LocalSettings, tmp_path: Path
) -> None:
    # a 60 s availability lifetime scaled to 1 s (the 14-day retention stays hours long)
    quick = settings.replace(labeling__task_availability_seconds=60)
    s = realistic(quick, emulator__expire_share=1.0, emulator__time_scale=1 / 60)
    source, _ = await staged_clip(aws, s, tmp_path, "clip-r2")
    job = (await JobManager(aws, s).create("VOTVehicle", "vehicle")).job
    out = await output_queue(aws, job, f"{s.namespace}-out")
    async with emulator(s, aws):
        await send(aws, job, source, "x/1")
        (output,) = await receive(aws, out, 1, timeout=15)
    metadata = output[f"{job.label_attribute}-metadata"]
    assert set(metadata) == {"retry-count", "failure-reason", "human-annotated"}
    assert metadata["human-annotated"] == "true"
    assert job.label_attribute not in output  # no label
    message = parse_output_message(output)
    assert message.status is OutputStatus.EXPIRED and message.job_name is None


async def test_input_published_while_initializing_is_lost(
    aws: AwsClients, settings: LocalSettings, tmp_path: Path
) -> None:
    s = realistic(settings, emulator__initializing_seconds=3.0)
    source, _ = await staged_clip(aws, s, tmp_path, "clip-r3")
    job = (await JobManager(aws, s).create("VOTVehicle", "vehicle")).job
    await send(aws, job, source, "early/1")  # at once: too early, Ground Truth never sees it
    assert job.status == "Initializing"
    out = await output_queue(aws, job, f"{s.namespace}-out")
    async with emulator(s, aws) as emu:

        async def in_progress() -> bool:
            return (await _status(aws, s, job.name)).status == "InProgress"

        await wait_until(in_progress, timeout=15)
        await send(aws, job, source, "late/1")
        (output,) = await receive(aws, out, 1)

        async def lost_counted() -> bool:
            return (await emu.counters(job.name)).get("lost_initializing") == 1

        await wait_until(lost_counted, timeout=10)
    assert output["lava-dedup-id"] == "late/1"


async def test_a_job_without_input_stops_by_itself(
    aws: AwsClients, settings: LocalSettings
) -> None:
    s = realistic(settings, emulator__idle_stop_seconds=1.0)
    job = (await JobManager(aws, s).create("VOTVehicle", "vehicle")).job
    async with emulator(s, aws):

        async def stopped() -> bool:
            return (await _status(aws, s, job.name)).status == "Stopped"

        await wait_until(stopped, timeout=15)
    found = await _status(aws, s, job.name)
    assert found.status_reason and "no input for 10 days" in found.status_reason
