"""Annotation tasks and their data objects: the dispatcher's domain (keys: shared.dedup).

An annotation task is one clip through one workflow. Each level of the workflow is a set of
streaming jobs; each job gets the clip's data object (its sequence file) under a dedup key.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.events import ClipFrames, FailureStage
from shared.quality.gold_ref import GoldRef
from shared.quality.workers import WorkerIdentity
from shared.taxonomy.attributes import ClipAttributes, DriveAttributes


class TaskStatus(StrEnum):
    ACTIVE = "active"  # levels in progress
    FINALIZING = "finalizing"  # every level done; LabelsFinalized being published
    FINALIZED = "finalized"  # LabelsFinalized published; post-processing under way
    COMPLETED = "completed"  # the clip completed (ClipCompleted)
    FAILED = "failed"
    STOPPED = "stopped"  # an operator stopped it: nothing is sent any more; final


class ClipStatus(StrEnum):
    """A clip's state across its tasks (the ``clip#<id>`` record; rules: tasks.clip_policy)."""

    INGESTING = "ingesting"  # a valid ClipIngested was accepted; frames not ready yet
    LABELING = "labeling"  # its tasks exist; no outcome yet
    COMPLETED = "completed"  # post-processed (ClipCompleted)
    FAILED = "failed"  # ClipFailed at some stage
    STOPPED = "stopped"  # an operator stopped one of its tasks


class ObjectStatus(StrEnum):
    WAITING = "waiting"  # sent (or about to be) and waiting for Ground Truth's output
    DONE = "done"
    FAILED = "failed"
    STOPPED = "stopped"  # its task was stopped; outputs arriving later are kept aside


class HistoryEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    at: float
    event: str
    detail: str = ""


class AnnotationTask(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    task_id: str
    clip_id: str
    workflow: str
    clip_workflows: list[str]
    levels: list[list[str]]
    level: int = 1
    status: TaskStatus = TaskStatus.ACTIVE
    frames: ClipFrames
    drive: DriveAttributes
    clip: ClipAttributes
    created_at: float
    updated_at: float
    level_started_at: float
    level_retriggers: int = 0
    failure_reason: str | None = None
    stopped_by: str | None = None
    history: list[HistoryEntry] = Field(default_factory=list)
    # The W3C trace context of its FramesReady (None with tracing off): sweeps continue it.
    trace_context: dict[str, str] | None = None
    # When the sweep looks at it next (level deadline, pending LabelsFinalized); the revision
    # every writer bumps (shared/tasks/plan.py: the aggregate's optimistic lock).
    due_at: float | None = None
    rev: int = 0
    # A gold copy (services/dispatcher/gold_mix.py): its clip id is made up, it joins no clip
    # record, and its labels are scored, not indexed.
    gold: GoldRef | None = None

    @property
    def final_level(self) -> bool:
        return self.level >= len(self.levels)

    def jobs_of(self, level: int) -> list[str]:
        return self.levels[level - 1]


class JobResult(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    label_attribute: str
    label_uri: str
    metadata: dict[str, Any] = Field(default_factory=dict)
    adjustment_status: str | None = None
    worker: WorkerIdentity | None = None


class DataObject(BaseModel):
    """One data object (the clip's sequence) sent to one job of one level."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    task_id: str
    job: str
    level: int
    object_id: str = "0"
    source_ref: str
    key: str
    attempt: int = 1
    keys: list[str] = Field(default_factory=list)
    expired_keys: list[str] = Field(default_factory=list)
    send_count: int = 0
    expirations: int = 0
    last_sent_at: float | None = None
    due_at: float | None = None
    status: ObjectStatus = ObjectStatus.WAITING
    output: JobResult | None = None
    done_at: float | None = None
    # Job lifecycle (services/dispatcher/jobs.py): the generation of the job it was last sent
    # to, and why it is held instead of sent (its job is Initializing, Stopped...), since when.
    generation: int | None = None
    held: str | None = None
    held_since: float | None = None
    # The W3C trace context it was created in (traceparent/tracestate; None with tracing off):
    # the listener continues the clip's trace from it when the job's output comes back.
    trace_context: dict[str, str] | None = None
    rev: int = 0  # bumped by every write (shared/tasks/plan.py)


class LateOutput(BaseModel):
    """An output (or expiry) that arrived for a stopped task: recorded, never acted upon."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    task_id: str
    job: str
    object_id: str
    key: str
    what: str  # "output" | "expired"
    at: float
    label_uri: str | None = None
    detail: str = ""


# --- the clip record --------------------------------------------------------------------------
class ClipCompletion(BaseModel):
    """How a clip completed: where its labels and summary are (from ClipCompleted)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    status: Literal[ClipStatus.COMPLETED] = ClipStatus.COMPLETED
    labels_uri: str
    summary_uri: str
    warnings: int = 0


class ClipFailure(BaseModel):
    """Where and why a clip failed (from ClipFailed); ``task_id`` is None at ingest."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    status: Literal[ClipStatus.FAILED] = ClipStatus.FAILED
    stage: FailureStage
    reason: str
    task_id: str | None = None


class ClipStop(BaseModel):
    """Which task of the clip an operator stopped, who, and why."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    status: Literal[ClipStatus.STOPPED] = ClipStatus.STOPPED
    task_id: str
    by: str
    reason: str = ""


ClipOutcome = Annotated[ClipCompletion | ClipFailure | ClipStop, Field(discriminator="status")]


class ClipRecord(BaseModel):
    """The one record of a clip's state: its tasks, and its outcome once it has one.

    Stored as the ``clip#<id>`` / ``clip`` item of the tasks table with the status in
    ``clip_status`` and the outcome as a JSON string in ``detail`` (records written before
    the outcome carried its status are read by the record's status). Written only through
    ``shared.tasks.clip_records`` (docs/clipowner.md has who writes what).
    """

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)
    STORED_STATUS: ClassVar[str] = "clip_status"
    STORED_OUTCOME: ClassVar[str] = "detail"

    clip_id: str
    # no clip_status stored: accepted, no task yet (shared.tasks.clip_records.accept)
    status: ClipStatus = Field(ClipStatus.INGESTING, validation_alias="clip_status")
    tasks: list[str] = Field(default_factory=list)
    accepted_at: float | None = None
    updated_at: float | None = None
    outcome: ClipOutcome | None = Field(None, validation_alias="detail")

    @model_validator(mode="before")
    @classmethod
    def _from_stored(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get(cls.STORED_OUTCOME), str):
            return data
        outcome = json.loads(data[cls.STORED_OUTCOME])
        status = data.get(cls.STORED_STATUS)
        if outcome and status and status != ClipStatus.LABELING:
            outcome.setdefault("status", status)
        return {**data, cls.STORED_OUTCOME: outcome or None}
