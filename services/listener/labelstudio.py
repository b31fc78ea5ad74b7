"""The listener's Label Studio side: imports, reconciliation and expiry for every job whose
backend is Label Studio.

- Imports: each Label Studio job's input queue (fed by the dispatcher's input topic, as for
  Ground Truth) is read and every message imported query-then-create (``imports.py``); a
  message is deleted only when its key has a task.
- Reconciliation (every ``LAVA_LABELSTUDIO__RECONCILE_SECONDS``): the tasks annotated since the
  job's watermark (Label Studio's own update time, kept in DynamoDB) are translated and
  published; the watermark moves only after the events are confirmed. Webhooks are lost when
  the listener is down (Label Studio tries once); this loop finds what they missed.
- Expiry: unannotated tasks older than the availability lifetime are reported expired.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog

from shared import tracing
from shared.clock import Clock, SystemClock
from shared.labeling.jobs import JobRegistry
from shared.labeling.labelstudio.backend import project_id
from shared.labeling.labelstudio.client import LabelStudioClient
from shared.labeling.labelstudio.imports import TaskImporter
from shared.labeling.labelstudio.outputs import Outputs, Translated, is_expired
from shared.labeling.streaming_job import StreamingJob
from shared.loops import every, pause
from shared.ports import Publish

if TYPE_CHECKING:
    from shared.aws import AwsClients
    from shared.settings import ListenerSettings

log = structlog.get_logger(__name__)


class LabelStudioSide:
    def __init__(
        self,
        settings: ListenerSettings,
        aws: AwsClients,
        publish: Publish,
        clock: Clock | None = None,
        client: LabelStudioClient | None = None,
        key_checked: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.aws = aws
        self.publish = publish
        self.clock = clock or SystemClock()
        self.client = client or LabelStudioClient(
            settings.labelstudio.url, settings.labelstudio.token.get_secret_value()
        )
        self.registry = JobRegistry(aws, settings)
        self.importer = TaskImporter(aws, settings, self.client)
        self.outputs = Outputs(aws, settings, self.client, self.clock)
        if key_checked is not None:
            self.outputs.keys.checked = key_checked
        self.jobs: dict[str, StreamingJob] = {}
        self._queue_urls: dict[str, str] = {}
        self._handled: dict[int, str] = {}  # task id -> updated_at already published

    async def refresh(self) -> None:
        jobs = await self.registry.list()
        self.jobs = {j.name: j for j in jobs if j.backend == "labelstudio"}

    def job_for_project(self, project: int) -> StreamingJob | None:
        for job in self.jobs.values():
            if project_id(job) == project:
                return job
        return None

    # --- imports ----------------------------------------------------------------------------
    async def import_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.refresh()
                live = [j for j in self.jobs.values() if j.status == "InProgress"]
                if not live:
                    await pause(stop, self.settings.listener.refresh_seconds)
                    continue
                await asyncio.gather(*(self.import_once(job) for job in live))
            except Exception:
                log.exception("Label Studio import round failed; retrying")
                await pause(stop, 1.0)

    async def _queue_url(self, job: StreamingJob) -> str:
        if job.name not in self._queue_urls:
            sqs = await self.aws.sqs()
            found = await sqs.get_queue_url(QueueName=job.gt_queue_name)
            self._queue_urls[job.name] = found["QueueUrl"]
        return self._queue_urls[job.name]

    async def import_once(self, job: StreamingJob) -> int:
        """One receive from the job's input queue; returns how many messages were done."""
        sqs = await self.aws.sqs()
        url = await self._queue_url(job)
        response = await sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=self.settings.listener.wait_seconds,
        )
        done = 0
        for message in response.get("Messages", []):
            try:
                body = json.loads(message["Body"])
                imported = await self.importer.import_message(
                    job, body if isinstance(body, dict) else {}
                )
            except ValueError:
                log.warning("input message is not JSON; dropped", job=job.name)
                imported = None
            except Exception:
                log.exception("import failed; the message comes back", job=job.name)
                continue
            if imported is None or imported.done:
                await sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                done += 1
        return done

    # --- completion and expiry --------------------------------------------------------------
    async def handle_task(
        self, job: StreamingJob, task: dict[str, Any], via: str = "reconciliation"
    ) -> bool:
        """Publish the task's LevelCompleted if it has one; True when published."""
        stamp = str(task.get("updated_at"))
        if self._handled.get(int(task["id"])) == stamp:
            return False
        translated = await self.outputs.completed(job, task)
        if translated is None:
            return False
        await self._publish(job, task, translated)
        self._handled[int(task["id"])] = stamp
        log.info("Label Studio annotation translated", job=job.name, task=task["id"], via=via)
        return True

    async def _publish(
        self, job: StreamingJob, task: dict[str, Any], translated: Translated
    ) -> None:
        """Publish (confirmed) in the clip's trace, continued from the data object's send."""
        attributes = {
            "messaging.system": "labelstudio",
            "messaging.operation.type": "process",
            "messaging.destination.name": job.name,
            "messaging.message.id": str(task.get("id", "")),
        }
        name = f"labelstudio.{job.name} process"
        with tracing.continuing(translated.trace_context, name, attributes, time.time_ns()):
            await self.publish(translated.event)

    async def reconcile_job(self, job: StreamingJob) -> int:
        project = project_id(job)
        published = 0
        since = await self.importer.claims.watermark(job.name)
        newest = since
        for task in await self.client.labeled_since(project, since):
            if await self.handle_task(job, task):
                published += 1
            stamp = str(task.get("updated_at"))
            if newest is None or stamp > newest:
                newest = stamp
        if newest is not None and newest != since:
            await self.importer.claims.set_watermark(job.name, newest)
        for task in await self.client.unlabeled(project):
            if is_expired(task) or not self.outputs.due_to_expire(job, task):
                continue
            translated = await self.outputs.expire(job, task)
            if translated is not None:
                await self._publish(job, task, translated)
                published += 1
                log.info("Label Studio task expired", job=job.name, task=task["id"])
            await self.outputs.mark_expired(task)
        return published

    async def reconcile(self) -> int:
        await self.refresh()
        counts = await asyncio.gather(*(self.reconcile_job(j) for j in self.jobs.values()))
        return sum(counts)

    async def _reconcile_round(self) -> None:
        await self.reconcile()

    async def reconcile_loop(self, stop: asyncio.Event) -> None:
        await every(
            stop,
            self.settings.labelstudio.reconcile_seconds,
            self._reconcile_round,
            "Label Studio reconciliation failed; next round retries",
        )
