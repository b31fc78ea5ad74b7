"""The streaming labeling jobs: the registry (by name, in DynamoDB) and the lifecycle -
creating, re-creating, listing, refreshing and stopping them (what `lava jobs` runs).

The model is ``shared/labeling/streaming_job.py``; the dispatcher's view of the jobs is
``services/dispatcher/jobs.py``. Creating a job makes its SNS input and output topics, writes
its label category file to S3, starts it on its backend and registers it. Creating it again
with the same configuration is a no-op; with a different one it is an error that names what
differs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog
from botocore.exceptions import ClientError

from shared.clock import Clock, SystemClock
from shared.dynamo import conditional, from_item, items, to_item, values
from shared.groundtruth import limits
from shared.groundtruth.job_types import job_type
from shared.groundtruth.label_config import label_config
from shared.labeling.backend_kinds import backend_for
from shared.labeling.backends import LabelingBackend
from shared.labeling.streaming_job import (
    ENDED,
    INITIALIZING,
    STOPPED,
    Backend,
    StreamingJob,
)
from shared.layout import label_config_key, s3_uri
from shared.resources import JOBS
from shared.sns_sqs import publish_only_policy, topic_arn
from shared.storage import S3Store
from shared.workflows import WorkflowCatalog

if TYPE_CHECKING:
    from datetime import datetime

    from shared.aws import AwsClients
    from shared.settings import LabelingSettings, ServiceSettings

log = structlog.get_logger(__name__)


class JobConfigError(ValueError):
    pass


# Room for the generation suffix of a re-created job (-g2 ... -g99): a name that fits once must
# still fit when the job is created again.
GENERATION_ROOM = len("-g99")
NAME_BOUNDS = (
    "the Ground Truth job <namespace>-<name>-g<N> at most 63, its input queue "
    "GroundTruth-<job> at most 80, its topics <namespace>-<name>-output at most 256"
)


def max_job_name(namespace: str) -> int:
    """The longest job name whose derived names all fit: the Ground Truth job name, the SQS
    queue Ground Truth creates for it, and its SNS topics (each with the namespace prefix)."""
    physical = len(namespace) + 1 + GENERATION_ROOM  # <ns>-<name>-gNN
    return min(
        limits.MAX_JOB_NAME - physical,
        limits.MAX_QUEUE_NAME - len(limits.GT_QUEUE_PREFIX) - physical,
        limits.MAX_TOPIC_NAME - len(namespace) - len("--output"),
    )


def _generation_is(generation: int) -> str:
    # Jobs registered before generations existed have none: they are generation 1.
    if generation == 1:
        return "(#g = :g OR attribute_not_exists(#g))"
    return "#g = :g"


class JobExists(RuntimeError):
    def __init__(self, existing: StreamingJob) -> None:
        super().__init__(existing.name)
        self.existing = existing


class JobRegistry:
    def __init__(self, aws: AwsClients, settings: ServiceSettings) -> None:
        self._aws = aws
        self._table = settings.names.table(JOBS.name)

    async def get(self, name: str) -> StreamingJob | None:
        db = await self._aws.dynamodb()
        found = await db.get_item(
            TableName=self._table, Key={"name": {"S": name}}, ConsistentRead=True
        )
        item = found.get("Item")
        return StreamingJob.model_validate(from_item(item)) if item else None

    async def list(self, archived: bool = True) -> list[StreamingJob]:
        """Every job, by name (``archived=False``: those not archived)."""
        db = await self._aws.dynamodb()
        found = items(db, "scan", TableName=self._table, ConsistentRead=True)
        jobs = [StreamingJob.model_validate(data) async for data in found]
        return sorted((j for j in jobs if archived or j.archived_at is None), key=lambda j: j.name)

    async def archive(self, name: str, generation: int, at: datetime) -> bool:
        """Mark a job archived; False if it was re-created meanwhile (another generation).
        Never deleted: tasks and late outputs still name it."""
        db = await self._aws.dynamodb()
        return await conditional(
            db.update_item(
                TableName=self._table,
                Key={"name": {"S": name}},
                UpdateExpression="SET archived_at = :a",
                ConditionExpression=f"attribute_exists(#n) AND {_generation_is(generation)}",
                ExpressionAttributeNames={"#n": "name", "#g": "generation"},
                ExpressionAttributeValues=values(a=at.isoformat(), g=generation),
            )
        )

    async def add(self, job: StreamingJob) -> None:
        """Register a new job; :class:`JobExists` if the name is taken."""
        db = await self._aws.dynamodb()
        added = await conditional(
            db.put_item(
                TableName=self._table,
                Item=to_item(job.model_dump(mode="json")),
                ConditionExpression="attribute_not_exists(#n)",
                ExpressionAttributeNames={"#n": "name"},
            )
        )
        if not added:
            existing = await self.get(job.name)
            if existing is None:  # jobs are never deleted; only a consistency fault gets here
                raise RuntimeError(f"job {job.name} exists but cannot be read")
            raise JobExists(existing)

    async def set_status(
        self, name: str, status: str, reason: str | None = None, generation: int | None = None
    ) -> bool:
        """Record a job's status; with ``generation``, only if that generation is still the
        registered one (False otherwise: the job was re-created meanwhile)."""
        db = await self._aws.dynamodb()
        condition = "attribute_exists(#n)"
        vals: dict[str, Any] = {"s": status, "r": reason or ""}
        if generation is not None:
            condition += f" AND {_generation_is(generation)}"
            vals.update(g=generation)
        return await conditional(
            db.update_item(
                TableName=self._table,
                Key={"name": {"S": name}},
                UpdateExpression="SET #s = :s, status_reason = :r",
                ConditionExpression=condition,
                ExpressionAttributeNames={"#s": "status", "#n": "name", "#g": "generation"}
                if generation is not None
                else {"#s": "status", "#n": "name"},
                ExpressionAttributeValues=values(**vals),
            )
        )

    async def replace(self, job: StreamingJob, previous_generation: int) -> bool:
        """Register ``job`` as the next generation of an ended job; False if someone else
        re-created it first."""
        db = await self._aws.dynamodb()
        return await conditional(
            db.put_item(
                TableName=self._table,
                Item=to_item(job.model_dump(mode="json")),
                ConditionExpression=_generation_is(previous_generation),
                ExpressionAttributeNames={"#g": "generation"},
                ExpressionAttributeValues=values(g=previous_generation),
            )
        )

    async def add_counters(self, name: str, increments: dict[str, int]) -> None:
        """Atomically add to a job's counters (the emulator's statistics)."""
        if not increments:
            return
        db = await self._aws.dynamodb()
        names = {"#c": "counters"}
        parts = []
        for i, key in enumerate(sorted(increments)):
            names[f"#k{i}"] = key
            parts.append(f"#c.#k{i} :v{i}")
        # A map attribute must exist before its keys can be added to.
        await db.update_item(
            TableName=self._table,
            Key={"name": {"S": name}},
            UpdateExpression="SET #c = if_not_exists(#c, :empty)",
            ExpressionAttributeNames={"#c": "counters"},
            ExpressionAttributeValues={":empty": {"M": {}}},
        )
        await db.update_item(
            TableName=self._table,
            Key={"name": {"S": name}},
            UpdateExpression="ADD " + ", ".join(parts),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={
                f":v{i}": {"N": str(increments[key])} for i, key in enumerate(sorted(increments))
            },
        )


def output_publisher(backend: Backend, settings: LabelingSettings) -> str:
    """The IAM role that publishes a job's outputs: Ground Truth's (the job's RoleArn), or
    locally the emulator's."""
    if backend == "sagemaker" and settings.labeling.role_arn:
        return settings.labeling.role_arn
    return f"arn:aws:iam::{settings.aws.account}:role/{settings.namespace}-gt-emulator"


@dataclass(frozen=True)
class Created:
    job: StreamingJob
    created: bool  # False: it existed with the same configuration
    warnings: tuple[str, ...] = ()


def task_config_checks(settings: LabelingSettings) -> tuple[list[str], list[str]]:
    """(errors, warnings) of the HumanTaskConfig new video jobs would get."""
    errors, warnings = [], []
    if settings.labeling.workers_per_object != limits.VIDEO_WORKERS_PER_OBJECT:
        errors.append(
            "NumberOfHumanWorkersPerDataObject must be 1 for video frame jobs "
            f"(LAVA_LABELING__WORKERS_PER_OBJECT={settings.labeling.workers_per_object})"
        )
    if settings.labeling.task_time_limit_seconds > limits.MAX_VIDEO_TASK_TIME_LIMIT_SECONDS:
        errors.append(
            "TaskTimeLimitInSeconds may be at most 30 days for video frame jobs "
            f"(LAVA_LABELING__TASK_TIME_LIMIT_SECONDS={settings.labeling.task_time_limit_seconds})"
        )
    if settings.labeling.max_concurrent_tasks > limits.DEFAULT_MAX_CONCURRENT_TASKS:
        warnings.append(
            f"MaxConcurrentTaskCount {settings.labeling.max_concurrent_tasks} is above "
            f"{limits.DEFAULT_MAX_CONCURRENT_TASKS}: Ground Truth needs an AWS service quota "
            "raise for it"
        )
    return errors, warnings


class JobManager:
    def __init__(
        self,
        aws: AwsClients,
        settings: LabelingSettings,
        clock: Clock | None = None,
        backends: dict[str, LabelingBackend] | None = None,
    ) -> None:
        self.aws = aws
        self.settings = settings
        self.registry = JobRegistry(aws, settings)
        self.clock = clock or SystemClock()
        self._backends = backends or {}

    def backend(self, kind: str) -> LabelingBackend:
        if kind not in self._backends:
            self._backends[kind] = backend_for(kind, self.aws, self.settings)
        return self._backends[kind]

    def max_name(self) -> int:
        """The longest job name every name derived from it can hold in this namespace."""
        return max_job_name(self.settings.namespace)

    def gt_name(self, name: str, generation: int = 1) -> str:
        # Ground Truth job names are never reused: a re-created job gets a generation suffix.
        suffix = "" if generation == 1 else f"-g{generation}"
        physical = f"{self.settings.namespace}-{name}{suffix}"
        if not limits.JOB_NAME_PATTERN.match(physical):
            raise JobConfigError(
                f"job name {physical!r} (namespace + name) must match "
                f"{limits.JOB_NAME_PATTERN.pattern} (at most 63 characters)"
            )
        return physical

    async def create(
        self,
        name: str,
        type_name: str,
        *,
        adjusts: str | None = None,
        backend: Backend = "emulator",
    ) -> Created:
        spec = job_type(type_name)
        audited, warnings = await self._check(name, type_name, adjusts)
        s = self.settings
        input_topic, output_topic = await self._topics(name, backend)
        config = label_config(spec, audited.label_attribute if audited else None)
        key = label_config_key(name)
        job = StreamingJob(
            name=name,
            gt_name=self.gt_name(name),
            arn="",
            job_type=type_name,
            task_type=spec.task_type.value,
            label_attribute=f"{name}{limits.LABEL_ATTRIBUTE_SUFFIX}",
            adjusts=adjusts,
            audit_label_attribute=audited.label_attribute if audited else None,
            input_topic_arn=input_topic,
            output_topic_arn=output_topic,
            label_config_uri=s3_uri(s.names.bucket, key),
            backend=backend,
            created_at=self.clock.now(),
            task_availability_seconds=s.labeling.task_availability_seconds,
            task_time_limit_seconds=s.labeling.task_time_limit_seconds,
            max_concurrent_tasks=s.labeling.max_concurrent_tasks,
            workers_per_object=s.labeling.workers_per_object,
        )
        existing = await self.registry.get(name)
        if existing is not None:
            same = self._same_or_error(existing, job)
            if same.status not in ENDED:
                return Created(same, created=False, warnings=tuple(warnings))
            return await self._next_generation(existing, job, config.to_json(), warnings)
        await S3Store(self.aws).put_json(s.names.bucket, key, config.to_json())
        job = await self._start(job)
        try:
            await self.registry.add(job)
        except JobExists as race:
            return Created(self._same_or_error(race.existing, job), created=False)
        log.info("streaming job created", job=name, backend=backend, arn=job.arn)
        return Created(job, created=True, warnings=tuple(warnings))

    async def _check(
        self, name: str, type_name: str, adjusts: str | None
    ) -> tuple[StreamingJob | None, list[str]]:
        """Refuse a job that could not work (JobConfigError); the job it adjusts, if any, and
        the warnings about its task configuration."""
        errors, warnings = task_config_checks(self.settings)
        if errors:
            raise JobConfigError(f"job {name}: " + "; ".join(errors))
        for warning in warnings:
            log.warning("job configuration", job=name, warning=warning)
        bound = self.max_name()
        if len(name) > bound:
            raise JobConfigError(
                f"job name {name!r} has {len(name)} characters; at most {bound} in namespace "
                f"{self.settings.namespace!r} ({NAME_BOUNDS})"
            )
        self.gt_name(name)  # raises when namespace + name is not a valid job name
        label_attribute = f"{name}{limits.LABEL_ATTRIBUTE_SUFFIX}"
        if not limits.LABEL_ATTRIBUTE_PATTERN.match(label_attribute):
            raise JobConfigError(f"label attribute {label_attribute!r} is not valid")
        if adjusts is None:
            return None, warnings
        audited = await self.registry.get(adjusts)
        if audited is None:
            raise JobConfigError(f"job {name} adjusts {adjusts}, which does not exist")
        if audited.job_type != type_name:
            raise JobConfigError(
                f"job {name} ({type_name}) cannot adjust {adjusts} ({audited.job_type})"
            )
        return audited, warnings

    async def _topics(self, name: str, backend: Backend) -> tuple[str, str]:
        """The job's input and output topics (ARNs); only its labeling service may publish
        outputs (the listener refuses other topics)."""
        s = self.settings
        sns = await self.aws.sns()
        input_topic = await sns.create_topic(Name=s.names.topic(f"{name}-input"))
        output_name = s.names.topic(f"{name}-output")
        output_arn = topic_arn(s.aws.region, s.aws.account, output_name)
        # The policy and SHA256 signatures (SNS's default is version 1, SHA1) are set at
        # creation, never later: the policy forbids changing them (no SetTopicAttributes
        # grant anywhere), so a stolen role cannot open the topic to other publishers.
        policy = publish_only_policy(output_arn, output_publisher(backend, s), s.aws.account)
        try:
            output_topic = await sns.create_topic(
                Name=output_name, Attributes={"Policy": policy, "SignatureVersion": "2"}
            )
        except ClientError as exc:  # SNS: the topic exists with other attributes
            raise JobConfigError(
                f"output topic {output_name} exists with another policy or signature version "
                f"(nobody may change them); delete it and create job {name} again: {exc}"
            ) from None
        return input_topic["TopicArn"], output_topic["TopicArn"]

    async def _start(self, job: StreamingJob) -> StreamingJob:
        """Start the job on its backend; it comes back with its ARN and first status."""
        backend = self.backend(job.backend)
        # A new job is Initializing until its backend says otherwise (sms-streaming-create-job).
        job = job.model_copy(update={"arn": await backend.create(job), "status": INITIALIZING})
        status = await backend.describe(job)
        return job.model_copy(update={"status": status.status, "status_reason": status.reason})

    async def _next_generation(
        self, ended: StreamingJob, wanted: StreamingJob, config: str, warnings: list[str]
    ) -> Created:
        """An ended job is created again as a new Ground Truth job (names are never reused);
        the dispatcher re-sends what it holds for it with new keys."""
        generation = ended.generation + 1
        job = wanted.model_copy(
            update={
                "gt_name": self.gt_name(ended.name, generation),
                "generation": generation,
                "counters": {},
            }
        )
        key = label_config_key(ended.name)
        await S3Store(self.aws).put_json(self.settings.names.bucket, key, config)
        job = await self._start(job)
        if not await self.registry.replace(job, ended.generation):
            current = await self.registry.get(ended.name)
            assert current is not None  # jobs are never deleted
            return Created(current, created=False)
        log.info("streaming job re-created", job=job.name, generation=generation, was=ended.status)
        return Created(job, created=True, warnings=tuple(warnings))

    @staticmethod
    def _same_or_error(existing: StreamingJob, wanted: StreamingJob) -> StreamingJob:
        old, new = existing.configuration(), wanted.configuration()
        differences = [f"{k}: {old[k]!r} -> {new[k]!r}" for k in old if old[k] != new[k]]
        if differences:
            raise JobConfigError(
                f"job {existing.name} already exists with a different configuration ("
                + "; ".join(differences)
                + "); stop it and use another name, or keep the existing settings"
            )
        return existing

    async def create_from_catalog(
        self, catalog: WorkflowCatalog, backend: Backend = "emulator"
    ) -> list[Created]:
        """Create every job the workflows name, audited jobs before their adjusters."""
        done: dict[str, Created] = {}

        async def ensure(name: str) -> None:
            if name in done:
                return
            definition = catalog.jobs[name]
            if definition.adjusts:
                await ensure(definition.adjusts)
            done[name] = await self.create(
                name, definition.type, adjusts=definition.adjusts, backend=backend
            )

        for name in catalog.jobs:
            await ensure(name)
        return list(done.values())

    async def refresh(self) -> list[StreamingJob]:
        """Ask each job's backend for its status (DescribeLabelingJob) and record it.

        A new job is Initializing before it is InProgress, and a streaming job ends by itself
        after 10 days without input (Ground Truth's idle rule); this is how the registry - and
        the dispatcher, which holds sends for a job that is not InProgress - finds out.
        """
        jobs = []
        for job in await self.registry.list():
            found = await self.backend(job.backend).describe(job)
            if found.status != job.status and await self.registry.set_status(
                job.name, found.status, found.reason, job.generation
            ):
                log.warning(
                    "job status changed",
                    job=job.name,
                    old=job.status,
                    new=found.status,
                    reason=found.reason,
                )
                job = job.model_copy(update={"status": found.status, "status_reason": found.reason})
            jobs.append(job)
        return jobs

    async def stop(self, name: str) -> StreamingJob:
        job = await self.registry.get(name)
        if job is None:
            raise JobConfigError(f"no job named {name}")
        await self.backend(job.backend).stop(job)
        reason = "stopped by an operator"
        await self.registry.set_status(name, STOPPED, reason, job.generation)
        return job.model_copy(update={"status": STOPPED, "status_reason": reason})

    async def archive(self, name: str) -> StreamingJob:
        """Stop the job unless it has ended, then archive it (hidden from the job list; kept
        for the tasks that name it). Idempotent."""
        job = await self.registry.get(name)
        if job is None:
            raise JobConfigError(f"no job named {name}")
        if job.archived_at is not None:
            return job
        if job.status not in ENDED:
            job = await self.stop(name)
        at = self.clock.now()
        if not await self.registry.archive(name, job.generation, at):
            raise JobConfigError(f"job {name} was created again meanwhile; not archived")
        log.info("streaming job archived", job=name, generation=job.generation)
        return job.model_copy(update={"archived_at": at})
