"""Input messages -> Label Studio tasks, one task per dedup key.

Label Studio does not de-duplicate imports (handbook), so importing is query-then-create, made
safe for retries, SQS's at-least-once delivery, the dispatcher's same-key re-sends and several
importers at once:

1. claim the (job, key) in DynamoDB with a conditional write and a lease - one importer wins,
   the others leave the message to come back later;
2. ask Label Studio for a task whose ``data.dedup_key`` is the key **and** whose
   ``data.lava_claim`` is the claim's nonce (a crashed importer may have created it already) and
   create it only if there is none. The nonce is random, kept across lease take-overs, and
   exists only from the claim on: a task someone else created for the key - keys are
   predictable - is never adopted, so its annotation can never complete our data object;
3. mark the claim imported: from then on the key is a no-op, as in Ground Truth. The claim
   keeps the input message's seal fields (``shared/seal.py``), so the task's outputs name their
   data object without a lookup, as sealed Ground Truth outputs do.

An adjustment (review) job's task carries the audited job's labels as predictions, region ids =
track ids, so the senior annotator corrects them in place.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

import structlog

from shared.dynamo import from_item, to_item, values
from shared.groundtruth.annotations import parse_seq_label
from shared.groundtruth.job_types import job_type
from shared.groundtruth.messages import dedup_key_of
from shared.labeling.labelstudio.backend import project_id
from shared.labeling.labelstudio.client import LabelStudioClient
from shared.labeling.labelstudio.media import clip_frames, frame_index, task_data
from shared.labeling.labelstudio.tracks import seq_label_to_results
from shared.labeling.streaming_job import StreamingJob
from shared.layout import parse_s3_uri
from shared.resources import LABELSTUDIO_IMPORTS
from shared.seal import seal_fields
from shared.storage import S3Store

if TYPE_CHECKING:
    from shared.aws import AwsClients
    from shared.settings import LabelingSettings

log = structlog.get_logger(__name__)

# The task data field holding the import claim's nonce (random; see the module docstring).
CLAIM_FIELD = "lava_claim"


class Outcome(Enum):
    CREATED = "created"
    DUPLICATE = "duplicate"  # the key has a task already: nothing created
    BUSY = "busy"  # another importer holds the key: try again later
    INVALID = "invalid"  # no dedup key or no source: nothing to import


@dataclass(frozen=True)
class Imported:
    outcome: Outcome
    key: str | None = None
    task_id: int | None = None

    @property
    def done(self) -> bool:
        """May the input message be deleted?"""
        return self.outcome is not Outcome.BUSY


class ImportClaims:
    """The (job, key) claims and per-job reconciliation watermarks (one small table)."""

    def __init__(self, aws: AwsClients, settings: LabelingSettings) -> None:
        self._aws = aws
        self._table = settings.names.table(LABELSTUDIO_IMPORTS.name)
        self._lease = settings.labelstudio.import_lease_seconds

    @staticmethod
    def _pk(job: str, key: str) -> str:
        return f"key#{job}#{key}"

    async def get(self, job: str, key: str) -> dict[str, Any] | None:
        db = await self._aws.dynamodb()
        found = await db.get_item(
            TableName=self._table, Key={"pk": {"S": self._pk(job, key)}}, ConsistentRead=True
        )
        item = found.get("Item")
        return from_item(item) if item else None

    async def claim(self, job: str, key: str) -> str | None:
        """The claim's nonce when this importer holds the (job, key) now, else None. An
        importer taking over an expired lease keeps the nonce (and so the task it marked)."""
        now = time.time()
        db = await self._aws.dynamodb()
        try:
            found = await db.update_item(
                TableName=self._table,
                Key={"pk": {"S": self._pk(job, key)}},
                UpdateExpression="SET #s = :importing, lease_until = :until, "
                "nonce = if_not_exists(nonce, :nonce)",
                ConditionExpression="attribute_not_exists(pk) OR "
                "(#s = :importing AND lease_until < :now)",
                ExpressionAttributeNames={"#s": "state"},
                ExpressionAttributeValues=values(
                    importing="importing",
                    now=now,
                    until=now + self._lease,
                    nonce=secrets.token_hex(16),
                ),
                ReturnValues="ALL_NEW",
            )
        except db.exceptions.ConditionalCheckFailedException:
            return None
        return str(from_item(found["Attributes"])["nonce"])

    async def imported(
        self, job: str, key: str, task_id: int, seal: dict[str, str] | None = None
    ) -> None:
        """Mark the key imported as ``task_id``, keeping its input message's seal fields: its
        outputs then name their data object without a lookup (``shared/seal.py``)."""
        item: dict[str, Any] = {"pk": self._pk(job, key), "state": "imported", "ls_task": task_id}
        db = await self._aws.dynamodb()
        await db.put_item(TableName=self._table, Item=to_item({**(seal or {}), **item}))

    async def watermark(self, job: str) -> str | None:
        db = await self._aws.dynamodb()
        found = await db.get_item(
            TableName=self._table, Key={"pk": {"S": f"watermark#{job}"}}, ConsistentRead=True
        )
        item = found.get("Item")
        return str(from_item(item)["at"]) if item else None

    async def set_watermark(self, job: str, at: str) -> None:
        db = await self._aws.dynamodb()
        await db.put_item(TableName=self._table, Item=to_item({"pk": f"watermark#{job}", "at": at}))


class TaskImporter:
    def __init__(
        self, aws: AwsClients, settings: LabelingSettings, client: LabelStudioClient
    ) -> None:
        self.aws = aws
        self.settings = settings
        self.client = client
        self.claims = ImportClaims(aws, settings)

    async def import_message(self, job: StreamingJob, body: dict[str, Any]) -> Imported:
        key = dedup_key_of(body)
        source = body.get("source-ref")
        if key is None or not isinstance(source, str):
            log.warning("input without a dedup key or source-ref ignored", job=job.name)
            return Imported(Outcome.INVALID)
        claim = await self.claims.get(job.name, key.id)
        if claim is not None and claim.get("state") == "imported":
            return Imported(Outcome.DUPLICATE, key.id, int(claim["ls_task"]))
        nonce = await self.claims.claim(job.name, key.id)
        if nonce is None:
            return Imported(Outcome.BUSY, key.id)
        project = project_id(job)
        existing = await self._ours(project, key.id, nonce)
        outcome = Outcome.DUPLICATE
        if not existing:
            task = await self._task(job, key.id, source, body)
            task["data"][CLAIM_FIELD] = nonce
            await self.client.import_tasks(project, [task])
            existing = await self._ours(project, key.id, nonce)
            outcome = Outcome.CREATED
            if not existing:
                raise RuntimeError(f"Label Studio lost the task just imported for {key.id}")
        task_id = min(int(t["id"]) for t in existing)
        await self.claims.imported(job.name, key.id, task_id, seal_fields(body))
        log.info("task imported", job=job.name, key=key.id, task=task_id, outcome=outcome.value)
        return Imported(outcome, key.id, task_id)

    async def _ours(self, project: int, key: str, nonce: str) -> list[dict[str, Any]]:
        """The key's tasks this claim created (others with the key are ignored, never adopted:
        anyone who can import into the project can create a task with a predictable key)."""
        found = await self.client.tasks_with_key(project, key)
        squatted = [t for t in found if (t.get("data") or {}).get(CLAIM_FIELD) != nonce]
        if squatted:
            log.warning(
                "Label Studio task with our key not created by us ignored",
                project=project,
                key=key,
                tasks=[t.get("id") for t in squatted],
            )
        return [t for t in found if (t.get("data") or {}).get(CLAIM_FIELD) == nonce]

    async def _task(
        self, job: StreamingJob, key: str, source: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        spec = job_type(job.job_type)
        data = await task_data(
            self.aws, spec, key, source, self.settings.labelstudio.media_url_seconds
        )
        task: dict[str, Any] = {"data": data}
        audited = job.audit_label_attribute
        label_uri = body.get(audited) if audited else None
        if isinstance(label_uri, str) and label_uri.startswith("s3://"):
            bucket, label_key = parse_s3_uri(label_uri)
            seq = parse_seq_label(await S3Store(self.aws).get_bytes(bucket, label_key))
            clip = clip_frames(await frame_index(self.aws, source))
            task["predictions"] = [
                {
                    "model_version": job.adjusts or "level-1",
                    "result": seq_label_to_results(spec, seq, clip),
                }
            ]
        return task
