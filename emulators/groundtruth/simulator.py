"""One simulated streaming job: its queue, its workforce and its outputs.

Behaves like Ground Truth at the message level:
- input arrives on the job's own queue (``GroundTruth-<job name lowercased>``), subscribed to
  the job's input topic;
- a dedup key already seen is ignored, whatever the message says;
- at most ``MaxConcurrentTaskCount`` tasks are open; the rest wait in the queue;
- an item that waited longer than the queue retention (14 days, scaled) vanishes silently;
- the simulated workforce starts ``worker_rate`` tasks a second, each taking a latency drawn
  between min and max; a share of tasks is taken by nobody and expires after
  ``TaskAvailabilityLifetimeInSeconds`` (scaled), producing the expired output message;
- finished objects produce the output message on the output topic, with the per-frame
  annotation file in S3 and, beside it, the worker-response file naming the simulated worker
  who drew it (``emulators/workforce.py``: each worker labels with their own noise);
- realistic profile (``realism.py``): input published while the job was Initializing is lost
  (counted as ``lost_initializing``), and a job without input or open tasks for 10 days
  (scaled) is idle - the emulator then stops it, as Ground Truth does.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog
from pydantic import ValidationError

from emulators import workforce
from emulators.groundtruth import labels, realism
from emulators.groundtruth.store import EmulatedTask, EmulatedTaskStore, Fate
from shared.dedup import parse_dedup_key
from shared.groundtruth import limits
from shared.groundtruth.annotations import parse_seq_label
from shared.groundtruth.convert import (
    class_map,
    from_seq_label,
    present_class_map,
    to_seq_label,
)
from shared.groundtruth.errors import GtFormatError
from shared.groundtruth.job_types import TaskType, job_type
from shared.groundtruth.messages import dedup_key_of, unwrap_sns
from shared.labeling.streaming_job import StreamingJob
from shared.layout import ClipLayout, FrameIndex, parse_s3_uri, s3_uri, sidecar_key
from shared.loops import every
from shared.quality.workers import WORKER_RESPONSE_DIR
from shared.storage import ObjectMissing, S3Store
from shared.taxonomy.records import ClipLabels

if TYPE_CHECKING:
    from emulators.settings import EmulatorSettings
    from shared.aws import AwsClients

log = structlog.get_logger(__name__)

# What the emulator counts per job (on /metrics and in the registry):
# received, duplicates_ignored, dropped_by_retention, invalid_input, labeled, expired, failed,
# live_duplicates (two live tasks for one data object: the dispatcher re-keyed a live item).
CountHook = Callable[[str, str, int], None]


def data_object(task: EmulatedTask) -> str:
    """The pipeline's data object a task is for (task, job, object of its dedup key): two gold
    copies of one clip share a sequence but are different data objects."""
    parts = parse_dedup_key(task.dedup_id)
    return f"{parts.task_id}/{parts.job}/{parts.object_id}" if parts else task.source_ref


class EmulatedTaskFailure(Exception):
    """A data object Ground Truth could not process (its output carries the reason)."""


class JobSimulator:
    def __init__(
        self,
        job: StreamingJob,
        aws: AwsClients,
        settings: EmulatorSettings,
        store: EmulatedTaskStore,
        on_count: CountHook | None = None,
    ) -> None:
        self.job = job
        self.aws = aws
        self.settings = settings
        self.store = store
        self.s3 = S3Store(aws)
        self.spec = job_type(job.job_type)
        self.on_count = on_count
        self._open: dict[str, EmulatedTask] = {}
        # data object -> dedup ids of its live tasks (two would mean duplicated work)
        self._live: dict[str, set[str]] = {}
        self._next_start = 0.0
        self._queue_url: str | None = None
        scale = settings.emulator.time_scale
        self.retention = limits.INPUT_QUEUE_RETENTION_SECONDS * scale
        self.availability = job.task_availability_seconds * scale
        self.realistic = settings.emulator.realistic
        # Messages published before the job was InProgress never reached it.
        self.lost_before = settings.emulator.in_progress_at(job).timestamp()
        self.idle_stop = settings.emulator.idle_stop_seconds * scale if self.realistic else 0.0
        self.last_input = time.time()

    # --- bookkeeping ------------------------------------------------------------------------
    def _count(self, name: str, amount: int = 1) -> None:
        if self.on_count is not None:
            self.on_count(self.job.name, name, amount)

    @property
    def open_count(self) -> int:
        return len(self._open)

    def _track(self, task: EmulatedTask) -> None:
        self._open[task.pk] = task
        live = self._live.setdefault(data_object(task), set())
        if live:
            self._count("live_duplicates")
            log.error(
                "two live tasks for one data object",
                job=self.job.name,
                source_ref=task.source_ref,
                keys=sorted(live | {task.dedup_id}),
            )
        live.add(task.dedup_id)

    def _untrack(self, task: EmulatedTask) -> None:
        self._open.pop(task.pk, None)
        self._live.get(data_object(task), set()).discard(task.dedup_id)

    async def start(self) -> None:
        sqs = await self.aws.sqs()
        found = await sqs.get_queue_url(QueueName=self.job.gt_queue_name)
        self._queue_url = found["QueueUrl"]
        for task in await self.store.open_tasks(self.job.gt_name):
            self._track(task)
        if self._open:
            log.info("resumed open tasks", job=self.job.name, open=len(self._open))

    def _rng(self, dedup_id: str, purpose: str) -> random.Random:
        # The job's own name, not its namespaced one: a seed gives the same run in any namespace.
        seed = f"{self.settings.emulator.seed}/{self.job.name}/{dedup_id}/{purpose}"
        return random.Random(hashlib.sha256(seed.encode()).hexdigest())

    # --- intake -----------------------------------------------------------------------------
    async def intake(self, wait_seconds: int = 0) -> int:
        """Take messages while below the concurrency cap; how many were taken.

        The first receive may long-poll for ``wait_seconds`` (returning as soon as input
        arrives), which keeps an idle job from polling its queue many times a second.
        """
        assert self._queue_url is not None
        sqs = await self.aws.sqs()
        taken = 0
        while (room := self.job.max_concurrent_tasks - len(self._open)) > 0:
            response = await sqs.receive_message(
                QueueUrl=self._queue_url,
                MaxNumberOfMessages=min(10, room),
                WaitTimeSeconds=wait_seconds if taken == 0 else 0,
                AttributeNames=["SentTimestamp"],
            )
            messages = response.get("Messages", [])
            if not messages:
                break
            for message in messages:
                await self._take(dict(message))
                await sqs.delete_message(
                    QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"]
                )
                taken += 1
        return taken

    async def _take(self, message: dict[str, Any]) -> None:
        now = time.time()
        sent = int(message.get("Attributes", {}).get("SentTimestamp", "0")) / 1000
        if sent and now - sent > self.retention:
            # SQS retention: the item is gone before anyone saw it; nothing comes out.
            self._count("dropped_by_retention")
            log.info("input dropped by queue retention", job=self.job.name, age=now - sent)
            return
        if self.realistic and sent and sent < self.lost_before:
            # Published while the job was Initializing: Ground Truth never sees it.
            self._count("lost_initializing")
            log.warning("input published while the job was Initializing is lost", job=self.job.name)
            return
        self.last_input = max(self.last_input, sent or now)
        try:
            body = unwrap_sns(message.get("Body", ""))
        except GtFormatError:
            body = {}
        key = dedup_key_of(body)
        source_ref = body.get("source-ref")
        if key is None or not isinstance(source_ref, str):
            self._count("invalid_input")
            log.warning("input without source-ref or dedup key ignored", job=self.job.name)
            return
        self._count("received")
        rng = self._rng(key.id, "fate")
        fate: Fate = "expire" if rng.random() < self.settings.emulator.expire_share else "label"
        if fate == "label":
            start = max(now, self._next_start)
            self._next_start = start + 1.0 / self.settings.emulator.worker_rate
            low = self.settings.emulator.latency_min_seconds
            high = max(low, self.settings.emulator.latency_max_seconds)
            due = start + rng.uniform(low, high)
            if due - now > self.availability:  # the workforce is too slow: it expires
                fate, due = "expire", now + self.availability
        else:
            due = now + self.availability
        task = EmulatedTask(
            gt_name=self.job.gt_name,
            dedup_id=key.id,
            source_ref=source_ref,
            message=body,
            fate=fate,
            due_at=due,
            created_at=now,
        )
        if not await self.store.open(task):
            self._count("duplicates_ignored")
            log.info("duplicate dedup key ignored", job=self.job.name, key=key.id)
            return
        self._track(task)

    # --- completion -------------------------------------------------------------------------
    async def finish_due(self) -> int:
        now = time.time()
        due = sorted((t for t in self._open.values() if t.due_at <= now), key=lambda t: t.due_at)
        for task in due:
            await self._finish(task)
        return len(due)

    async def _finish(self, task: EmulatedTask) -> None:
        if task.fate == "expire":
            output = self._failure(
                task,
                f"{limits.EXPIRED_REASON_PREFIX}. No worker completed the task within "
                f"TaskAvailabilityLifetimeInSeconds ({self.job.task_availability_seconds} s).",
            )
            status = "expired"
        else:
            try:
                output = await self._labeled_output(task)
                status = "labeled"
            except EmulatedTaskFailure as exc:
                output = self._failure(task, f"ClientError: {exc}")
                status = "failed"
        # Publish first: a crash before the task is closed re-publishes (at least once).
        sns = await self.aws.sns()
        await sns.publish(TopicArn=self.job.output_topic_arn, Message=json.dumps(output))
        await self.store.close(task, status)
        self._untrack(task)
        self._count(status)

    def _metadata(self) -> dict[str, Any]:
        return {
            "job-name": f"labeling-job/{self.job.gt_name}",
            "human-annotated": "yes",
            "creation-date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f"),
            "type": TaskType(self.job.task_type).output_type,
        }

    def _failure(self, task: EmulatedTask, reason: str) -> dict[str, Any]:
        out = dict(task.message)
        metadata = (
            realism.expired_metadata(reason)
            if self.realistic
            else {**self._metadata(), "failure-reason": reason}
        )
        out[f"{self.job.label_attribute}-metadata"] = metadata
        return out

    def idle(self) -> bool:
        """No input and nothing open for the (scaled) 10 days: Ground Truth stops the job."""
        quiet = time.time() - self.last_input
        return self.idle_stop > 0 and not self._open and quiet > self.idle_stop

    async def _labeled_output(self, task: EmulatedTask) -> dict[str, Any]:
        width, height, frames, truth = await self._clip(task.source_ref)
        ids = realism.object_ids(task.source_ref) if self.realistic else None
        if ids is not None and truth is not None:
            truth = realism.with_object_ids(truth, ids)
        adjusted: bool | None = None
        workers = self.settings.emulator.workforce
        rng = self._rng(task.dedup_id, "worker")
        worker = workforce.pick(workers, rng, adjusting=bool(self.job.adjusts))
        if self.job.adjusts:
            previous = await self._previous(task)
            drawn, changed = labels.adjust(
                previous,
                truth,
                self.settings.emulator.adjust_fix_share,
                self._rng(task.dedup_id, "adjust"),
            )
            adjusted = changed
        elif truth is not None:
            rng = self._rng(task.dedup_id, "noise")
            drawn = labels.add_noise(truth, worker.noise, rng, width, height)
        else:
            drawn = labels.synthetic(
                self.spec, frames, width, height, self._rng(task.dedup_id, "synthetic")
            )
        seq = to_seq_label(self.spec, drawn, ids)
        if self.realistic:
            share = self.settings.emulator.partial_attribute_share
            seq = realism.partial_attributes(seq, share, self._rng(task.dedup_id, "attributes"))
        object_id = hashlib.sha256(task.dedup_id.encode()).hexdigest()[:16]
        key = (
            f"gt-output/{self.job.gt_name}/annotations/consolidated-annotation/output/"
            f"{object_id}/SeqLabel.json"
        )
        await self.s3.put_json(self.settings.names.bucket, key, seq.to_json())
        await self._worker_response(task, object_id, worker)
        cmap = present_class_map(self.spec, seq) if self.realistic else class_map(self.spec)
        metadata = {**self._metadata(), "class-map": cmap}
        if adjusted and self.realistic:
            metadata["adjustment-status"] = "adjusted"  # only when something changed
        elif adjusted is not None and not self.realistic:
            metadata["adjustment-status"] = "adjusted" if adjusted else "unadjusted"
        out = dict(task.message)
        out[self.job.label_attribute] = s3_uri(self.settings.names.bucket, key)
        out[f"{self.job.label_attribute}-metadata"] = metadata
        return out

    async def _worker_response(
        self, task: EmulatedTask, object_id: str, worker: workforce.SimulatedWorker
    ) -> None:
        """Who did it, where Ground Truth writes it: beside (not in) the output message."""
        submitted = max(task.due_at, task.created_at)
        folder = f"gt-output/{self.job.gt_name}/{WORKER_RESPONSE_DIR}/iteration-1/{object_id}/"
        document = workforce.worker_response(worker, task.created_at, submitted)
        name = workforce.response_file_name(submitted)
        await self.s3.put_json(self.settings.names.bucket, folder + name, document)

    async def _clip(
        self, source_ref: str
    ) -> tuple[int, int, list[labels.SampledFrame], labels.Frames | None]:
        try:
            layout = ClipLayout.from_sequence_uri(source_ref)
            index = FrameIndex.model_validate(
                await self.s3.get_json(layout.bucket, layout.frame_index_key)
            )
        except (ValueError, ObjectMissing, ValidationError) as exc:
            raise EmulatedTaskFailure(f"cannot read the sequence {source_ref}: {exc}") from None
        frames = [labels.SampledFrame(f.frame_no, f.file, f.source_frame) for f in index.frames]
        truth = None
        try:
            raw = await self.s3.get_bytes(layout.bucket, sidecar_key(index.clip_id))
            sidecar = ClipLabels.model_validate_json(raw)
            truth = labels.truth_frames(self.spec, frames, sidecar)
        except ObjectMissing:
            pass
        except ValidationError as exc:
            log.warning("unreadable sidecar; labeling synthetically", error=str(exc)[:200])
        return index.width, index.height, frames, truth

    async def _previous(self, task: EmulatedTask) -> labels.Frames:
        attribute = self.job.audit_label_attribute
        uri = task.message.get(attribute or "")
        meta = task.message.get(f"{attribute}-metadata") or {}
        if not isinstance(uri, str):
            raise EmulatedTaskFailure(f"the input lacks the audited label attribute {attribute}")
        try:
            seq = parse_seq_label(await self.s3.get_bytes(*parse_s3_uri(uri)))
        except (ObjectMissing, GtFormatError, ValueError) as exc:
            raise EmulatedTaskFailure(f"cannot read the audited labels {uri}: {exc}") from None
        given = meta.get("class-map") if isinstance(meta, dict) else None
        # The class map lists only the classes present; ids are the label config's.
        cmap = {**class_map(self.spec), **(given if isinstance(given, dict) else {})}
        frames, _ = from_seq_label(seq, cmap)
        files = {f.frame_no: f.frame for f in seq.frames}
        return [(f.frame_no, files.get(f.frame_no, ""), list(f.objects)) for f in frames]

    # --- the loop ---------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        await self.start()
        await every(
            stop,
            self.settings.emulator.poll_seconds,
            self.step,
            "simulation step failed; retrying",
            job=self.job.name,
        )

    async def step(self) -> None:
        await self.intake(self._idle_wait())
        await self.finish_due()

    def _idle_wait(self) -> int:
        """Whole seconds the next receive may wait without delaying a due task (max 1)."""
        if len(self._open) >= self.job.max_concurrent_tasks:
            return 0
        if not self._open:
            return 1
        next_due = min(t.due_at for t in self._open.values())
        return 1 if next_due - time.time() >= 1 else 0
