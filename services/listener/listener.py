"""Ground Truth output -> LevelCompleted / TaskExpired / LevelFailed.

One SQS queue receives the output topic of every registered streaming job (the SNS envelope
names the topic, hence the job); a redrive policy moves a message that keeps failing to a
dead-letter queue. Each output is parsed with the shared Ground Truth parsers, its dedup key
mapped to the data object it was sent for, and translated:

- completed / adjusted output -> ``LevelCompleted`` (label attribute, label URI, metadata);
- expired -> ``TaskExpired`` (re-sending with a new key helps);
- failed for another reason -> ``LevelFailed`` with ``retryable`` true only when re-sending can
  help (a server-side error), false for a client error (the input itself is wrong), which the
  dispatcher turns into a failed task.

SQS messages are deleted only after the broker confirmed the events (in batches). A crash
between the two means a duplicate event, which the dispatcher tolerates. Unparseable messages
and unknown keys are logged, counted and left to the redrive policy; they never stop the loop.
Outputs that fail a trust check (``services/listener/trust.py``: not a notification SNS signed,
unregistered topic, key of another job, label URI outside the job's output prefix, unbounded
JSON) are *refused*: moved to the dead-letter queue at once with the reason.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog

from services.listener import trust
from services.listener.deletes import PendingDeletes
from services.listener.sns_verifier import (
    CertificateUnavailable,
    SnsVerifier,
    UntrustedSignature,
    https_fetch,
)
from services.listener.worker_responses import WorkerResponses
from shared import tracing
from shared.dedup import KnownObject
from shared.events import (
    Event,
    EventPayload,
    LevelCompleted,
    LevelFailed,
    TaskExpired,
    bounded_reason,
    derived_event_id,
    new_event,
)
from shared.groundtruth.errors import GtFormatError
from shared.groundtruth.messages import OutputMessage, OutputStatus, parse_output_message
from shared.labeling.jobs import JobRegistry
from shared.labeling.streaming_job import StreamingJob
from shared.loops import every, pause
from shared.ports import Publish
from shared.quality.workers import WorkerIdentity
from shared.seal import KeyCheck
from shared.settings import ListenerSettings
from shared.sns_sqs import queue_arn, topics_send_policy

if TYPE_CHECKING:
    from shared.aws import AwsClients

log = structlog.get_logger(__name__)


# An output that passed the trust checks, with the data object and job it is for.
CheckedOutput = tuple[OutputMessage, KnownObject, StreamingJob]


def retryable_failure(reason: str) -> bool:
    """Can sending the object again help? Not when Ground Truth blames the input."""
    return not reason.strip().startswith("ClientError")


@dataclass
class Metrics:
    """Hooks the service wires to Prometheus (all optional)."""

    received: Callable[[int], None] = lambda n: None
    translated: Callable[[str], None] = lambda kind: None
    unparseable: Callable[[], None] = lambda: None
    unknown_key: Callable[[], None] = lambda: None
    refused: Callable[[], None] = lambda: None
    key_checked: Callable[[str], None] = lambda how: None  # "seal" or "lookup"
    latency: Callable[[float], None] = lambda seconds: None


class OutputQueue:
    """The listener's SQS queue and its dead-letter queue, subscribed to job output topics."""

    def __init__(self, aws: AwsClients, settings: ListenerSettings) -> None:
        self.aws = aws
        self.settings = settings
        self.name = settings.names.queue_url_name("gt-output")
        self.dead_name = settings.names.queue_url_name("gt-output-dead")
        self.url = ""
        self.arn = ""
        self.dead_url = ""
        self._subscribed: set[str] = set()

    async def ensure(self) -> None:
        sqs = await self.aws.sqs()
        dead = await sqs.create_queue(QueueName=self.dead_name)
        self.dead_url = dead["QueueUrl"]
        dead_arn = await queue_arn(sqs, self.dead_url)
        redrive = {
            "deadLetterTargetArn": dead_arn,
            "maxReceiveCount": str(self.settings.listener.max_receive_count),
        }
        created = await sqs.create_queue(QueueName=self.name)
        self.url = created["QueueUrl"]
        self.arn = await queue_arn(sqs, self.url)
        await sqs.set_queue_attributes(
            QueueUrl=self.url,
            Attributes={
                "RedrivePolicy": json.dumps(redrive),
                "VisibilityTimeout": str(self.settings.listener.visibility_timeout_seconds),
                "Policy": topics_send_policy(self.arn, [], self.settings.aws.account),
            },
        )

    async def admit(self, topics: list[str]) -> None:
        """The queue policy: only these exact topics, from our account, may send."""
        sqs = await self.aws.sqs()
        policy = topics_send_policy(self.arn, sorted(topics), self.settings.aws.account)
        await sqs.set_queue_attributes(QueueUrl=self.url, Attributes={"Policy": policy})

    async def refuse(self, message: Any, reason: str) -> None:
        """Move a message to the dead-letter queue now, with its reason (then delete it)."""
        sqs = await self.aws.sqs()
        await sqs.send_message(
            QueueUrl=self.dead_url,
            MessageBody=str(message.get("Body", ""))[: trust.MAX_OUTPUT_BYTES] or "(empty)",
            MessageAttributes={
                trust.REASON_ATTRIBUTE: {
                    "DataType": "String",
                    "StringValue": bounded_reason(reason),
                }
            },
        )
        await sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])

    async def subscribe(self, jobs: list[StreamingJob]) -> list[str]:
        """Subscribe to the output topics not yet subscribed; the new ones."""
        sns = await self.aws.sns()
        added = []
        for job in jobs:
            if job.output_topic_arn in self._subscribed:
                continue
            # The envelope (not raw delivery) keeps TopicArn: it names the job.
            await sns.subscribe(TopicArn=job.output_topic_arn, Protocol="sqs", Endpoint=self.arn)
            self._subscribed.add(job.output_topic_arn)
            added.append(job.name)
        return added


class Listener:
    def __init__(
        self,
        settings: ListenerSettings,
        aws: AwsClients,
        publish: Publish,
        metrics: Metrics | None = None,
        verifier: SnsVerifier | None = None,
    ) -> None:
        self.settings = settings
        self.aws = aws
        self.publish = publish
        self.metrics = metrics or Metrics()
        self.verifier = verifier or sns_verifier(settings)
        self.queue = OutputQueue(aws, settings)
        self.registry = JobRegistry(aws, settings)
        self.keys = KeyCheck.configured(aws, settings, self.metrics.key_checked)
        self.workers = WorkerResponses(aws)
        # Handled outputs' deletes, shared between receives while the loop runs (deletes.py).
        self.deletes = PendingDeletes(self.delete, settings.listener.delete_wait_seconds)
        self._by_topic: dict[str, StreamingJob] = {}

    async def start(self) -> None:
        await self.queue.ensure()
        await self.refresh()

    async def refresh(self) -> None:
        if not self.queue.url:
            return  # not started yet
        jobs = [job for job in await self.registry.list() if self._own_topic(job)]
        self._by_topic = {j.output_topic_arn: j for j in jobs}
        added = await self.queue.subscribe(jobs)
        if added:
            await self.queue.admit(list(self._by_topic))
            log.info("subscribed to job outputs", jobs=added)

    def _own_topic(self, job: StreamingJob) -> bool:
        s = self.settings
        name = s.names.topic(f"{job.name}-output")
        if trust.own_output_topic(job, s.aws.region, s.aws.account, name):
            return True
        log.warning(
            "job's output topic is not its own; not listened to",
            job=job.name,
            topic=job.output_topic_arn,
            expected=name,
        )
        return False

    async def refresh_loop(self, stop: asyncio.Event) -> None:
        seconds = self.settings.listener.refresh_seconds
        await pause(stop, seconds)  # start() refreshed just now
        await every(
            stop, seconds, self.refresh, "refreshing the job list failed; next round retries"
        )

    async def receive_loop(self, stop: asyncio.Event) -> None:
        sqs = await self.aws.sqs()
        while not stop.is_set():
            try:
                response = await sqs.receive_message(
                    QueueUrl=self.queue.url,
                    MaxNumberOfMessages=10,
                    WaitTimeSeconds=self.settings.listener.wait_seconds,
                    AttributeNames=["ApproximateReceiveCount"],
                )
            except Exception:
                log.exception("receive failed; retrying")
                await pause(stop, 1.0)
                continue
            messages = response.get("Messages", [])
            if messages:
                await self.handle_batch(messages)

    async def handle_batch(self, messages: list[Any]) -> int:
        """Translate, publish (confirmed), then delete (at once, or with others: deletes.py);
        returns how many were handled."""
        received_at = time.monotonic()
        self.metrics.received(len(messages))
        done: list[dict[str, str]] = []

        async def one(message: Any) -> None:
            started_ns = time.time_ns()
            checked = await self._check(message)
            if checked is None:
                return
            output, known, job = checked
            worker = await self.worker_of(output)
            event = output_event(output, known, job.name, worker)
            # The clip's trace goes on: a span under the send's context, from receipt on.
            with tracing.continuing(
                known.trace_context,
                f"{self.queue.name} process",
                self._span_of(message),
                started_ns,
            ):
                await self.publish(event)  # waits for the broker's confirm
            self.metrics.translated(event.type)
            self.metrics.latency(time.monotonic() - received_at)
            done.append({"Id": message["MessageId"], "ReceiptHandle": message["ReceiptHandle"]})

        results = await asyncio.gather(*(one(m) for m in messages), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                log.error(
                    "could not publish an output's event; SQS will offer it again",
                    error=repr(result),
                )
        if done:
            await self.deletes.add(done)
        return len(done)

    def _span_of(self, message: Any) -> dict[str, Any]:
        """The messaging attributes of an output received from SQS."""
        return {
            "messaging.system": "aws_sqs",
            "messaging.operation.name": "process",
            "messaging.operation.type": "process",
            "messaging.destination.name": self.queue.name,
            "messaging.message.id": str(message.get("MessageId", "")),
        }

    async def _refuse(self, message: Any, reason: str) -> None:
        self.metrics.refused()
        log.warning("output refused; moved to the dead-letter queue", reason=reason)
        await self.queue.refuse(message, reason)

    async def delete(self, entries: list[dict[str, str]]) -> None:
        sqs = await self.aws.sqs()
        response = await sqs.delete_message_batch(QueueUrl=self.queue.url, Entries=entries)  # type: ignore[arg-type]
        for failed in response.get("Failed", []):
            log.warning("could not delete an output (it will come again)", error=failed)

    async def translate(self, message: Any) -> Event[EventPayload] | None:
        """The event an output message means; None when it was refused (dead-lettered) or is
        left to the redrive policy (unparseable, or for no known data object)."""
        checked = await self._check(message)
        if checked is None:
            return None
        output, known, job = checked
        worker = await self.worker_of(output)
        return output_event(output, known, job.name, worker)

    async def worker_of(self, output: OutputMessage) -> WorkerIdentity | None:
        """Who made a completed output (its worker-response file); None for other outputs,
        and for every output where workers are not tracked (LAVA_LABELING__WORKER_IDENTITIES)."""
        if output.label_uri is None or not self.settings.labeling.worker_identities:
            return None
        return await self.workers.worker_of(output.label_uri)

    async def _check(self, message: Any) -> CheckedOutput | None:
        """The output of a message checked against the trust rules: from a registered job's
        topic, parseable, for a known data object of that job, its labels where they belong."""
        receives = message.get("Attributes", {}).get("ApproximateReceiveCount", "1")
        try:
            envelope = trust.open_envelope(message.get("Body", ""))
            topic = envelope.topic
            if topic not in self._by_topic:
                await self.refresh()  # a job registered since the last refresh
            job = trust.check_job(topic, self._by_topic.get(topic))
            await self.verifier.verify(envelope.signed)
        except trust.Refused as exc:
            await self._refuse(message, exc.reason)
            return None
        except UntrustedSignature as exc:
            await self._refuse(message, str(exc))
            return None
        except CertificateUnavailable as exc:
            log.warning("SNS certificate unavailable; output left for a retry", error=str(exc))
            return None
        try:
            output = parse_output_message(envelope.body, job.label_attribute)
        except GtFormatError as exc:
            self.metrics.unparseable()
            log.warning(
                "unparseable output left to the redrive policy",
                reason=str(exc),
                topic=topic,
                receives=receives,
            )
            return None
        key = output.dedup_key
        known = await self.keys.known(output.body, key.id) if key is not None else None
        if key is None or known is None:
            self.metrics.unknown_key()
            log.warning(
                "output for no known data object left to the redrive policy",
                key=key.id if key else None,
                topic=topic,
                receives=receives,
            )
            return None
        if output.label_uri is not None and output.job_name != job.gt_name:
            await self.refresh()  # the job was re-created (a new generation) since the last look
            job = self._by_topic.get(topic, job)
        try:
            trust.check_key_job(job, known.job)
            if output.label_uri is not None:
                trust.check_job_name(job, output.job_name)
                trust.check_label_uri(output.label_uri, self.settings.names.bucket, job)
        except trust.Refused as exc:
            await self._refuse(message, exc.reason)
            return None
        return output, known, job


def sns_verifier(settings: ListenerSettings) -> SnsVerifier:
    """The verifier the settings ask for: a trusted certificate, or SNS's fetched over HTTPS."""
    timeout = settings.listener.sns_cert_fetch_timeout_seconds
    return SnsVerifier(
        settings.aws.region,
        settings.sns_trust_store,
        lambda url: https_fetch(url, timeout),
    )


def output_event(
    output: OutputMessage, known: KnownObject, job_name: str, worker: WorkerIdentity | None = None
) -> Event[EventPayload]:
    """LevelCompleted, TaskExpired or LevelFailed for a checked output, with an id derived
    from its key and status (a redelivered output makes the same event)."""
    key = output.dedup_key
    assert key is not None  # checked: the output names a known data object
    event_id = derived_event_id(key.id, output.status.value)
    returned: EventPayload
    if output.status is OutputStatus.COMPLETED:
        assert output.label_uri is not None
        returned = LevelCompleted(
            task_id=known.task_id,
            job_name=job_name,
            data_object_id=known.object_id,
            dedup_key=key.id,
            label_attribute=output.label_attribute,
            label_uri=output.label_uri,
            metadata=output.metadata,
            adjustment_status=output.adjustment_status,
            worker=worker,
        )
        return new_event(returned, known.task_id, event_id=event_id)
    reason = output.failure_reason or "no failure-reason given"
    if output.status is OutputStatus.EXPIRED:
        returned = TaskExpired(
            task_id=known.task_id,
            job_name=job_name,
            data_object_id=known.object_id,
            dedup_key=key.id,
            failure_reason=reason,
        )
    else:
        returned = LevelFailed(
            task_id=known.task_id,
            job_name=job_name,
            data_object_id=known.object_id,
            dedup_key=key.id,
            failure_reason=reason,
            retryable=retryable_failure(reason),
        )
    return new_event(returned, known.task_id, event_id=event_id)
