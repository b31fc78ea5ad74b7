"""Label Studio completion forgery (issue 24, finding 5): a task that merely *carries* a waiting
object's dedup key in its ``data`` completes nothing; only the task the key was imported as does.

A Label Studio user who can import tasks writes any ``data`` they like. The attacker imports
tasks with a victim's key (into the job's project, and into another project), annotates them,
and lets webhooks and reconciliation find them. The real importer, outputs and listener side run
on AWS in this process; Label Studio is a fake with its semantics (ids, projects, data filters,
annotations), as the reconciliation reads them.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import pytest
from structlog.testing import capture_logs

from devstack.testing.events import frames_ready
from services.listener.labelstudio import LabelStudioSide
from shared.aws import AwsClients
from shared.clock import FakeClock
from shared.dedup import parse_dedup_key
from shared.events import LevelCompleted, TaskExpired
from shared.labeling.labelstudio.backend import ARN_PREFIX
from shared.labeling.labelstudio.client import KEY_FIELD
from shared.labeling.streaming_job import StreamingJob
from shared.layout import ClipLayout, FrameIndex, IndexedFrame
from shared.seal import (
    SEAL_FIELD,
    Sealer,
)
from shared.settings import Settings
from shared.storage import S3Store
from tests.support.dispatch import Recorder, create_jobs, dispatch_settings, inputs
from tests.support.dispatch import make as make_dispatcher

PROJECT, OTHER_PROJECT = 7, 8


class FakeLabelStudio:
    """Tasks by id in projects, with annotations; the client calls the listener makes."""

    def __init__(self) -> None:
        self.tasks: dict[int, dict[str, Any]] = {}
        self.annotations_of: dict[int, list[dict[str, Any]]] = {}
        self._ids = itertools.count(101)

    async def import_tasks(self, project: int, tasks: list[dict[str, Any]]) -> None:
        for task in tasks:
            tid = next(self._ids)
            self.tasks[tid] = {
                "id": tid,
                "project": project,
                "data": dict(task["data"]),
                "meta": {},
                "created_at": "2026-01-01T00:00:00Z",
                "updated_at": "2026-01-01T00:00:00Z",
                "total_annotations": 0,
                "predictions": task.get("predictions", []),
            }

    def annotate(self, tid: int, stamp: str) -> None:
        self.annotations_of.setdefault(tid, []).append(
            {"id": tid * 10, "result": [], "updated_at": stamp, "was_cancelled": False}
        )
        self.tasks[tid].update(total_annotations=1, updated_at=stamp)

    async def tasks_with_key(self, project: int, key: str) -> list[dict[str, Any]]:
        return [
            t
            for t in self.tasks.values()
            if t["project"] == project and t["data"].get(KEY_FIELD) == key
        ]

    async def labeled_since(self, project: int, since: str | None) -> list[dict[str, Any]]:
        return [
            t
            for t in self.tasks.values()
            if t["project"] == project
            and t["total_annotations"]
            and (since is None or t["updated_at"] > since)
        ]

    async def unlabeled(self, project: int) -> list[dict[str, Any]]:
        return [
            t for t in self.tasks.values() if t["project"] == project and not t["total_annotations"]
        ]

    async def annotations(self, task: int) -> list[dict[str, Any]]:
        return list(self.annotations_of.get(task, []))

    async def predictions(self, task: int) -> list[dict[str, Any]]:
        return list(self.tasks[task]["predictions"])

    async def set_meta(self, task: int, meta: dict[str, Any]) -> None:
        self.tasks[task]["meta"] = meta

    async def get_task(self, task: int) -> dict[str, Any]:
        return self.tasks[task]


async def _frame_index(aws: AwsClients, source: str) -> None:
    layout = ClipLayout.from_sequence_uri(source)
    index = FrameIndex(
        clip_id="clip-1",
        fps=1,
        source_fps=1,
        width=320,
        height=180,
        video_uri=layout.uri(f"{layout.prefix}clip.mp4"),
        sequence_uri=source,
        manifest_uri=layout.uri(layout.manifest_key),
        frames=[
            IndexedFrame(frame_no=i, timestamp=i, source_frame=i, file=f"{i:04d}.jpg")
            for i in range(2)
        ],
    )
    await S3Store(aws).put_bytes(
        layout.bucket, layout.frame_index_key, index.model_dump_json().encode()
    )


@dataclass
class Sent:
    """One data object sent to a Label Studio job, and the listener's Label Studio side."""

    job: StreamingJob
    message: dict[str, Any]
    key: str
    source: str
    studio: FakeLabelStudio
    published: Recorder
    clock: FakeClock
    side: LabelStudioSide


async def sent_to_label_studio(aws: AwsClients, settings: Settings, **changes: Any) -> Sent:
    s = dispatch_settings(settings, labelstudio__time_scale=1.0, **changes)
    jobs = await create_jobs(aws, s)
    job: StreamingJob = jobs["VOTVehicle"].model_copy(
        update={"arn": f"{ARN_PREFIX}{PROJECT}", "backend": "labelstudio"}
    )
    await make_dispatcher(aws, s, FakeClock(), Recorder()).on_frames_ready(
        frames_ready(bucket=s.names.bucket)
    )
    (sent,) = await inputs(aws, jobs["VOTVehicle"])
    await _frame_index(aws, sent["source-ref"])
    studio, published, clock = FakeLabelStudio(), Recorder(), FakeClock()
    side = LabelStudioSide(s, aws, published, clock, client=studio)  # type: ignore[arg-type]
    side.jobs = {job.name: job}
    key, source = sent["lava-dedup-id"], sent["source-ref"]
    return Sent(job, sent, key, source, studio, published, clock, side)


@pytest.mark.parametrize("aws_backend", ["memory"])
async def test_a_task_carrying_another_objects_key_completes_nothing(
    policy_aws: AwsClients, policy_settings: Settings
) -> None:
    x = await sent_to_label_studio(policy_aws, policy_settings)
    job, sent, key, source = x.job, x.message, x.key, x.source
    studio, published, side = x.studio, x.published, x.side
    clock = x.clock

    genuine = await side.importer.import_message(job, sent)
    forged = {"data": {KEY_FIELD: key, "source_ref": source}}
    await studio.import_tasks(PROJECT, [forged, forged, forged])  # attacker: the job's project
    await studio.import_tasks(OTHER_PROJECT, [forged])  # attacker: a project of their own
    attacker_ids = [t for t in studio.tasks if t != genuine.task_id]
    for tid in (attacker_ids[0], attacker_ids[1], attacker_ids[3]):
        studio.annotate(tid, "2026-01-01T00:00:05Z")
    # the unannotated forged task was imported long ago: due to expire (TaskExpired -> re-key)
    studio.tasks[attacker_ids[2]]["created_at"] = "2025-12-01T00:00:00Z"
    await clock.advance(1)
    with capture_logs() as logs:
        # webhooks first (the attacker's, by task id), then reconciliation finds the rest
        for tid in attacker_ids:
            assert not await side.handle_task(job, studio.tasks[tid], via="webhook")
        assert await side.reconcile_job(job) == 0
        assert genuine.task_id is not None
        studio.annotate(genuine.task_id, "2026-01-01T00:00:09Z")
        assert await side.reconcile_job(job) == 1  # good traffic in the same run completes
    (event,) = published.events
    assert isinstance(event.payload, LevelCompleted) and event.payload.dedup_key == key
    assert event.payload.metadata["labelstudio"]["task"] == genuine.task_id
    assert not published.of(TaskExpired.__name__)
    reasons = [e["reason"] for e in logs if e["event"].startswith("Label Studio task refused")]
    assert (
        f"task {attacker_ids[0]} carries key {key!r}, which was imported as task "
        f"{genuine.task_id}" in reasons
    )
    # 4 by webhook, then reconciliation: 2 annotated in the job's project, 1 due to expire
    assert len(reasons) == len(attacker_ids) + 3


@pytest.mark.parametrize("aws_backend", ["memory"])
async def test_a_task_created_for_a_key_before_the_importer_is_never_adopted(
    policy_aws: AwsClients, policy_settings: Settings
) -> None:
    """Keys are predictable (an expiry's next key is computable from the visible one): an
    attacker who imports a task for the key first must not have it adopted as the claim."""
    x = await sent_to_label_studio(policy_aws, policy_settings)
    job, sent, key, source = x.job, x.message, x.key, x.source
    studio, published, side = x.studio, x.published, x.side
    squat = {"data": {KEY_FIELD: key, "source_ref": source, "lava_claim": "guessed"}}
    await studio.import_tasks(PROJECT, [squat])  # before the input message is imported
    (squatted,) = studio.tasks

    with capture_logs() as logs:
        genuine = await side.importer.import_message(job, sent)
        assert genuine.task_id is not None and genuine.task_id != squatted  # ours, created
        again = await side.importer.import_message(job, sent)  # a same-key re-send: no-op
        assert again.task_id == genuine.task_id
        studio.annotate(squatted, "2026-01-01T00:00:05Z")
        assert not await side.handle_task(job, studio.tasks[squatted], via="webhook")
        studio.annotate(genuine.task_id, "2026-01-01T00:00:09Z")
        assert await side.handle_task(job, studio.tasks[genuine.task_id], via="webhook")
    (event,) = published.events  # only the genuine annotation completes the object
    assert isinstance(event.payload, LevelCompleted)
    assert event.payload.metadata["labelstudio"]["task"] == genuine.task_id
    assert any(e["event"].startswith("Label Studio task with our key") for e in logs)
    assert any(e["event"].startswith("Label Studio task refused") for e in logs)


SEAL_KEY = "k" * 32


async def _no_lookup(key: str) -> None:
    raise AssertionError(f"looked up {key}: the seal should have named the data object")


@pytest.mark.parametrize("aws_backend", ["memory"])
async def test_a_sealed_import_names_its_data_object_without_a_lookup(
    policy_aws: AwsClients, policy_settings: Settings
) -> None:
    """The claim keeps the input's seal: completion and expiry make no Query for the key."""
    x = await sent_to_label_studio(policy_aws, policy_settings, labeling__seal_keys=SEAL_KEY)
    assert x.message[SEAL_FIELD].startswith("v1.")
    checks: list[str] = []
    x.side.outputs.keys.checked = checks.append
    x.side.outputs.keys.directory.lookup = _no_lookup  # type: ignore[method-assign]
    imported = await x.side.importer.import_message(x.job, x.message)
    assert imported.task_id is not None
    claim = await x.side.importer.claims.get(x.job.name, x.key)
    assert claim is not None and claim[SEAL_FIELD] == x.message[SEAL_FIELD]
    x.studio.annotate(imported.task_id, "2026-01-01T00:00:09Z")
    assert await x.side.reconcile_job(x.job) == 1
    (event,) = x.published.events
    assert isinstance(event.payload, LevelCompleted)
    parts = parse_dedup_key(x.key)
    assert parts is not None and event.payload.dedup_key == x.key
    assert (event.payload.task_id, event.payload.data_object_id) == (parts.task_id, parts.object_id)

    # the expiry of the same task (as Outputs.expire reports it): the seal again
    translated = await x.side.outputs.expire(x.job, x.studio.tasks[imported.task_id])
    assert translated is not None and isinstance(translated.event.payload, TaskExpired)
    assert translated.event.payload.data_object_id == parts.object_id
    assert checks == ["seal", "seal"]


@pytest.mark.parametrize("aws_backend", ["memory"])
@pytest.mark.parametrize("claim", ["made before the seal", "sealed under a retired key"])
async def test_a_claim_whose_seal_does_not_open_is_looked_up_and_still_completes(
    policy_aws: AwsClients, policy_settings: Settings, claim: str
) -> None:
    """A seal saves a request and never refuses anything: the lookup finds the data object."""
    x = await sent_to_label_studio(policy_aws, policy_settings, labeling__seal_keys=SEAL_KEY)
    checks: list[str] = []
    x.side.outputs.keys.checked = checks.append
    imported = await x.side.importer.import_message(x.job, x.message)
    assert imported.task_id is not None
    if claim == "made before the seal":  # as an importer before this version marked it
        await x.side.importer.claims.imported(x.job.name, x.key, imported.task_id)
    else:
        x.side.outputs.keys.sealer = Sealer([b"r" * 32], policy_settings.namespace)
    x.studio.annotate(imported.task_id, "2026-01-01T00:00:09Z")
    assert await x.side.reconcile_job(x.job) == 1
    (event,) = x.published.events
    assert isinstance(event.payload, LevelCompleted) and event.payload.dedup_key == x.key
    assert checks == ["lookup"]


@pytest.mark.parametrize("tracked", [True, False])
@pytest.mark.parametrize("aws_backend", ["memory"])
async def test_where_workers_are_not_tracked_a_label_studio_output_names_no_annotator(
    policy_aws: AwsClients, policy_settings: Settings, tracked: bool
) -> None:
    """LAVA_LABELING__WORKER_IDENTITIES=false drops the annotation's user from LevelCompleted,
    as it drops the Ground Truth worker (tests/test_worker_responses.py)."""
    x = await sent_to_label_studio(policy_aws, policy_settings, labeling__worker_identities=tracked)
    imported = await x.side.importer.import_message(x.job, x.message)
    assert imported.task_id is not None
    x.studio.annotate(imported.task_id, "2026-01-01T00:00:09Z")
    x.studio.annotations_of[imported.task_id][0].update(completed_by=42, lead_time=30)
    assert await x.side.reconcile_job(x.job) == 1
    (event,) = x.published.events
    assert isinstance(event.payload, LevelCompleted)
    worker = event.payload.worker
    assert (worker.worker_id if worker else None) == ("42" if tracked else None)
