"""One owner of a clip's state (issue 22): the clip record on moto, post-processing's completion
with the dataset entry, and the control API's clip view, status failures and dashboard over it
(the control service a real process; RabbitMQ real)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest

from devstack.testing.events import failed as level_failed
from devstack.testing.events import frames_ready
from services.ingest.handler import IngestHandler
from services.postproc.handler import PostprocHandler
from shared.aws import AwsClients
from shared.clock import FakeClock
from shared.dataset.index import DatasetIndex
from shared.events import (
    ClipCompleted,
    ClipFailed,
    ClipIngested,
    Event,
    FramesReady,
    LabelsFinalized,
    decode_event,
    new_event,
)
from shared.layout import rejected_summary_key
from shared.settings import Settings
from shared.storage import S3Store
from shared.tasks.model import (
    AnnotationTask,
    ClipCompletion,
    ClipFailure,
    ClipStatus,
    ClipStop,
    TaskStatus,
)
from shared.tasks.plan import NEW, Changes, LinkClip, PutTask
from shared.tasks.store import TaskStore
from shared.taxonomy.records import Box
from tests.support.broker import get_messages
from tests.support.control import ControlProcess, control_service
from tests.support.dataset import complete_clip
from tests.support.dispatch import Recorder, create_jobs, dispatch_settings, make, task_state
from tests.support.labels import vehicle
from tests.support.postproc import finalized, stage_frames, stage_output
from tests.support.requests import counting

pytestmark = pytest.mark.integration

DRIVE = {"drive_id": "d7", "weather": "rainy", "time_of_day": "night", "route": "A1"}
CLIP = {"scene": "tunnel", "traffic": "undefined", "traffic_density": "low"}
DONE = ClipCompletion(labels_uri="s3://b/labels/c.json", summary_uri="s3://b/summary/c.json")


async def call(
    control: ControlProcess, method: str, path: str, role: str = "operator", body: Any = None
) -> tuple[int, dict[str, str], Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method, control.url + path, json=body, headers=control.auth(role), allow_redirects=False
        ) as response,
    ):
        text = await response.text()
        try:
            parsed: Any = json.loads(text)
        except ValueError:
            parsed = text
        return response.status, dict(response.headers), parsed


def task_of(event: Event[FramesReady], now: float) -> AnnotationTask:
    return AnnotationTask.model_validate(
        {
            **event.payload.model_dump(),
            "levels": [["VOTVehicle"]],
            "created_at": now,
            "updated_at": now,
            "level_started_at": now,
        }
    )


async def test_the_record_moves_as_the_policy_says_and_counts_each_clip_once(
    aws: AwsClients, settings: Settings
) -> None:
    store = TaskStore(aws, settings)
    clips = store.clips
    await clips.accept("c", ["c.vehicles"], 1.0)
    found = await store.clip("c")
    assert found is not None and found.status is ClipStatus.INGESTING
    assert found.tasks == ["c.vehicles"] and found.accepted_at == 1.0
    # ingest failed, and it is submitted again: ingesting again, then labeling
    assert await store.set_clip_outcome("c", ClipFailure(stage="ingest", reason="gone"), 2.0)
    await clips.accept("c", ["c.vehicles"], 3.0)
    assert (await store.clip("c")).status is ClipStatus.INGESTING  # type: ignore[union-attr]
    task = task_of(frames_ready("c"), 4.0)
    link = LinkClip("c", task.task_id, 4.0)
    assert await store.commit(Changes(writes=(PutTask(task, NEW),), link=link))
    assert (await store.clip("c")).status is ClipStatus.LABELING  # type: ignore[union-attr]
    assert await store.set_clip_outcome("c", DONE, 5.0)
    # a later task fails or is stopped: the clip stays completed, with its labels
    assert not await store.set_clip_outcome("c", ClipFailure(stage="labeling", reason="x"), 6.0)
    assert not await store.set_clip_outcome("c", ClipStop(task_id="c.lanes", by="op"), 6.0)
    await clips.accept("c", ["c.lanes"], 7.0)
    final = await store.clip("c")
    assert final is not None and final.status is ClipStatus.COMPLETED and final.outcome == DONE
    assert sorted(final.tasks) == ["c.lanes", "c.vehicles"]
    # a clip failed in labeling is not reopened by a submission (retry the task instead)
    await clips.accept("d", ["d.vehicles"], 1.0)
    await store.set_clip_outcome("d", ClipFailure(stage="labeling", reason="x"), 2.0)
    await clips.accept("d", ["d.vehicles"], 3.0)
    assert (await store.clip("d")).status is ClipStatus.FAILED  # type: ignore[union-attr]
    await clips.accept("e", ["e.vehicles"], 1.0)  # ingesting: counted nowhere yet
    counted = {"c_completed": 1, "c_failed": 1}
    totals = await store.counters.totals()
    assert {k: v for k, v in totals.items() if k.startswith("c_") and v} == counted
    rebuilt = await store.counters.recount()
    assert {k: v for k, v in rebuilt.items() if k.startswith("c_")} == counted


async def test_a_completion_on_a_wrong_guess_of_the_status_reads_and_counts_once(
    aws: AwsClients, settings: Settings
) -> None:
    """Post-processing completes a clip guessing it is labeling (no read); a record in any
    other state costs a read and a second transaction, and the counters still move once."""
    store = TaskStore(aws, settings)
    clips = store.clips
    await clips.accept("g", ["g.vehicles"], 1.0)  # still ingesting: the guess is wrong
    await clips.accept("h", ["h.vehicles"], 1.0)
    link = LinkClip("h", "h.vehicles", 2.0)
    task = task_of(frames_ready("h"), 2.0)
    assert await store.commit(Changes(writes=(PutTask(task, NEW),), link=link))  # labeling
    # h twice: the second time completed already, the guess wrong again
    for clip_id, reads in (("g", 1), ("h", 0), ("h", 1)):
        async with counting(aws, "dynamodb") as calls:
            await clips.complete_with(clip_id, DONE, 3.0, [], guess=ClipStatus.LABELING)
        assert calls.operations()["GetItem"] == reads
        assert calls.operations()["TransactWriteItems"] == 1 + reads
        record = await store.clip(clip_id)
        assert record is not None and record.status is ClipStatus.COMPLETED
    totals = await store.counters.totals()
    assert {k: v for k, v in totals.items() if k.startswith("c_") and v} == {"c_completed": 2}


@pytest.mark.parametrize("named", [True, False])
async def test_clip_completed_moves_its_tasks_named_or_read_from_the_record(
    aws: AwsClients, settings: Settings, named: bool
) -> None:
    """ClipCompleted names the merged tasks (no read of the clip record); one from an older
    post-processing does not, and the dispatcher reads the record's task list instead."""
    s = dispatch_settings(settings)
    await create_jobs(aws, s)
    dispatcher = make(aws, s, FakeClock(), Recorder())
    await dispatcher.on_frames_ready(frames_ready("k", bucket=s.names.bucket))
    task = await task_state(dispatcher, "k.vehicles")
    finalized_task = task.model_copy(update={"status": TaskStatus.FINALIZED})
    assert await dispatcher.store.commit(Changes(writes=(PutTask(finalized_task, task.rev),)))
    await dispatcher.store.clips.complete_with("k", DONE, 2.0, [], guess=ClipStatus.LABELING)
    payload = ClipCompleted(
        clip_id="k",
        labels_uri="s3://lava-data/labels/k.json",
        summary_uri="s3://lava-data/summary/k.json",
        task_ids=["k.vehicles"] if named else None,
    )
    async with counting(aws, "dynamodb") as calls:
        await dispatcher.on_clip_completed(new_event(payload, "k.vehicles"))
    assert (await task_state(dispatcher, "k.vehicles")).status is TaskStatus.COMPLETED
    assert calls.operations()["GetItem"] == (0 if named else 1)


@pytest.mark.parametrize("as_expected", [True, False], ids=["finalized", "finalizing"])
async def test_the_merged_tasks_complete_with_the_clip_or_are_left_to_the_dispatcher(
    aws: AwsClients, settings: Settings, as_expected: bool
) -> None:
    """Post-processing's completion transaction moves the merged tasks (finalized at their
    last level) with the clip record and the counters: ClipCompleted says so, and the
    dispatcher writes nothing. A task not as expected (a sweep's LabelsFinalized, published
    before its task is confirmed finalized) leaves the tasks to the dispatcher, as before."""
    s = dispatch_settings(settings)
    store, bucket, recorder = S3Store(aws), s.names.bucket, Recorder()
    tasks = TaskStore(aws, s)
    event = await _stage_vehicles(store, bucket, "m", "vehicles", bad=False)
    task = task_of(frames_ready("m", workflow="vehicles"), 1.0)
    assert task.task_id == event.payload.task_id
    await tasks.clips.accept("m", [task.task_id], 1.0)
    assert await tasks.commit(
        Changes(
            writes=(PutTask(task, NEW),),
            counts={"t_active_1": 1},
            link=LinkClip("m", task.task_id, 1.0),
        )
    )
    status = TaskStatus.FINALIZED if as_expected else TaskStatus.FINALIZING
    # due: a finalized task's LabelsFinalized is re-published until its clip completes
    ended = task.model_copy(update={"status": status, "rev": task.rev + 1, "due_at": 5.0})
    moved = {"t_active_1": -1, f"t_{status.value}_1": 1}
    assert await tasks.commit(Changes(writes=(PutTask(ended, task.rev),), counts=moved))

    await PostprocHandler(s, store, DatasetIndex(aws, s), recorder).handle(event)
    (done,) = recorder.of("ClipCompleted")
    assert isinstance(done.payload, ClipCompleted)
    assert done.payload.task_ids == [task.task_id]
    assert done.payload.tasks_completed is as_expected
    left = await tasks.get_task(task.task_id)
    assert left is not None and left.status is (TaskStatus.COMPLETED if as_expected else status)
    assert (left.due_at is None) is as_expected  # a completed task has nothing due

    dispatcher = make(aws, s, FakeClock(), Recorder())
    async with counting(aws, "dynamodb") as calls:
        await dispatcher.on_clip_completed(cast(Event[ClipCompleted], done))
    assert (len(calls.made) == 0) is as_expected
    final = await tasks.get_task(task.task_id)
    assert final is not None and final.status is TaskStatus.COMPLETED and final.due_at is None
    record = await tasks.clip("m")
    assert record is not None and record.status is ClipStatus.COMPLETED
    totals = {k: v for k, v in (await tasks.counters.totals()).items() if v}
    assert totals.get("t_completed_1") == 1 and totals.get("c_completed") == 1
    assert not totals.get(f"t_{status.value}_1")
    rebuilt = await tasks.counters.recount()
    assert {k: v for k, v in rebuilt.items() if v and k[:2] in ("t_", "c_")} == {
        k: v for k, v in totals.items() if k[:2] in ("t_", "c_")
    }


async def test_a_task_joins_its_clip_in_its_commit_and_the_clip_is_counted_once(
    aws: AwsClients, settings: Settings
) -> None:
    """The clip link rides on the task's creation (one TransactWriteItems, no UpdateItem of
    its own); the link guesses the clip's state from the event, and a wrong guess costs one
    more transaction, never a second count."""
    store = TaskStore(aws, settings)

    async def create(clip_id: str, workflow: str, first: bool) -> list[str]:
        event = frames_ready(clip_id, workflow=workflow)
        task = task_of(event, 4.0)
        link = LinkClip(clip_id, task.task_id, 4.0, first=first)
        async with counting(aws, "dynamodb") as made:
            assert await store.commit(Changes(writes=(PutTask(task, NEW),), link=link))
        return [op for op, _ in made.made]

    for clip_id in ("right", "wrong"):
        await store.clips.accept(clip_id, [f"{clip_id}.vehicles", f"{clip_id}.lanes"], 1.0)
    assert await create("right", "vehicles", first=True) == ["TransactWriteItems"]
    assert await create("right", "lanes", first=False) == ["TransactWriteItems"]
    assert await create("wrong", "lanes", first=False) == ["TransactWriteItems"] * 2
    assert await create("wrong", "vehicles", first=True) == ["TransactWriteItems"] * 2
    for clip_id in ("right", "wrong"):
        record = await store.clip(clip_id)
        assert record is not None and record.status is ClipStatus.LABELING
        assert sorted(record.tasks) == [f"{clip_id}.lanes", f"{clip_id}.vehicles"]
    assert (await store.counters.totals()).get("c_labeling") == 2
    # a later task of a completed clip: the clip stays completed and is not counted again
    assert await store.set_clip_outcome("right", DONE, 5.0)
    await create("right", "signs_lights", first=True)
    record = await store.clip("right")
    assert record is not None and record.status is ClipStatus.COMPLETED
    assert "right.signs_lights" in record.tasks
    totals = await store.counters.totals()
    assert (totals.get("c_labeling"), totals.get("c_completed")) == (1, 1)
    rebuilt = await store.counters.recount()
    assert (rebuilt.get("c_labeling"), rebuilt.get("c_completed")) == (1, 1)


async def _stage_vehicles(
    store: S3Store, bucket: str, clip_id: str, workflow: str, bad: bool
) -> Event[LabelsFinalized]:
    """A finalized vehicles task of ``clip_id`` (with an impossible box when ``bad``)."""
    inverted = Box(left=500, top=300, right=400, bottom=350)  # left > right: an error
    frames = {
        0: [vehicle("v1")],
        1: [vehicle("v1")],
        2: [vehicle("v9", box=inverted)] if bad else [],
    }
    output = await stage_output(store, bucket, f"VOTVehicle-{workflow}", "vehicle", 1, frames)
    layout = await stage_frames(store, bucket, clip_id)
    event: Event[LabelsFinalized] = finalized(layout, workflow, [workflow], [output])
    return event


async def test_a_later_failing_merge_leaves_a_completed_clip_its_labels_and_entry(
    aws: AwsClients, settings: Settings
) -> None:
    store, bucket, recorder = S3Store(aws), settings.names.bucket, Recorder()
    index = DatasetIndex(aws, settings)
    post = PostprocHandler(settings, store, index, recorder)
    await post.handle(await _stage_vehicles(store, bucket, "c-kept", "first", bad=False))
    (done,) = recorder.of("ClipCompleted")
    record = await index.clips.get("c-kept")
    entry = await index.get("c-kept")
    assert record is not None and record.status is ClipStatus.COMPLETED
    assert entry is not None and isinstance(record.outcome, ClipCompletion)
    assert entry.labels_uri == record.outcome.labels_uri == done.payload.labels_uri
    labels = await store.get_bytes(bucket, "labels/c-kept.json")
    summary = await store.get_bytes(bucket, "summary/c-kept.json")

    await post.handle(await _stage_vehicles(store, bucket, "c-kept", "second", bad=True))
    (failed,) = recorder.of("ClipFailed")
    assert isinstance(failed.payload, ClipFailed) and failed.payload.stage == "postproc"
    assert "keeps the labels it completed with" in failed.payload.reason
    assert await store.get_bytes(bucket, "labels/c-kept.json") == labels
    assert await store.get_bytes(bucket, "summary/c-kept.json") == summary
    task_id = failed.payload.task_id
    assert task_id is not None
    assert await store.get_bytes(bucket, rejected_summary_key(task_id))
    assert (await index.clips.get("c-kept")) == record
    assert await index.get("c-kept") == entry


async def completed_clip_with_a_later_failed_task(aws: AwsClients, s: Settings) -> None:
    """``c-done`` completed through post-processing, then a separate task of it that fails."""
    await complete_clip(aws, s, "c-done", "rainy", "night", "intersection", "stop-and-go")
    recorder = Recorder()
    dispatcher = make(aws, s, FakeClock(), recorder)
    await dispatcher.on_frames_ready(frames_ready("c-done", bucket=s.names.bucket))
    (obj, *_) = await dispatcher.store.objects("c-done.vehicles")
    job = await dispatcher.jobs.get(obj.job)
    await dispatcher.on_level_failed(level_failed("c-done.vehicles", job, obj.key))  # ClientError
    (failed,) = recorder.of("ClipFailed")
    await dispatcher.on_clip_failed(failed)
    assert (await task_state(dispatcher, "c-done.vehicles")).status is TaskStatus.FAILED


async def a_completed_clip_keeps_its_labels(control: ControlProcess, bucket: str) -> None:
    code, _, clip = await call(control, "GET", "/v1/clips/c-done", "viewer")
    assert code == 200 and clip["status"] == "completed", clip
    assert clip["labels_uri"] == f"s3://{bucket}/labels/c-done.json"
    stages = {(st["stage"], st["task_id"]): st for st in clip["stages"]}
    assert stages[("level 1", "c-done.vehicles")]["state"] == "failed"
    assert "the sequence file is unreadable" in stages[("level 1", "c-done.vehicles")]["reason"]
    assert stages[("post-processing", None)]["state"] == "done"
    code, _, page = await call(control, "GET", "/v1/dataset/clips?clip_id=c-done", "viewer")
    assert code == 200, page
    (listed,) = page["items"]
    assert listed["labels_uri"] == clip["labels_uri"]


async def test_through_the_api_a_completed_clip_keeps_its_labels_and_a_new_clip_shows_at_once(
    aws: AwsClients, settings: Settings, tmp_path: Path
) -> None:
    """One control process for both (its start is most of the time): a completed clip and a
    later failing task of it; a spec answered 202 whose Location shows the ingest failure."""
    s = dispatch_settings(settings)
    await create_jobs(aws, s)
    await completed_clip_with_a_later_failed_task(aws, s)
    async with control_service(s, tmp_path) as control:
        await a_completed_clip_keeps_its_labels(control, s.names.bucket)
        await spec_answers_202_with_a_location_that_shows_the_ingest_failure(aws, s, control)


async def spec_answers_202_with_a_location_that_shows_the_ingest_failure(
    aws: AwsClients, s: Settings, control: ControlProcess
) -> None:
    spec = {
        "labelingJobs": [
            {
                "jobName": "VOTVehicle",
                "jobLevel": 1,
                "inputConfig": {"clipS3Uri": f"s3://{s.names.bucket}/raw/none.mp4", "fps": 1},
            }
        ],
        "drive": DRIVE,
        "clip": CLIP,
        "clipId": "c-missing",
    }
    # there when the request is checked, gone when ingest reads it
    store = S3Store(aws)
    await store.put_bytes(s.names.bucket, "raw/none.mp4", b"soon gone")
    code, headers, created = await call(control, "POST", "/v1/tasks/spec", body=spec)
    assert code == 202 and headers["Location"] == "/v1/clips/c-missing", created
    await (await aws.s3()).delete_object(Bucket=s.names.bucket, Key="raw/none.mp4")
    code, _, clip = await call(control, "GET", headers["Location"], "viewer")
    assert code == 200 and clip["status"] == "ingesting"
    assert clip["tasks"] == [created["task_id"]]
    assert [st["state"] for st in clip["stages"]] == ["running", "pending", "pending"]

    # ingest takes the ClipIngested the API published: the object is not there
    (message,) = await get_messages(s, s.names.queue("ingest"), 1)
    event = decode_event(message.body)
    assert isinstance(event.payload, ClipIngested)
    ingested = cast(Event[ClipIngested], event)
    recorder = Recorder()
    ingest = IngestHandler(s, store, recorder, clips=TaskStore(aws, s).clips)
    await ingest.handle(ingested)
    (failed,) = recorder.of("ClipFailed")
    await make(aws, s, FakeClock(), Recorder()).on_clip_failed(failed)

    code, _, clip = await call(control, "GET", headers["Location"], "viewer")
    assert code == 200 and clip["status"] == "failed"
    assert clip["outcome"]["stage"] == "ingest" and "not found" in clip["outcome"]["reason"]
    assert clip["stages"][0]["state"] == "failed"
    code, _, status = await call(control, "GET", "/v1/status", "viewer")
    (failure,) = [f for f in status["failures"] if f["clip_id"] == "c-missing"]
    assert failure["task_id"] is None and failure["stage"] == "ingest"
    assert failure["reason"] == clip["outcome"]["reason"]
    # c-done counts once, as completed (its later task's failure is that task's)
    assert status["clips_by_outcome"] == {"completed": 1, "failed": 1}
    code, _, page = await call(control, "GET", "/dashboard", "viewer")
    assert code == 200 and '<tr data-clip="c-missing">' in page
    assert '<h3 data-failure-stage="ingest">ingest (1)</h3>' in page and "clip not found" in page
