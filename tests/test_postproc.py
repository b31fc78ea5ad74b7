"""Post-processing: merge, inheritance, validation severity, summaries, idempotency."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from services.postproc.handler import PostprocHandler
from services.postproc.service import build
from services.postproc.summary import ClipSummary
from shared.aws import AwsClients
from shared.bus import Bus
from shared.dataset.index import DatasetIndex
from shared.events import ClipCompleted, ClipFailed, decode_event
from shared.layout import ClipLayout, parse_s3_uri
from shared.quality.records import RECORDS_PREFIX
from shared.settings import Settings
from shared.storage import S3Store
from shared.taxonomy.records import Box, ClipLabels, Vehicle
from tests.support.broker import get_messages
from tests.support.dispatch import Recorder
from tests.support.labels import lane, vehicle
from tests.support.postproc import finalized, stage_frames, stage_output
from tests.support.requests import counting
from tests.support.services import running

pytestmark = pytest.mark.integration

SHIFTED = Box(left=150, top=100, right=350, bottom=200)


async def stage_clip(store: S3Store, bucket: str, clip_id: str, bad: Box | None = None) -> Any:
    layout = await stage_frames(store, bucket, clip_id)
    level1 = {0: [vehicle("v1", box=SHIFTED)], 1: [vehicle("v1")], 2: []}
    final = {
        0: [vehicle("v1", plate=True)],
        1: [vehicle("v1")],
        2: [vehicle("v9", box=bad)] if bad else [],
    }
    vehicles = [
        await stage_output(store, bucket, "VOTVehicle", "vehicle", 1, level1),
        await stage_output(
            store,
            bucket,
            "AdjVOTVehicle",
            "vehicle",
            2,
            final,
            adjusts="VOTVehicle",
            adjustment_status="adjusted",
        ),
    ]
    lanes = [
        await stage_output(store, bucket, "VOTLane", "lane", 1, {k: [lane()] for k in range(3)}),
        await stage_output(
            store,
            bucket,
            "AdjVOTLane",
            "lane",
            2,
            {k: [lane()] for k in range(3)},
            adjusts="VOTLane",
            adjustment_status="unadjusted",
        ),
    ]
    workflows = ["vehicles", "lanes"]
    return (
        finalized(layout, "vehicles", workflows, vehicles),
        finalized(layout, "lanes", workflows, lanes),
    )


def handler(aws: AwsClients, settings: Settings, recorder: Recorder) -> PostprocHandler:
    return PostprocHandler(settings, S3Store(aws), DatasetIndex(aws, settings), recorder)


async def test_workflows_merge_into_records_that_inherit_attributes(
    aws: AwsClients, settings: Settings
) -> None:
    store, bucket, recorder = S3Store(aws), settings.names.bucket, Recorder()
    vehicles, lanes = await stage_clip(store, bucket, "clip-m1")
    post = handler(aws, settings, recorder)
    await post.handle(vehicles)
    assert recorder.events == []  # the lanes workflow is not finalized yet
    await post.handle(lanes)
    (done,) = recorder.of("ClipCompleted")
    assert isinstance(done.payload, ClipCompleted)
    # the merged tasks, which the dispatcher moves to completed without reading the record
    assert done.payload.task_ids == sorted([vehicles.payload.task_id, lanes.payload.task_id])
    labels = ClipLabels.model_validate_json(await store.get_bytes(bucket, "labels/clip-m1.json"))
    assert [f.frame_no for f in labels.frames] == [0, 1, 2]
    assert [f.timestamp for f in labels.frames] == [0.0, 0.2, 0.4]
    for record in labels.frames:
        assert record.drive.weather == "rainy" and record.clip.scene == "intersection"
        assert record.clip.clip_id == "clip-m1"
    first = labels.frames[0].objects
    assert {o.category for o in first} == {"vehicle", "lane"}
    v1 = next(o for o in first if o.track_id == "v1")
    assert isinstance(v1, Vehicle)
    assert v1.box == vehicle("v1").box and v1.license_plate is not None  # the adjusted labels
    summary = ClipSummary.model_validate_json(await store.get_bytes(bucket, "summary/clip-m1.json"))
    assert summary.objects_per_class == {"lane": 3, "vehicle": 2}
    diffs = {d.adjusted_by: d for d in summary.adjustment}
    assert diffs["AdjVOTVehicle"].moved == 1 and diffs["AdjVOTVehicle"].removed == 0
    assert diffs["AdjVOTVehicle"].adjustment_status == "adjusted"
    assert diffs["AdjVOTLane"].moved == 0 and diffs["AdjVOTLane"].compared == 3
    assert summary.problems == [] and done.payload.warnings == 0
    entry = await DatasetIndex(aws, settings).get("clip-m1")
    assert entry is not None and entry.frames == 3 and entry.weather == "rainy"
    assert entry.adjustment["moved"] == 1


async def test_redelivery_rewrites_the_same_objects(aws: AwsClients, settings: Settings) -> None:
    store, bucket, recorder = S3Store(aws), settings.names.bucket, Recorder()
    vehicles, lanes = await stage_clip(store, bucket, "clip-r1")
    post = handler(aws, settings, recorder)
    await post.handle(vehicles)
    await post.handle(lanes)
    labels = await store.get_bytes(bucket, "labels/clip-r1.json")
    summary = await store.get_bytes(bucket, "summary/clip-r1.json")
    await post.handle(lanes)  # delivered again
    await post.handle(vehicles)
    assert await store.get_bytes(bucket, "labels/clip-r1.json") == labels
    assert await store.get_bytes(bucket, "summary/clip-r1.json") == summary
    ids = {e.event_id for e in recorder.of("ClipCompleted")}
    assert len(ids) == 1  # the same event, which consumers recognize


async def test_warnings_complete_the_clip_and_are_listed(
    aws: AwsClients, settings: Settings
) -> None:
    store, bucket, recorder = S3Store(aws), settings.names.bucket, Recorder()
    outside = Box(left=1800, top=1000, right=1950, bottom=1090)  # past the image edge
    vehicles, lanes = await stage_clip(store, bucket, "clip-w1", bad=outside)
    post = handler(aws, settings, recorder)
    await post.handle(vehicles)
    await post.handle(lanes)
    (done,) = recorder.of("ClipCompleted")
    assert done.payload.warnings == 1
    summary = json.loads(await store.get_bytes(bucket, "summary/clip-w1.json"))
    (problem,) = summary["problems"]
    assert problem["rule"] == "box-inside-image" and problem["severity"] == "warning"
    assert problem["frame_no"] == 2 and problem["track_id"] == "v9" and problem["field"] == "box"


async def test_errors_fail_the_clip_with_their_location(
    aws: AwsClients, settings: Settings
) -> None:
    store, bucket, recorder = S3Store(aws), settings.names.bucket, Recorder()
    inverted = Box(left=500, top=300, right=400, bottom=350)  # left > right
    vehicles, lanes = await stage_clip(store, bucket, "clip-e1", bad=inverted)
    post = handler(aws, settings, recorder)
    await post.handle(vehicles)
    await post.handle(lanes)
    (failed,) = recorder.of("ClipFailed")
    assert isinstance(failed.payload, ClipFailed) and failed.payload.stage == "postproc"
    assert "frame 2, vehicle v9 (#1), box: left (500.0) must be < right" in failed.payload.reason
    assert "summary/clip-e1.json" in failed.payload.reason
    assert await DatasetIndex(aws, settings).get("clip-e1") is None
    lenient = settings.replace(postproc__fail_on="never")
    recorder2 = Recorder()
    post2 = handler(aws, lenient, recorder2)
    await post2.handle(lanes)
    assert recorder2.of("ClipCompleted")[0].payload.warnings == 1


async def test_missing_labels_fail_the_clip(aws: AwsClients, settings: Settings) -> None:
    store, bucket, recorder = S3Store(aws), settings.names.bucket, Recorder()
    vehicles, lanes = await stage_clip(store, bucket, "clip-x1")
    s3 = await aws.s3()
    await s3.delete_object(Bucket=bucket, Key="gt-output/AdjVOTLane/x/SeqLabel.json")
    post = handler(aws, settings, recorder)
    await post.handle(vehicles)
    await post.handle(lanes)
    (failed,) = recorder.of("ClipFailed")
    assert "AdjVOTLane" in failed.payload.reason and "does not exist" in failed.payload.reason


@pytest.mark.parametrize("records", [True, False], ids=["quality-records", "no-records"])
async def test_the_service_on_the_bus(
    aws: AwsClients, settings: Settings, bus: Bus, records: bool
) -> None:
    """The service as wired: a quality record per task unless LAVA_POSTPROC__QUALITY_RECORDS
    is false."""
    s = settings.replace(postproc__quality_records=records)
    vehicles, lanes = await stage_clip(S3Store(aws), s.names.bucket, "clip-b1")
    async with running(build, s, "postproc", "postproc"):
        await bus.publish(vehicles)
        await bus.publish(lanes)
        (message,) = await get_messages(s, s.names.queue("outcomes"), 1, 20)
    event = decode_event(message.body)
    assert isinstance(event.payload, ClipCompleted) and event.payload.clip_id == "clip-b1"
    s3 = await aws.s3()
    listed = await s3.list_objects_v2(Bucket=s.names.bucket, Prefix=RECORDS_PREFIX)
    assert len(listed.get("Contents", [])) == (2 if records else 0)


async def test_a_duplicate_event_is_merged_once(aws: AwsClients, settings: Settings) -> None:
    from shared.idempotency import IdempotencyGuard

    store, bucket, recorder = S3Store(aws), settings.names.bucket, Recorder()
    vehicles, lanes = await stage_clip(store, bucket, "clip-d1")
    post = PostprocHandler(
        settings,
        store,
        DatasetIndex(aws, settings),
        recorder,
        IdempotencyGuard(aws, settings, "postproc"),
    )
    await post.handle(vehicles)
    await asyncio.gather(post.handle(lanes), post.handle(lanes))  # two replicas, one event
    await post.handle(lanes)  # and a late redelivery
    # A late duplicate of the clip's other event: the same held tasks, so the same merge
    # (the guard is kept per set of held tasks, two writes a clip, not per event).
    await post.handle(vehicles)
    assert len(recorder.of("ClipCompleted")) == 1


async def test_each_object_is_read_once_per_event(aws: AwsClients, settings: Settings) -> None:
    """The quality record and the merge read the same frame index and label files: one
    GetObject each per event, and an earlier task's level-1 files not at all in the merge."""
    store, bucket, recorder = S3Store(aws), settings.names.bucket, Recorder()
    vehicles, lanes = await stage_clip(store, bucket, "clip-q1")
    post = with_quality(aws, settings, recorder)
    frame_index = ClipLayout(bucket, "clip-q1", 5).frame_index_key
    async with counting(aws, "s3") as first:
        await post.handle(vehicles)  # the quality record only: lanes is not finalized yet
    async with counting(aws, "s3") as last:
        await post.handle(lanes)  # its quality record, then the clip's merge
    assert len(recorder.of("ClipCompleted")) == 1
    for requests, outputs in ((first, vehicles), (last, lanes)):
        reads = requests.of("GetObject")
        assert len(reads) == len(set(reads)), reads  # nothing read twice in one event
        assert frame_index in reads
        assert {parse_s3_uri(o.label_uri)[1] for o in outputs.payload.outputs} <= set(reads)
    # The last event reads the frame index, its own two label files and the other task's
    # final labels, each once: the other task's adjustment diff was held with it by its own
    # event, so its level-1 file is not read again (was 5; 8 before reads were shared).
    level1 = {parse_s3_uri(o.label_uri)[1] for o in vehicles.payload.outputs if o.level == 1}
    assert len(last.of("GetObject")) == 4 and not level1 & set(last.of("GetObject"))


async def test_reads_past_the_budget_are_fetched_again() -> None:
    """Handlings keep at most the process's budget of bytes between them, and give it back
    at their end; a kept object still honours a caller's smaller cap."""
    from services.postproc.reads import ClipReads, KeptBytes
    from shared.storage import TooLarge

    fetched: list[str] = []

    class Store:
        async def get_bytes(self, bucket: str, key: str, *, max_bytes: int | None = None) -> bytes:
            fetched.append(key)
            return b"x" * (10 if key == "small" else 100)

    budget = KeptBytes(50)
    reads = ClipReads(Store(), budget)  # type: ignore[arg-type]
    for _ in range(2):
        assert await reads.get_bytes("b", "small") == b"x" * 10
        assert len(await reads.get_bytes("b", "large")) == 100
    assert fetched == ["small", "large", "large"]
    with pytest.raises(TooLarge):
        await reads.get_bytes("b", "small", max_bytes=5)
    # the budget is the process's: a second handling in flight has what the first left
    other = ClipReads(Store(), budget)  # type: ignore[arg-type]
    assert budget.free == 40
    await other.get_bytes("b", "small")
    assert budget.free == 30
    reads.release()
    other.release()
    assert budget.free == 50


def with_quality(aws: AwsClients, settings: Settings, recorder: Recorder) -> PostprocHandler:
    from services.postproc.quality import QualityRecorder
    from shared.quality.records import QualityRecords

    store, bucket = S3Store(aws), settings.names.bucket
    quality = QualityRecorder(store, QualityRecords(aws, bucket), settings.postproc.moved_iou)
    return PostprocHandler(settings, store, DatasetIndex(aws, settings), recorder, quality=quality)


async def test_a_held_adjustment_diff_is_the_one_the_merge_would_make(
    aws: AwsClients, settings: Settings
) -> None:
    """With quality records on, each event works out its task's adjustment diffs from the
    files it just read and holds them: the summary is the same as a merge reading them all."""
    from services.postproc.held import HeldTask

    store, bucket, index = S3Store(aws), settings.names.bucket, DatasetIndex(aws, settings)
    summaries, held = [], []
    for clip_id, make in (("clip-h1", handler), ("clip-h2", with_quality)):
        vehicles, lanes = await stage_clip(store, bucket, clip_id)
        post = make(aws, settings, Recorder())
        await post.handle(vehicles)
        await post.handle(lanes)
        summary = ClipSummary.model_validate_json(
            await store.get_bytes(bucket, f"summary/{clip_id}.json")
        )
        summaries.append(summary.model_dump(exclude={"clip_id", "clip"}))
        tasks = [HeldTask.model_validate_json(v) for v in (await index.held_set(clip_id)).values()]
        held.append({t.event.workflow: set(t.adjustments) for t in tasks})
    # the merge made the diffs itself (clip-h1), or took the ones each event held (clip-h2)
    assert held == [
        {"vehicles": set(), "lanes": set()},
        {"vehicles": {"AdjVOTVehicle"}, "lanes": {"AdjVOTLane"}},
    ]
    assert summaries[0] == summaries[1]
    assert {d["adjusted_by"] for d in summaries[1]["adjustment"]} == {"AdjVOTVehicle", "AdjVOTLane"}


async def test_a_hold_is_one_request_and_tasks_held_one_by_one_before_still_complete_the_clip(
    aws: AwsClients, settings: Settings
) -> None:
    """The held set is one item: a hold returns it (one UpdateItem); a set that looks
    incomplete also reads the tasks an older version held one item each, so a clip whose
    first workflow finalized before an upgrade completes after it."""
    store, bucket, recorder = S3Store(aws), settings.names.bucket, Recorder()
    post = handler(aws, settings, recorder)
    vehicles, lanes = await stage_clip(store, bucket, "clip-u1")
    async with counting(aws, "dynamodb") as first:
        await post.handle(vehicles)
    assert first.operations() == {"UpdateItem": 1, "Query": 1}  # incomplete: the old items
    async with counting(aws, "dynamodb") as last:
        await post.handle(lanes)
    assert last.operations().get("UpdateItem") == 1 and "Query" not in last.operations()
    assert len(recorder.of("ClipCompleted")) == 1

    # an older post-processing held vehicles one item each; this version holds lanes
    vehicles, lanes = await stage_clip(store, bucket, "clip-u2")
    db = await aws.dynamodb()
    await db.put_item(
        TableName=settings.names.table("dataset"),
        Item={
            "clip_id": {"S": "clip-u2"},
            "sk": {"S": f"task#{vehicles.payload.task_id}"},
            "event": {"S": vehicles.payload.model_dump_json()},
        },
    )
    await post.handle(lanes)
    done = [e for e in recorder.of("ClipCompleted") if e.payload.clip_id == "clip-u2"]
    assert len(done) == 1
    assert done[0].payload.task_ids == sorted([vehicles.payload.task_id, lanes.payload.task_id])


async def test_without_quality_records_a_gold_copy_is_neither_scored_nor_held(
    aws: AwsClients, settings: Settings
) -> None:
    """LAVA_POSTPROC__QUALITY_RECORDS=false (the service wires no recorder): a gold copy that
    still arrives is logged and dropped - never held, merged or indexed, no record written."""
    from shared.quality.gold_ref import GoldRef

    store, bucket, recorder = S3Store(aws), settings.names.bucket, Recorder()
    vehicles, _ = await stage_clip(store, bucket, "clip-g1")
    gold = GoldRef(
        clip_id="clip-g0", truth_uri=f"s3://{bucket}/labels/clip-g0.json", truth_kind="labels"
    )
    copy = vehicles.model_copy(
        update={"payload": vehicles.payload.model_copy(update={"gold": gold})}
    )
    async with counting(aws, "dynamodb") as db, counting(aws, "s3") as s3:
        await handler(aws, settings, recorder).handle(copy)
    assert recorder.events == [] and not db.made and not s3.made


async def test_a_task_the_held_set_has_no_room_for_is_held_alone_and_the_clip_completes(
    aws: AwsClients, settings: Settings
) -> None:
    """A held set is one item (DynamoDB: 400 KB); a task it has no room for is held in an item
    of its own, the older form, which the set's readers look for when it seems incomplete."""
    from shared.dataset.index import HeldSetFull

    class Full(DatasetIndex):
        async def hold(self, clip_id: str, task_id: str, value: str) -> dict[str, str]:
            if task_id.endswith(".lanes"):
                raise HeldSetFull("no room (as DynamoDB's ValidationException says)")
            return await super().hold(clip_id, task_id, value)

    store, bucket, recorder = S3Store(aws), settings.names.bucket, Recorder()
    vehicles, lanes = await stage_clip(store, bucket, "clip-f1")
    post = PostprocHandler(settings, store, Full(aws, settings), recorder)
    for event in (lanes, vehicles):  # the full one first, and the other one after it
        await post.handle(event)
    (done,) = recorder.of("ClipCompleted")
    assert done.payload.task_ids == sorted([vehicles.payload.task_id, lanes.payload.task_id])


async def test_a_held_set_past_dynamodbs_item_size_is_reported_as_full(
    aws: AwsClients, settings: Settings
) -> None:
    """What DynamoDB (and moto) answer for an item past 400 KB becomes HeldSetFull."""
    from shared.dataset.index import HeldSetFull

    index = DatasetIndex(aws, settings)
    await index.hold("clip-big", "clip-big.a", "x" * 300_000)
    with pytest.raises(HeldSetFull, match="held set is full"):
        await index.hold("clip-big", "clip-big.b", "y" * 200_000)
    assert list(await index.held_set("clip-big")) == ["clip-big.a"]
