"""The control API (``/v1``): jobs, annotation tasks, clips, pipeline status.

Each route parses its input, calls one operation of ``shared.operations`` (the CLI calls the
same ones) and returns its result; every mutating route needs ``operator`` and leaves an
audit line.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Response
from pydantic import BaseModel, Field

from services.control.audit import audited
from services.control.auth import Principal
from services.control.context import Ctl
from services.control.cursors import decode_cursor, encode_cursor
from services.control.problems import documented
from services.control.security import operator, viewer
from services.control.views import (
    LateOutputView,
    ObjectView,
    StatusView,
    TaskRecordView,
    Timestamp,
)
from shared.events import JobName
from shared.groundtruth.job_types import JOB_TYPES
from shared.ids import ID_PATTERN
from shared.labeling.streaming_job import StreamingJob
from shared.operations import clips, creation, jobs, tasks
from shared.operations.creation import CreatedTask, SpecTaskRequest, WorkflowTaskRequest
from shared.operations.status import pipeline_status
from shared.tasks.clip_policy import ClipStage
from shared.tasks.model import (
    AnnotationTask,
    ClipCompletion,
    ClipRecord,
    TaskStatus,
)

Viewer = Annotated[Principal, Depends(viewer)]
Operator = Annotated[Principal, Depends(operator)]
TaskId = Annotated[str, Path(pattern=ID_PATTERN)]
ClipId = Annotated[str, Path(pattern=ID_PATTERN)]
JobPath = Annotated[str, Path(pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")]

READ = documented(400, 401, 403, 422)
WRITE = documented(400, 401, 403, 404, 409, 413, 422, 429)


def linked(
    status: int, description: str, **links: tuple[str, dict[str, str]]
) -> dict[int | str, dict[str, Any]]:
    """A success response with OpenAPI links (operationId, parameters): where a client (and
    schemathesis's stateful phase) goes next with what it got."""
    return {
        status: {
            "description": description,
            "links": {
                name: {"operationId": operation, "parameters": parameters}
                for name, (operation, parameters) in links.items()
            },
        }
    }


JOB_NAME = {"name": "$response.body#/job/name"}
JOB_LINKS = linked(
    200,
    "The job (created, or as it was)",
    DescribeJob=("describe_job", JOB_NAME),
    StopJob=("stop_job", JOB_NAME),
    ArchiveJob=("archive_job", JOB_NAME),
)

router = APIRouter(prefix="/v1")


# --- jobs ---------------------------------------------------------------------------------
class JobCreate(BaseModel):
    name: JobName
    type: Literal[tuple(sorted(JOB_TYPES))]  # type: ignore[valid-type]
    adjusts: JobName | None = None
    backend: Literal["emulator", "sagemaker"] = "emulator"


class JobCreated(BaseModel):
    created: bool = Field(description="False: it existed with the same configuration.")
    job: StreamingJob


@router.get("/jobs", response_model=list[StreamingJob], responses=READ, tags=["jobs"])
async def list_jobs(who: Viewer, ctl: Ctl, archived: bool = False) -> list[StreamingJob]:
    """The registered jobs by name (``archived=true``: the archived ones too)."""
    return await ctl.jobs.registry.list(archived=archived)


@router.post(
    "/jobs",
    response_model=JobCreated,
    responses={**JOB_LINKS, **WRITE},
    tags=["jobs"],
    operation_id="create_job",
)
async def create_job(who: Operator, ctl: Ctl, body: JobCreate) -> JobCreated:
    """Idempotent; the name is bounded by every name derived from it in this namespace (the
    Ground Truth job, its queue and topics): a longer one is a 422 naming the bound."""
    async with audited(who, "jobs.create", body.name):
        result = await jobs.create_job(ctl.jobs, body.name, body.type, body.adjusts, body.backend)
    return JobCreated(created=result.created, job=result.job)


@router.get(
    "/jobs/{name}",
    response_model=StreamingJob,
    responses=documented(400, 401, 403, 404, 422),
    tags=["jobs"],
    operation_id="describe_job",
)
async def describe_job(
    who: Viewer, ctl: Ctl, name: JobPath, archived: bool = False
) -> StreamingJob:
    """The job with its live status; an archived one is a 404 unless ``archived=true``."""
    return await jobs.describe_job(ctl.jobs, name, archived)


@router.post(
    "/jobs/{name}/stop",
    response_model=StreamingJob,
    responses=WRITE,
    tags=["jobs"],
    operation_id="stop_job",
)
async def stop_job(who: Operator, ctl: Ctl, name: JobPath) -> StreamingJob:
    async with audited(who, "jobs.stop", name):
        return await jobs.stop_job(ctl.jobs, name)


@router.delete(
    "/jobs/{name}",
    response_model=StreamingJob,
    responses=WRITE,
    tags=["jobs"],
    operation_id="archive_job",
)
async def archive_job(who: Operator, ctl: Ctl, name: JobPath) -> StreamingJob:
    """Stop the job unless it has ended, and archive it: from then on a 404 here (``GET
    /v1/jobs/{name}?archived=true`` still shows it) and gone from ``GET /v1/jobs``; the
    tasks that name it still find it. Creating it again makes a new generation."""
    async with audited(who, "jobs.archive", name):
        return await jobs.archive_job(ctl.jobs, name)


# --- tasks --------------------------------------------------------------------------------
class TaskSummary(BaseModel):
    task_id: str
    clip_id: str
    workflow: str
    status: TaskStatus
    level: int
    levels: int
    created_at: Timestamp
    updated_at: Timestamp
    failure_reason: str | None = None
    stopped_by: str | None = None

    @classmethod
    def of(cls, task: AnnotationTask) -> TaskSummary:
        return cls(
            task_id=task.task_id,
            clip_id=task.clip_id,
            workflow=task.workflow,
            status=task.status,
            level=task.level,
            levels=len(task.levels),
            created_at=task.created_at,
            updated_at=task.updated_at,
            failure_reason=task.failure_reason,
            stopped_by=task.stopped_by,
        )


class TaskPage(BaseModel):
    items: list[TaskSummary]
    next_cursor: str | None = Field(None, description="Pass as `cursor` for the next page.")


class TaskView(BaseModel):
    task: TaskRecordView
    objects: list[ObjectView]
    late_outputs: list[LateOutputView]


class StopRequest(BaseModel):
    reason: str = Field("", max_length=500)


class StopView(BaseModel):
    task_id: str
    changed: bool = Field(description="False: it was stopped already.")
    objects_stopped: int


class RetryView(BaseModel):
    task_id: str
    actions: list[str]


@router.get("/tasks", response_model=TaskPage, responses=READ, tags=["tasks"])
async def list_tasks(
    who: Viewer,
    ctl: Ctl,
    status: TaskStatus = TaskStatus.ACTIVE,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> TaskPage:
    """Tasks in one status, most recently updated first, a page at a time (through the
    status index: a page costs the same whatever the table holds)."""
    after = decode_cursor(cursor, f"task#{status.value}") if cursor else None
    found, last = await ctl.store.tasks_page(
        status.value, min(limit, ctl.settings.control.page_max), after
    )
    return TaskPage(
        items=[TaskSummary.of(t) for t in found],
        next_cursor=encode_cursor(last) if last else None,
    )


# 202: the clip is accepted; its resource exists at once (``ingesting``) and tells the rest.
TASK_ID = {"task_id": "$response.body#/task_id"}
ACCEPTED = {
    202: {
        "description": "Accepted: the clip is ingesting; follow Location for its state.",
        "headers": {
            "Location": {
                "description": "The clip's resource (`/v1/clips/{clip_id}`), readable at once.",
                "schema": {"type": "string"},
            }
        },
        "links": linked(
            202,
            "",
            ShowClip=("show_clip", {"clip_id": "$response.body#/clip_id"}),
            ShowTask=("show_task", TASK_ID),
            StopTask=("stop_task", TASK_ID),
            RetryTask=("retry_task", TASK_ID),
        )[202]["links"],
    },
    **WRITE,
}


def _accepted(created: CreatedTask, response: Response) -> CreatedTask:
    response.headers["Location"] = f"/v1/clips/{created.clip_id}"
    return created


@router.post(
    "/tasks",
    response_model=CreatedTask,
    status_code=202,
    responses=ACCEPTED,
    tags=["tasks"],
    operation_id="create_task",
)
async def create_task(
    who: Operator, ctl: Ctl, body: WorkflowTaskRequest, response: Response
) -> CreatedTask:
    """A task for a clip through a configured workflow (idempotent per clip and workflow)."""
    # the audit line names the task created (the clip's URI when refused)
    async with audited(who, "tasks.create", body.clipS3Uri, workflow=body.workflow) as line:
        created = await creation.create_from_workflow(
            ctl.aws, ctl.settings, ctl.publish, body, now=ctl.now()
        )
        line.target = created.task_id
    return _accepted(created, response)


@router.post(
    "/tasks/spec",
    response_model=CreatedTask,
    status_code=202,
    responses=ACCEPTED,
    tags=["tasks"],
    operation_id="create_task_from_spec",
)
async def create_task_from_spec(
    who: Operator, ctl: Ctl, body: SpecTaskRequest, response: Response
) -> CreatedTask:
    """The original's form: ``labelingJobs`` with ``jobName``, ``jobLevel`` and
    ``inputConfig`` (``clipS3Uri`` + ``fps`` at level 1, ``chainFromJobName`` above)."""
    # the audit line names the task created (the clip's URI when refused), not the drive
    source = next((j.inputConfig for j in body.labelingJobs if j.jobLevel == 1), None)
    target = getattr(source, "clipS3Uri", body.drive.drive_id)
    async with audited(who, "tasks.create-spec", target) as line:
        created = await creation.create_from_spec(
            ctl.aws, ctl.settings, ctl.publish, body, now=ctl.now()
        )
        line.target = created.task_id
    return _accepted(created, response)


@router.get(
    "/tasks/{task_id}",
    response_model=TaskView,
    responses=documented(400, 401, 403, 404, 422),
    tags=["tasks"],
    operation_id="show_task",
)
async def show_task(who: Viewer, ctl: Ctl, task_id: TaskId) -> TaskView:
    """Levels, data objects with their keys, sends and expirations, history, late outputs."""
    detail = await tasks.show_task(ctl.store, task_id)
    return TaskView(
        task=TaskRecordView.of(detail.task),
        objects=[ObjectView.of(o) for o in detail.objects],
        late_outputs=[LateOutputView.of(o) for o in detail.late_outputs],
    )


@router.post(
    "/tasks/{task_id}/retry",
    response_model=RetryView,
    responses=WRITE,
    tags=["tasks"],
    operation_id="retry_task",
)
async def retry_task(who: Operator, ctl: Ctl, task_id: TaskId) -> RetryView:
    async with audited(who, "tasks.retry", task_id):
        actions = await tasks.retry_task(
            ctl.store, task_id, ctl.now(), ctl.settings.dispatch.level_timeout_seconds
        )
    return RetryView(task_id=task_id, actions=actions)


@router.post(
    "/tasks/{task_id}/stop",
    response_model=StopView,
    responses=WRITE,
    tags=["tasks"],
    operation_id="stop_task",
)
async def stop_task(
    who: Operator, ctl: Ctl, task_id: TaskId, body: Annotated[StopRequest | None, Body()] = None
) -> StopView:
    """Stop for good (idempotent): nothing more is sent; later outputs are only recorded."""
    reason = body.reason if body else ""
    async with audited(who, "tasks.stop", task_id, reason=reason):
        result = await tasks.stop_task(
            ctl.store, task_id, ctl.now(), by=f"{who.via}:{who.name}", reason=reason
        )
    return StopView(
        task_id=result.task_id, changed=result.changed, objects_stopped=result.objects_stopped
    )


# --- clips and status -----------------------------------------------------------------------
class ClipView(ClipRecord):
    """The clip's record, each stage's state, and where its labels and summary are once it
    completed (the same labels the dataset index lists: both are written together)."""

    stages: list[ClipStage] = Field(
        default_factory=list,
        description="ingest, each level of each task, post-processing: pending, running, "
        "done, failed or stopped (with the reason).",
    )
    labels_uri: str | None = None
    summary_uri: str | None = None
    accepted_at: Timestamp | None = None
    updated_at: Timestamp | None = None


@router.get(
    "/clips/{clip_id}",
    response_model=ClipView,
    responses=documented(400, 401, 403, 404, 422),
    tags=["clips"],
    operation_id="show_clip",
)
async def show_clip(who: Viewer, ctl: Ctl, clip_id: ClipId) -> ClipView:
    """The clip's state from the moment it is accepted (``ingesting``), its tasks and stages,
    and where its labels and summary are once completed."""
    detail = await clips.show_clip(ctl.store, clip_id)
    record = detail.record
    done = record.outcome if isinstance(record.outcome, ClipCompletion) else None
    return ClipView(
        **record.model_dump(exclude={"tasks"}),
        tasks=sorted(record.tasks),
        stages=detail.stages,
        labels_uri=done.labels_uri if done else None,
        summary_uri=done.summary_uri if done else None,
    )


@router.get("/status", response_model=StatusView, responses=READ, tags=["status"])
async def status(
    who: Viewer, ctl: Ctl, hours: Annotated[int, Query(ge=1, le=168)] = 24
) -> StatusView:
    """Counts per stage and status, waiting data objects by age, expirations, re-keys,
    re-sends, failures with reasons, and the last hours' counts."""
    return StatusView.of(
        await pipeline_status(
            ctl.store, ctl.now(), ctl.settings.dispatch.resend_interval_seconds, hours
        )
    )


# --- audit --------------------------------------------------------------------------------
