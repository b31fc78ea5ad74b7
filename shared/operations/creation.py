"""Creating annotation tasks: from the original's spec form or from a named workflow.

Either way the result is a ``ClipIngested`` for the clip (the pipeline's public entry), with an
event id derived from clip and workflow, so submitting the same request twice is one task. The
clip's record is written before the event is published: what the request returns can be read at
once (``ingesting``), and shows the ingest failure if there is one (docs/clipowner.md).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from pydantic import AliasChoices, BaseModel, Field

from shared.aws import AwsClients
from shared.events import ClipIngested, S3Uri, derived_event_id, new_event
from shared.ids import ID_PATTERN, task_id_of
from shared.labeling.jobs import JobRegistry
from shared.operations import clip_source
from shared.operations.clip_source import ClipSource
from shared.operations.errors import FieldError, Invalid
from shared.ports import Publish
from shared.resources import TASKS
from shared.settings import LabelingSettings
from shared.tasks.clip_records import ClipRecords
from shared.tasks.specs import ChainInput, TaskSpec
from shared.tasks.workflows import WorkflowResolver
from shared.taxonomy.attributes import ClipAttributes, DriveAttributes
from shared.workflows import WorkflowError, load_catalog


class CreatedTask(BaseModel):
    task_id: str
    clip_id: str
    workflow: str
    levels: list[list[str]]
    warnings: list[str] = Field(
        default_factory=list,
        description="What the request said and was not applied (the original's job "
        "configuration where it differs from the registered job's).",
    )


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
    clipId: str | None = Field(
        None,
        pattern=ID_PATTERN,
        validation_alias=AliasChoices("clipId", "batchId"),
        description="Default: the capture rig's id of the clip (drive id + content hash). "
        "Alias: the original's `batchId`.",
    )


def _error(loc: Sequence[str | int], msg: str) -> FieldError:
    return FieldError(loc=["body", *(str(part) for part in loc)], msg=msg)


async def _spec_errors(registry: JobRegistry, request: SpecTaskRequest) -> list[FieldError]:
    """Everything wrong with a spec that can be known now, each named: unknown jobs, a job
    twice, an adjustment job at level 1, a chain its job does not adjust."""
    errors = [
        _error(["labelingJobs"], f"job {name} is named more than once")
        for name in request.duplicates()
    ]
    try:
        request.levels()
    except ValueError as exc:
        errors.append(_error(["labelingJobs"], str(exc)))
    for index, spec_job in enumerate(request.labelingJobs):
        where: list[str | int] = ["labelingJobs", index, "jobName"]
        job = await registry.get(spec_job.jobName)
        if job is None:
            errors.append(_error(where, f"job {spec_job.jobName} is not registered"))
            continue
        source = spec_job.inputConfig
        if spec_job.jobLevel == 1 and job.adjusts is not None:
            errors.append(
                _error(
                    where,
                    f"{job.name} adjusts {job.adjusts}: an adjustment job cannot be at level 1",
                )
            )
        if isinstance(source, ChainInput) and job.adjusts != source.chainFromJobName:
            errors.append(
                _error(
                    ["labelingJobs", index, "inputConfig", "chainFromJobName"],
                    f"{job.name} adjusts {job.adjusts}, but the spec chains it from "
                    f"{source.chainFromJobName}",
                )
            )
    return errors


async def _clip_errors(
    aws: AwsClients, settings: LabelingSettings, uri: str, given_id: str | None, loc: list[str]
) -> tuple[ClipSource, list[FieldError]]:
    source = await clip_source.check(aws, settings, uri, hash_needed=given_id is None)
    return source, [_error(loc, source.error)] if source.error else []


def _refuse(errors: list[FieldError]) -> None:
    if len(errors) == 1:
        raise Invalid(errors[0]["msg"], errors)
    if errors:
        raise Invalid(f"{len(errors)} problems: " + "; ".join(e["msg"] for e in errors), errors)


async def create_from_spec(
    aws: AwsClients,
    settings: LabelingSettings,
    publish: Publish,
    request: SpecTaskRequest,
    now: float | None = None,
) -> CreatedTask:
    """Every check that can be made now is made now, each error named (422): the jobs, the
    levels, the clip (in the pipeline's bucket, present)."""
    registry = JobRegistry(aws, settings)
    errors = await _spec_errors(registry, request)
    try:
        source = request.clip_inputs(settings.labeling.spec_fps)
    except ValueError as exc:  # no clip, or two: nothing more to check about it
        _refuse([*errors, _error(["labelingJobs"], str(exc))])
        raise
    clip, clip_errors = await _clip_errors(
        aws, settings, source.clipS3Uri, request.clipId, ["labelingJobs", "inputConfig"]
    )
    _refuse(errors + clip_errors)
    levels = request.levels()
    warnings = []
    for spec_job in request.labelingJobs:
        job = await registry.get(spec_job.jobName)
        warnings += spec_job.differences(job) if job else []
    workflow = request.workflow_name()
    resolver = WorkflowResolver(
        load_catalog(settings.labeling.workflows_file), aws, settings.names.table(TASKS.name)
    )
    await resolver.register(workflow, levels)
    clip_id = clip.clip_id(request.drive.drive_id, request.clipId)
    clips = ClipRecords(aws, settings.names.table(TASKS.name))
    await clips.accept(clip_id, [task_id_of(clip_id, workflow)], _now(now))
    fps = source.fps or settings.labeling.spec_fps
    await _ingest(publish, clip_id, request.drive, request.clip, source.clipS3Uri, fps, workflow)
    return CreatedTask(
        task_id=task_id_of(clip_id, workflow),
        clip_id=clip_id,
        workflow=workflow,
        levels=levels,
        warnings=warnings,
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
    errors: list[FieldError] = []
    try:
        levels = await resolver.levels(request.workflow)
    except WorkflowError as exc:
        errors.append(_error(["workflow"], str(exc)))
    clip, clip_errors = await _clip_errors(
        aws, settings, request.clipS3Uri, request.clipId, ["clipS3Uri"]
    )
    _refuse(errors + clip_errors)
    clip_id = clip.clip_id(request.drive.drive_id, request.clipId)
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
