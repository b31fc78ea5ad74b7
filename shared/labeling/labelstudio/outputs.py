"""Label Studio tasks -> the pipeline's ``LevelCompleted`` / ``TaskExpired``.

The same translation serves the webhook (fast path) and the reconciliation (the guarantee):
the task is always re-read from Label Studio's API (a webhook's body is never trusted for
labels), its newest annotation converted to the Ground Truth annotation file the rest of the
pipeline reads (``SeqLabel.json`` in S3), and the event id derived from (dedup key, outcome) as
the Ground Truth listener derives it - so duplicates from either path collapse.

A task is believed only as the task its key was imported as: the dedup key in its ``data`` is
the task's own claim, which any Label Studio user who can import tasks can write. So the import
claim recorded for (job, key) by the importer (``imports.py``: task id, in the job's project) must
name this very task, in the job's project; otherwise the completion (or expiry) is *refused*
with the reason in the log (``Label Studio task refused``) - webhook and reconciliation alike.
The claim also keeps the input message's seal (``shared/seal.py``): when it opens, the output
names its data object without the key's lookup, as a sealed Ground Truth output does.

Expiry has no Label Studio equivalent: a task without an annotation after the job's
``TaskAvailabilityLifetimeInSeconds`` is marked expired in its meta (so annotators and the
reconciliation skip it) and reported as Ground Truth reports an expiry; the dispatcher then
re-sends the object under a new key, exactly as for Ground Truth.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog

from shared.events import (
    Event,
    LevelCompleted,
    TaskExpired,
    derived_event_id,
    new_event,
)
from shared.groundtruth import limits
from shared.groundtruth.annotations import SeqLabel
from shared.groundtruth.job_types import JobType, job_type
from shared.labeling.labelstudio.backend import project_id
from shared.labeling.labelstudio.client import KEY_FIELD, LabelStudioClient
from shared.labeling.labelstudio.imports import ImportClaims
from shared.labeling.labelstudio.media import clip_frames, frame_index
from shared.labeling.labelstudio.tracks import to_seq_label
from shared.labeling.streaming_job import StreamingJob
from shared.layout import s3_uri
from shared.quality.workers import from_labelstudio_annotation
from shared.seal import KeyCheck
from shared.storage import S3Store

if TYPE_CHECKING:
    from shared.aws import AwsClients
    from shared.clock import Clock
    from shared.settings import LabelingSettings

log = structlog.get_logger(__name__)

EXPIRED_META = "lava_expired_at"
EXPIRED_REASON = f"{limits.EXPIRED_REASON_PREFIX} (Label Studio: not annotated in time)"


@dataclass(frozen=True)
class Translated:
    """A Label Studio task's event, with the trace context its data object was sent in (the
    clip's trace goes on through the round trip, as for Ground Truth outputs)."""

    event: Event[Any]
    trace_context: dict[str, str] | None


def output_key(job: str, dedup_key: str) -> str:
    digest = hashlib.sha256(dedup_key.encode()).hexdigest()[:24]
    return f"labelstudio-output/{job}/{digest}/SeqLabel.json"


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def is_expired(task: dict[str, Any]) -> bool:
    meta = task.get("meta")
    return isinstance(meta, dict) and EXPIRED_META in meta


def claim_problem(
    job: StreamingJob, task: dict[str, Any], key: str, claim: dict[str, Any] | None
) -> str | None:
    """Why ``task`` may not speak for ``key`` (None: it is the task the key was imported as)."""
    if claim is None or claim.get("state") != "imported":
        return f"key {key[:200]!r} was never imported into job {job.name}"
    if str(claim.get("ls_task")) != str(task.get("id")):
        return (
            f"task {task.get('id')} carries key {key[:200]!r}, which was imported as task "
            f"{claim.get('ls_task')}"
        )
    project = task.get("project")
    if project is not None and str(project) != str(project_id(job)):
        return (
            f"task {task.get('id')} is in project {project}, job {job.name}'s is {project_id(job)}"
        )
    return None


class Outputs:
    def __init__(
        self,
        aws: AwsClients,
        settings: LabelingSettings,
        client: LabelStudioClient,
        clock: Clock,
    ) -> None:
        self.aws = aws
        self.settings = settings
        self.client = client
        self.clock = clock
        # A key's data object: from the seal its import claim kept, else looked up.
        self.keys = KeyCheck.configured(aws, settings)
        self.claims = ImportClaims(aws, settings)
        self.refused = 0

    async def _claimed(
        self, job: StreamingJob, task: dict[str, Any], key: str
    ) -> dict[str, Any] | None:
        """The import claim of ``key`` when ``task`` is the task it was imported as; None
        (the refusal logged) when not."""
        claim = await self.claims.get(job.name, key)
        problem = claim_problem(job, task, key, claim)
        if problem is None:
            return claim
        self.refused += 1
        log.warning(
            "Label Studio task refused: not the task its key was imported as",
            reason=problem,
            job=job.name,
            task=task.get("id"),
            project=task.get("project"),
        )
        return None

    async def completed(self, job: StreamingJob, task: dict[str, Any]) -> Translated | None:
        """The task's LevelCompleted, or None (no annotation, expired, unknown key)."""
        if is_expired(task):
            return None  # a late annotation of an expired task: Ground Truth drops it too
        data = task.get("data") or {}
        key = data.get(KEY_FIELD)
        source = data.get("source_ref")
        if not isinstance(key, str) or not isinstance(source, str):
            log.warning("Label Studio task without dedup key or source", task=task.get("id"))
            return None
        claim = await self._claimed(job, task, key)
        if claim is None:
            return None
        annotations = [
            a for a in await self.client.annotations(int(task["id"])) if not a.get("was_cancelled")
        ]
        if not annotations:
            return None
        known = await self.keys.known(claim, key)
        if known is None:
            log.warning("Label Studio task for no known data object", key=key, job=job.name)
            return None
        latest = max(annotations, key=lambda a: (str(a.get("updated_at")), int(a["id"])))
        spec = job_type(job.job_type)
        clip = clip_frames(await frame_index(self.aws, source))
        seq, problems = to_seq_label(spec, latest.get("result") or [], clip)
        if problems:
            # Carried on: post-processing validates and reports every problem of the labels.
            log.warning("annotation problems", key=key, problems=[p.message for p in problems][:10])
        key_s3 = output_key(job.name, key)
        bucket = self.settings.names.bucket
        await S3Store(self.aws).put_bytes(bucket, key_s3, seq.to_json().encode())
        metadata = output_metadata(spec, job, task, latest, seq)
        adjustment = None
        if job.adjusts is not None and await self._changed(job, task, seq.to_dict(), clip):
            adjustment = "adjusted"  # Ground Truth sets it only when something changed
            metadata["adjustment-status"] = adjustment
        event = new_event(
            LevelCompleted(
                task_id=known.task_id,
                job_name=job.name,
                data_object_id=known.object_id,
                dedup_key=key,
                label_attribute=job.label_attribute,
                label_uri=s3_uri(bucket, key_s3),
                metadata=metadata,
                adjustment_status=adjustment,
                worker=from_labelstudio_annotation(latest)
                if self.settings.labeling.worker_identities
                else None,
            ),
            known.task_id,
            event_id=derived_event_id(key, "completed"),
        )
        return Translated(event, known.trace_context)

    async def _changed(
        self, job: StreamingJob, task: dict[str, Any], labels: dict[str, Any], clip: Any
    ) -> bool:
        predictions = task.get("predictions")
        if not isinstance(predictions, list):
            predictions = await self.client.predictions(int(task["id"]))
        if not predictions:
            return True  # nothing was pre-drawn: everything is the reviewer's
        before, _ = to_seq_label(job_type(job.job_type), predictions[0].get("result") or [], clip)
        return bool(_rounded(before.to_dict()) != _rounded(labels))

    def due_to_expire(self, job: StreamingJob, task: dict[str, Any]) -> bool:
        if is_expired(task) or task.get("total_annotations"):
            return False
        created = parse_time(str(task["created_at"]))
        lifetime = job.task_availability_seconds * self.settings.labelstudio.time_scale
        return self.clock.now() >= created + timedelta(seconds=lifetime)

    async def expire(self, job: StreamingJob, task: dict[str, Any]) -> Translated | None:
        """Report an unannotated task expired (the event first, then the mark: a crash in
        between reports it again under the same event id)."""
        key = (task.get("data") or {}).get(KEY_FIELD)
        if not isinstance(key, str):
            return None
        claim = await self._claimed(job, task, key)
        if claim is None:
            return None
        known = await self.keys.known(claim, key)
        if known is None:
            return None
        event = new_event(
            TaskExpired(
                task_id=known.task_id,
                job_name=job.name,
                data_object_id=known.object_id,
                dedup_key=key,
                failure_reason=EXPIRED_REASON,
            ),
            known.task_id,
            event_id=derived_event_id(key, "expired"),
        )
        return Translated(event, known.trace_context)

    async def mark_expired(self, task: dict[str, Any]) -> None:
        meta = dict(task.get("meta") or {})
        meta[EXPIRED_META] = self.clock.now().isoformat()
        await self.client.set_meta(int(task["id"]), meta)


def output_metadata(
    spec: JobType, job: StreamingJob, task: dict[str, Any], latest: dict[str, Any], seq: SeqLabel
) -> dict[str, Any]:
    """The ``<attr>-metadata`` Ground Truth would write for this output (sms-data-output),
    plus where in Label Studio it came from."""
    present = sorted(
        {b.class_id for f in seq.frames for b in f.boxes}
        | {p.class_id for f in seq.frames for p in f.polylines},
        key=int,
    )
    return {
        # Ground Truth lists only the classes present; so do we.
        "class-map": {cid: spec.labels[int(cid)].label for cid in present},
        "job-name": f"labeling-job/{job.gt_name}",
        "human-annotated": "yes",
        "creation-date": str(latest.get("updated_at") or latest.get("created_at")),
        "type": spec.task_type.output_type,
        "labelstudio": {
            "project": task.get("project"),
            "task": task["id"],
            "annotation": latest["id"],
        },
    }


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value
