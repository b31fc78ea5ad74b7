"""The policy's inputs: the events it decides on, its durations, and the job gate.

The job gate (handbook; sms-streaming-create-job) decides per due data object whether its job
takes input: a new streaming job is ``Initializing`` and loses what is published to it until
``InProgress``; a stopped job takes nothing; a re-created job (a new generation in the
registry) has never seen any key:

- job InProgress, same generation as the last send (or never sent): :class:`Send` (same key);
- job InProgress, a newer generation than the last send: :class:`NewKey`, then send;
- anything else (Initializing, Stopping, Stopped, Failed, Completed): :class:`Hold`.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.dedup import dedup_key_id
from shared.events import FailureStage, FramesReady, LevelCompleted
from shared.labeling.streaming_job import StreamingJob
from shared.settings import DispatchConfig
from shared.tasks.model import DataObject


@dataclass(frozen=True)
class Rules:
    """The policy's durations and limits (LAVA_DISPATCH__*), in seconds."""

    resend_interval: float
    level_timeout: float
    level_max_retriggers: int
    max_expirations: int
    job_recheck: float
    send_lease: float

    @classmethod
    def of(cls, config: DispatchConfig) -> Rules:
        return cls(
            resend_interval=config.resend_interval_seconds,
            level_timeout=config.level_timeout_seconds,
            level_max_retriggers=config.level_max_retriggers,
            max_expirations=config.max_expirations,
            job_recheck=config.job_recheck_seconds,
            send_lease=config.send_lease_seconds,
        )


@dataclass(frozen=True)
class Start:
    """FramesReady, its workflow resolved to levels of jobs (or refused with a reason)."""

    frames: FramesReady
    levels: list[list[str]]
    refusal: str | None = None
    # the W3C trace context the FramesReady was handled in (None with tracing off)
    trace_context: dict[str, str] | None = None


@dataclass(frozen=True)
class Output:
    """LevelCompleted: a job's output for a data object, under a key."""

    completed: LevelCompleted


@dataclass(frozen=True)
class Returned:
    """Ground Truth gave an object back unlabeled (TaskExpired, retryable LevelFailed)."""

    job: str
    object_id: str
    key: str
    reason: str
    kind: str = "expired"


@dataclass(frozen=True)
class LabelingFailed:
    """A failure re-sending cannot fix (LevelFailed, a ClientError)."""

    job: str
    object_id: str
    key: str
    reason: str


@dataclass(frozen=True)
class Sweep:
    """The periodic look at a task with something due (re-sends, level deadline)."""


@dataclass(frozen=True)
class Abort:
    """Something the task cannot get past (a lasting AWS error): fail it with the reason."""

    clip_id: str
    task_id: str
    reason: str
    stage: FailureStage = "dispatch"


PolicyEvent = Start | Output | Returned | LabelingFailed | Sweep | Abort


@dataclass(frozen=True)
class Send:
    pass


@dataclass(frozen=True)
class Hold:
    reason: str


@dataclass(frozen=True)
class NewKey:
    attempt: int
    key: str


Gate = Send | Hold | NewKey


def job_gate(obj: DataObject, job: StreamingJob) -> Gate:
    """Whether ``obj`` may be sent to ``job`` now (see the module's table)."""
    if not job.accepting_input:
        why = f" ({job.status_reason})" if job.status_reason else ""
        return Hold(f"waiting for job {job.name} to be InProgress: it is {job.status}{why}")
    if obj.generation is not None and obj.generation != job.generation:
        attempt = obj.attempt + 1
        return NewKey(attempt, dedup_key_id(obj.task_id, obj.job, obj.object_id, attempt))
    return Send()
