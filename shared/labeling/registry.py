"""The registry of streaming labeling jobs, kept by name in DynamoDB.

One streaming job serves every clip of its modality, so a job is created once and found by
name by everything else: the dispatcher (input topic, label attribute), the listener (output
topics), the emulator (which jobs to simulate) and the operator's `lava jobs list`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.dynamo import conditional, from_item, items, to_item, values
from shared.events import JobName
from shared.resources import JOBS

if TYPE_CHECKING:
    from datetime import datetime

    from shared.aws import AwsClients
    from shared.settings import ServiceSettings

Backend = Literal["emulator", "sagemaker", "labelstudio"]

# DescribeLabelingJob's LabelingJobStatus values. A new job is Initializing; send nothing until
# it is InProgress (sms-streaming-create-job). A streaming job stops by itself after 10 days
# without input, or when an operator stops it; sends to it go nowhere then.
INITIALIZING = "Initializing"
IN_PROGRESS = "InProgress"
STOPPING = "Stopping"
STOPPED = "Stopped"
FAILED = "Failed"
COMPLETED = "Completed"
ENDED = frozenset({STOPPING, STOPPED, FAILED, COMPLETED})  # re-create it to go on
STATUSES = (INITIALIZING, IN_PROGRESS, STOPPING, STOPPED, FAILED, COMPLETED)

# The fields that make up a job's configuration: creating a job again with the same values is
# a no-op, with different ones an error.
CONFIG_FIELDS = (
    "job_type",
    "adjusts",
    "backend",
    "label_attribute",
    "audit_label_attribute",
    "task_availability_seconds",
    "task_time_limit_seconds",
    "max_concurrent_tasks",
    "workers_per_object",
)


class StreamingJob(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    name: JobName = Field(description="Logical name, as workflows name it.")
    gt_name: str = Field(description="Name of the labeling job in Ground Truth (namespaced).")
    arn: str
    job_type: str
    task_type: str
    label_attribute: str
    adjusts: JobName | None = None
    audit_label_attribute: str | None = None
    input_topic_arn: str
    output_topic_arn: str
    label_config_uri: str
    backend: Backend
    # A closed set (the API's LabelingJobStatus): an enum in the OpenAPI document; stored and
    # compared as the string DescribeLabelingJob gives.
    status: str = Field(
        IN_PROGRESS,
        description="As DescribeLabelingJob last said.",
        json_schema_extra={"enum": list(STATUSES)},
    )
    status_reason: str | None = None
    generation: int = Field(
        1, ge=1, description="Re-creating an ended job makes a new Ground Truth job: +1."
    )
    created_at: AwareDatetime
    task_availability_seconds: int
    task_time_limit_seconds: int
    max_concurrent_tasks: int
    workers_per_object: int = 1
    counters: dict[str, int] = Field(default_factory=dict)
    archived_at: AwareDatetime | None = Field(
        None,
        description="Archived (stopped, then hidden from the job list; kept for the tasks "
        "that name it). Creating the job again makes it a new generation, not archived.",
    )

    @property
    def accepting_input(self) -> bool:
        return self.status == IN_PROGRESS

    def configuration(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in CONFIG_FIELDS}

    @property
    def gt_queue_name(self) -> str:
        # Ground Truth creates the job's input queue as GroundTruth-<job name lowercased>.
        return f"GroundTruth-{self.gt_name.lower()}"


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
