"""Creating annotation tasks: from the original's spec form or from a named workflow.

Either way the result is a ``ClipIngested`` for the clip (the pipeline's public entry), with an
event id derived from clip and workflow, so submitting the same request twice is one task. The
clip's record is written before the event is published: what the request returns can be read at
once (``ingesting``), and shows the ingest failure if there is one (docs/clipowner.md).
"""

from __future__ import annotations

import hashlib
import time

from pydantic import BaseModel, Field

from shared.aws import AwsClients
from shared.events import ClipIngested, S3Uri, derived_event_id, new_event
from shared.ids import ID_PATTERN, clip_id_of, task_id_of
from shared.labeling.jobs import JobRegistry
from shared.operations.errors import Invalid
from shared.ports import Publish
from shared.resources import TASKS
from shared.settings import LabelingSettings
from shared.tasks.clip_records import ClipRecords
from shared.tasks.specs import TaskSpec
from shared.tasks.workflows import WorkflowResolver
from shared.taxonomy.attributes import ClipAttributes, DriveAttributes
from shared.workflows import WorkflowError, load_catalog


class CreatedTask(BaseModel):
    task_id: str
    clip_id: str
    workflow: str
    levels: list[list[str]]


class WorkflowTaskRequest(BaseModel):
    """A task from a configured workflow (shared/workflows.toml)."""

    workflow: str = Field(min_length=1, max_length=64)
    clipS3Uri: S3Uri
    fps: float = Field(gt=0, le=60)
    drive: DriveAttributes
    clip: ClipAttributes
    clipId: str | None = Field(None, pattern=ID_PATTERN)


class SpecTaskRequest(TaskSpec):
    """The original's task form (``labelingJobs``) plus what the rig would have said."""

    drive: DriveAttributes
    clip: ClipAttributes
    clipId: str | None = Field(None, pattern=ID_PATTERN)


def clip_id_for(uri: str, drive_id: str, given: str | None) -> str:
    """The rig's rule (``lava.rig.derive_clip_id``: drive id + 16 hex of the content hash);
    with no file to hash here, the clip's URI stands for its content."""
    return given or clip_id_of(drive_id, hashlib.sha256(uri.encode()).hexdigest())


async def create_from_spec(
    aws: AwsClients,
    settings: LabelingSettings,
    publish: Publish,
    request: SpecTaskRequest,
    now: float | None = None,
) -> CreatedTask:
    try:
        levels = request.levels()
        source = request.clip_inputs()
    except ValueError as exc:
        raise Invalid(f"invalid spec: {exc}") from None
    registry = JobRegistry(aws, settings)
    for name, chained in request.chains().items():
        job = await registry.get(name)
        if job is None:
            raise Invalid(f"job {name} is not registered")
        if job.adjusts != chained:
            raise Invalid(f"{name} adjusts {job.adjusts}, but the spec chains it from {chained}")
    for name in levels[0]:
        if await registry.get(name) is None:
            raise Invalid(f"job {name} is not registered")
    workflow = request.workflow_name()
    resolver = WorkflowResolver(
        load_catalog(settings.labeling.workflows_file), aws, settings.names.table(TASKS.name)
    )
    await resolver.register(workflow, levels)
    clip_id = clip_id_for(source.clipS3Uri, request.drive.drive_id, request.clipId)
    clips = ClipRecords(aws, settings.names.table(TASKS.name))
    await clips.accept(clip_id, [task_id_of(clip_id, workflow)], _now(now))
    await _ingest(
        publish, clip_id, request.drive, request.clip, source.clipS3Uri, source.fps, workflow
    )
    return CreatedTask(
        task_id=task_id_of(clip_id, workflow), clip_id=clip_id, workflow=workflow, levels=levels
    )


async def create_from_workflow(
    aws: AwsClients,
    settings: LabelingSettings,
    publish: Publish,
    request: WorkflowTaskRequest,
    now: float | None = None,
) -> CreatedTask:
    resolver = WorkflowResolver(
        load_catalog(settings.labeling.workflows_file), aws, settings.names.table(TASKS.name)
    )
    try:
        levels = await resolver.levels(request.workflow)
    except WorkflowError as exc:
        raise Invalid(str(exc)) from None
    clip_id = clip_id_for(request.clipS3Uri, request.drive.drive_id, request.clipId)
    clips = ClipRecords(aws, settings.names.table(TASKS.name))
    await clips.accept(clip_id, [task_id_of(clip_id, request.workflow)], _now(now))
    await _ingest(
        publish,
        clip_id,
        request.drive,
        request.clip,
        request.clipS3Uri,
        request.fps,
        request.workflow,
    )
    return CreatedTask(
        task_id=task_id_of(clip_id, request.workflow),
        clip_id=clip_id,
        workflow=request.workflow,
        levels=levels,
    )


def _now(now: float | None) -> float:
    return time.time() if now is None else now


async def _ingest(
    publish: Publish,
    clip_id: str,
    drive: DriveAttributes,
    clip: ClipAttributes,
    uri: str,
    fps: float,
    workflow: str,
) -> None:
    payload = ClipIngested(
        clip_id=clip_id, drive=drive, clip=clip, video_uri=uri, fps=fps, workflows=[workflow]
    )
    await publish(new_event(payload, clip_id, event_id=derived_event_id(clip_id, workflow)))
