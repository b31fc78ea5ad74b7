"""Versioned event contracts and their envelope.

Every message on the bus is an :class:`Event` envelope (``event_id``, ``type``, ``version``,
``occurred_at``, ``correlation_id`` = the annotation task id, ``payload``). Payload models are
registered by (type, version); :func:`decode_event` refuses anything else with a reason a person
can act on. ``ClipIngested`` is published by the capture rig: keep its version 1 backward
compatible and add a new version for breaking changes.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Generic, Literal, TypeVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

from shared import bounded_json
from shared.quality.gold_ref import GoldRef
from shared.quality.workers import WorkerIdentity
from shared.taxonomy.attributes import ClipAttributes, DriveAttributes, SafeId

# Bounds of what an event may carry (every string and list is bounded; nested values are at
# most MAX_DEPTH deep and finite). A body above the settings' max_event_bytes is refused before
# it is parsed.
MAX_DEPTH = 16
MAX_TEXT = 2000
MAX_LIST = 64
# The longest failure reason anything carries (ClipFailed, a dead letter's header, a refused
# output's attribute): longer ones are cut with bounded_reason.
MAX_REASON = MAX_TEXT
Text = Annotated[str, StringConstraints(max_length=MAX_TEXT)]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=256)]
KeyText = Annotated[str, StringConstraints(min_length=1, max_length=1024)]
Metadata = Annotated[dict[str, Any], Field(max_length=MAX_LIST)]

S3Uri = Annotated[
    str, StringConstraints(pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,62}/.+$", max_length=1100)
]
WorkflowName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,63}$")]
JobName = Annotated[str, StringConstraints(pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")]

# Where a clip can fail (ClipFailed.stage).
FailureStage = Literal["ingest", "dispatch", "labeling", "postproc"]


def bounded_reason(reason: str) -> str:
    """A failure reason cut to what an event or a header may carry."""
    return reason[:MAX_REASON]


# Fixed namespace so derived event ids are stable across processes and releases.
_EVENT_ID_NAMESPACE = uuid.UUID("7d1c2f1e-7a43-4a58-9f0e-3c1f5b2b8a61")


class InvalidEvent(ValueError):
    """A message that is not a valid event; it goes to the dead-letter queue with this reason."""


class EventPayload(BaseModel):
    """Base of every payload: strict about unknown fields so typos are refused, not ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    EVENT_TYPE: ClassVar[str]
    VERSION: ClassVar[int] = 1


P = TypeVar("P", bound=EventPayload)


class Event(BaseModel, Generic[P]):
    """The envelope every event travels in."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    event_id: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    type: Annotated[str, StringConstraints(max_length=64)]
    version: int
    occurred_at: AwareDatetime
    correlation_id: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    payload: P


# --- payloads ---------------------------------------------------------------------------------


class ClipIngested(EventPayload):
    """A clip is in S3 and should be labeled (published by the capture rig)."""

    EVENT_TYPE: ClassVar[str] = "ClipIngested"

    clip_id: SafeId = Field(description="Deterministic clip id; a retried upload reuses it.")
    drive: DriveAttributes
    clip: ClipAttributes
    video_uri: S3Uri = Field(description="s3://bucket/key of the encoded clip.")
    fps: float = Field(gt=0, le=240, description="Frames per second to extract for labeling.")
    workflows: list[WorkflowName] = Field(
        min_length=1,
        max_length=MAX_LIST,
        description="Labeling workflows to run, by name (see workflows config).",
    )
    captured_at: AwareDatetime | None = Field(None, description="When the rig recorded the clip.")

    @field_validator("workflows")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("workflows must not repeat")
        return value


class ClipFrames(BaseModel):
    """The frames of one clip at one fps, as ingest wrote them; carried as is from FramesReady
    through the annotation task to LabelsFinalized."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    sequence_uri: S3Uri = Field(description="The Ground Truth sequence file.")
    manifest_uri: S3Uri = Field(description="The input manifest (one line per data object).")
    frame_count: int = Field(gt=0, le=1_000_000)
    width: int = Field(gt=0, le=65_536)
    height: int = Field(gt=0, le=65_536)
    fps: float = Field(gt=0, le=240)


class FramesReady(EventPayload):
    """Frames, sequence file and manifest of one annotation task (clip x workflow) are in S3."""

    EVENT_TYPE: ClassVar[str] = "FramesReady"
    VERSION: ClassVar[int] = 2

    task_id: SafeId
    clip_id: SafeId
    workflow: WorkflowName
    clip_workflows: list[WorkflowName] = Field(
        min_length=1,
        max_length=MAX_LIST,
        description="Every workflow of the clip, so post-processing can merge.",
    )
    drive: DriveAttributes
    clip: ClipAttributes
    frames: ClipFrames
    # Set only by the dispatcher's gold mixing (services/dispatcher/gold_mix.py): never by ingest.
    gold: GoldRef | None = None


class LevelCompleted(EventPayload):
    """A streaming job finished one data object (labeling or adjustment)."""

    EVENT_TYPE: ClassVar[str] = "LevelCompleted"

    task_id: SafeId
    job_name: JobName
    data_object_id: ShortText
    dedup_key: KeyText
    label_attribute: ShortText
    label_uri: S3Uri
    metadata: Metadata = Field(default_factory=dict)
    adjustment_status: ShortText | None = None
    # Who labeled it (None when the backend did not say): stored, shown only as a pseudonym
    # below the operator role (shared/quality/workers.py).
    worker: WorkerIdentity | None = None


class TaskExpired(EventPayload):
    """Ground Truth gave a data object back unlabeled: nobody finished it within its
    ``TaskAvailabilityLifetimeInSeconds``. Re-sending under a new key is the remedy."""

    EVENT_TYPE: ClassVar[str] = "TaskExpired"
    VERSION: ClassVar[int] = 2

    task_id: SafeId
    job_name: JobName
    data_object_id: ShortText
    dedup_key: KeyText
    failure_reason: Text


class LevelFailed(EventPayload):
    """Ground Truth gave a data object back with a failure that is not an expiry."""

    EVENT_TYPE: ClassVar[str] = "LevelFailed"

    task_id: SafeId
    job_name: JobName
    data_object_id: ShortText
    dedup_key: KeyText
    failure_reason: Text
    retryable: bool = Field(
        description="A server-side error a re-send under a new key may get past; a "
        "ClientError (bad input) is final."
    )


class JobOutput(BaseModel):
    """The final output of one streaming job for a task."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    job_name: JobName
    job_type: ShortText
    level: int = Field(ge=1, le=MAX_LIST)
    label_attribute: ShortText
    label_uri: S3Uri
    adjusts: JobName | None = None
    metadata: Metadata = Field(default_factory=dict)
    worker: WorkerIdentity | None = None


class LabelsFinalized(EventPayload):
    """Every level of a task is done; post-processing may read the outputs."""

    EVENT_TYPE: ClassVar[str] = "LabelsFinalized"
    VERSION: ClassVar[int] = 2

    task_id: SafeId
    clip_id: SafeId
    workflow: WorkflowName
    clip_workflows: list[WorkflowName] = Field(min_length=1, max_length=MAX_LIST)
    drive: DriveAttributes
    clip: ClipAttributes
    frames: ClipFrames
    outputs: list[JobOutput] = Field(min_length=1, max_length=MAX_LIST)
    # A gold copy: scored against its truth, never indexed (services/postproc/quality.py).
    gold: GoldRef | None = None


class ClipCompleted(EventPayload):
    """A clip's labels and summary are in S3 and indexed (to the outcomes mailbox)."""

    EVENT_TYPE: ClassVar[str] = "ClipCompleted"

    clip_id: SafeId
    labels_uri: S3Uri
    summary_uri: S3Uri
    warnings: int = Field(0, ge=0, le=1_000_000_000)
    task_ids: list[SafeId] | None = Field(
        None,
        max_length=MAX_LIST,
        description="The tasks whose labels were merged (they move to completed); absent "
        "from an older publisher, whose clip record the dispatcher reads for them.",
    )
    tasks_completed: bool = Field(
        False,
        description="The named tasks completed in post-processing's completion transaction, "
        "with the clip record: the dispatcher has nothing to write. False: it moves them.",
    )


class ClipFailed(EventPayload):
    """A clip could not be labeled; ``stage`` and ``reason`` say where and why."""

    EVENT_TYPE: ClassVar[str] = "ClipFailed"

    clip_id: SafeId
    task_id: SafeId | None = None
    stage: FailureStage
    reason: Annotated[str, StringConstraints(min_length=1, max_length=MAX_REASON)]


PAYLOAD_TYPES: tuple[type[EventPayload], ...] = (
    ClipIngested,
    FramesReady,
    LevelCompleted,
    TaskExpired,
    LevelFailed,
    LabelsFinalized,
    ClipCompleted,
    ClipFailed,
)
# Earlier versions still decoded, each with the function that turns it into a current event.
# Empty: no release has shipped an older contract (the v1 forms of FramesReady, TaskExpired
# and LabelsFinalized never left development). A contract changed after a release adds its
# old version here, with the upcaster, for as long as events of it may be in flight.
SUPERSEDED: dict[tuple[str, int], tuple[type[EventPayload], Callable[[Any], EventPayload]]] = {}
_REGISTRY: dict[tuple[str, int], type[EventPayload]] = {
    **{(p.EVENT_TYPE, p.VERSION): p for p in PAYLOAD_TYPES},
    **{key: model for key, (model, _) in SUPERSEDED.items()},
}


def known_event_type(name: object) -> str | None:
    """``name`` if it is a registered event type (safe as a metric label), else None."""
    return name if isinstance(name, str) and any(t == name for (t, _) in _REGISTRY) else None


def payload_type(event_type: str, version: int | None = None) -> type[EventPayload]:
    """The payload model for a type (newest version unless one is named)."""
    versions = sorted(v for (t, v) in _REGISTRY if t == event_type)
    if not versions:
        known = ", ".join(sorted({t for (t, _) in _REGISTRY}))
        raise InvalidEvent(f"unknown event type {event_type!r} (known: {known})")
    chosen = versions[-1] if version is None else version
    model = _REGISTRY.get((event_type, chosen))
    if model is None:
        supported = ", ".join(str(v) for v in versions)
        raise InvalidEvent(
            f"{event_type} version {chosen} is not supported (supported: {supported})"
        )
    return model


def derived_event_id(*parts: str) -> str:
    """A stable event id from what the event is about, so a re-emitted event is a duplicate."""
    return str(uuid.uuid5(_EVENT_ID_NAMESPACE, "/".join(parts)))


def new_event(
    payload: P,
    correlation_id: str,
    *,
    event_id: str | None = None,
    now: Callable[[], datetime] | None = None,
) -> Event[P]:
    occurred_at = now() if now is not None else datetime.now(UTC)
    return Event[P](
        event_id=event_id or str(uuid.uuid4()),
        type=payload.EVENT_TYPE,
        version=payload.VERSION,
        occurred_at=occurred_at,
        correlation_id=correlation_id,
        payload=payload,
    )


def encode_event(event: Event[Any]) -> bytes:
    return event.model_dump_json().encode()


DEFAULT_MAX_EVENT_BYTES = 256 * 1024


def decode_event(
    body: bytes | str | dict[str, Any], *, max_bytes: int = DEFAULT_MAX_EVENT_BYTES
) -> Event[EventPayload]:
    """Parse and validate an envelope and its payload; :class:`InvalidEvent` says what is wrong.

    The body's size is checked before it is parsed; non-finite numbers, nesting deeper than
    ``MAX_DEPTH`` and over-long strings are refused (see :mod:`shared.bounded_json`).
    """
    try:
        if isinstance(body, dict):
            raw = body
            bounded_json.check(raw, what="event", max_depth=MAX_DEPTH, max_string=max_bytes)
        else:
            raw = bounded_json.loads(body, max_bytes=max_bytes, what="event", max_depth=MAX_DEPTH)
    except bounded_json.UnsafeJson as exc:
        raise InvalidEvent(str(exc)) from None
    if not isinstance(raw, dict):
        raise InvalidEvent("an event must be a JSON object")
    event_type = raw.get("type")
    version = raw.get("version")
    if not isinstance(event_type, str):
        raise InvalidEvent("envelope field 'type' is missing or not a string")
    if not isinstance(version, int) or isinstance(version, bool):
        raise InvalidEvent("envelope field 'version' is missing or not an integer")
    model = payload_type(event_type, version)
    try:
        event: Event[EventPayload] = Event[model].model_validate(raw)  # type: ignore[valid-type]
    except ValidationError as exc:
        raise InvalidEvent(f"invalid {event_type} v{version}: {_summarize(exc)}") from None
    superseded = SUPERSEDED.get((event_type, version))
    if superseded is None:
        return event
    try:
        current = superseded[1](event.payload)  # same event id: a duplicate stays a duplicate
    except ValidationError as exc:  # an old form beyond today's bounds
        raise InvalidEvent(f"invalid {event_type} v{version}: {_summarize(exc)}") from None
    return new_event(
        current, event.correlation_id, event_id=event.event_id, now=lambda: event.occurred_at
    )


def _summarize(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "(root)"
        parts.append(f"{where}: {err['msg']}")
    more = len(exc.errors()) - 5
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


def event_json_schema(event_type: str, version: int | None = None) -> dict[str, Any]:
    """JSON Schema of an event's full envelope (what a publisher must send)."""
    model = payload_type(event_type, version)
    schema = Event[model].model_json_schema()  # type: ignore[valid-type]
    schema["title"] = f"{model.EVENT_TYPE} v{model.VERSION}"
    props = schema.get("properties", {})
    props["type"] = {"const": model.EVENT_TYPE, "title": "Type", "type": "string"}
    props["version"] = {"const": model.VERSION, "title": "Version", "type": "integer"}
    return schema
