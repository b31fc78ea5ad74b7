"""The AWS resources a namespace owns, declared once, provisioned idempotently.

`lava stack up`, the test fixtures and the demo provision from these specs; production creates
the same tables from its infrastructure code (deploy/k8s/README.md), named by the namespace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog
from botocore.exceptions import ClientError

from shared.aws import describe_error, error_code
from shared.names import Namespace

if TYPE_CHECKING:
    from shared.aws import AwsClients

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Index:
    name: str
    hash_key: str
    range_key: str | None = None


@dataclass(frozen=True)
class TableSpec:
    """A DynamoDB table (on-demand billing); every key attribute is a string unless listed."""

    name: str
    hash_key: str
    range_key: str | None = None
    indexes: tuple[Index, ...] = ()
    number_attributes: frozenset[str] = frozenset()
    ttl_attribute: str | None = None
    description: str = ""

    def attribute_definitions(self) -> list[dict[str, str]]:
        names = {self.hash_key}
        if self.range_key:
            names.add(self.range_key)
        for index in self.indexes:
            names.add(index.hash_key)
            if index.range_key:
                names.add(index.range_key)
        return [
            {"AttributeName": n, "AttributeType": "N" if n in self.number_attributes else "S"}
            for n in sorted(names)
        ]


def _key_schema(hash_key: str, range_key: str | None) -> list[dict[str, str]]:
    schema = [{"AttributeName": hash_key, "KeyType": "HASH"}]
    if range_key:
        schema.append({"AttributeName": range_key, "KeyType": "RANGE"})
    return schema


class BucketNotOurs(RuntimeError):
    """head_bucket answered 403: someone else owns the name (or it is not readable by us)."""


PROCESSED_EVENTS = TableSpec(
    name="processed-events",
    hash_key="pk",
    ttl_attribute="expires_at",
    description="Idempotency guard: which consumer handled which event id.",
)


JOBS = TableSpec(
    name="jobs",
    hash_key="name",
    description="Streaming labeling jobs by name (registry shared by every component).",
)

GT_EMULATOR_TASKS = TableSpec(
    name="gt-emulator-tasks",
    hash_key="pk",
    indexes=(Index("by-status-due", "status", "due_at"),),
    number_attributes=frozenset({"due_at"}),
    description="The Ground Truth emulator's tasks (local runs only).",
)

TASKS = TableSpec(
    name="tasks",
    hash_key="pk",
    range_key="sk",
    indexes=(
        # Sparse: only items with something due carry due_kind/due_at, so the sweep's cost
        # grows with what is due, not with everything stored.
        Index("by-due", "due_kind", "due_at"),
        Index("by-status", "status_key", "updated_at"),
    ),
    number_attributes=frozenset({"due_at", "updated_at"}),
    description="Annotation tasks, their data objects and clip outcomes (the dispatcher's).",
)

DATASET = TableSpec(
    name="dataset",
    hash_key="clip_id",
    range_key="sk",
    indexes=(
        # The most asked-for filters get an index each (Query, not Scan); other attributes
        # are filtered on top. Only clip entries carry these attributes (sparse indexes).
        Index("by-weather", "weather", "clip_id"),
        Index("by-time-of-day", "time_of_day", "clip_id"),
        Index("by-scene", "scene", "clip_id"),
    ),
    description="The dataset index (one entry per completed clip) and finalized task outputs "
    "waiting for their clip's other workflows.",
)

LABELSTUDIO_IMPORTS = TableSpec(
    name="labelstudio-imports",
    hash_key="pk",
    number_attributes=frozenset({"lease_until"}),
    description="Label Studio backend: a claim per (job, dedup key) so concurrent importers "
    "create one task; the reconciliation watermark per job.",
)

DATASET_EXPORTS = TableSpec(
    name="dataset-exports",
    hash_key="export_id",
    indexes=(
        # Sparse: only unfinished exports carry claimable/lease_until, so a replica looking for
        # exports to run reads those, never the finished ones.
        Index("by-lease", "claimable", "lease_until"),
    ),
    number_attributes=frozenset({"lease_until"}),
    description="Dataset exports the control service runs: request, status, lease, files.",
)

MUTATION_BUDGET = TableSpec(
    name="mutation-budget",
    hash_key="caller",
    ttl_attribute="expires_at",
    description="The control API's mutation budget: one window counter per caller, shared by "
    "every replica.",
)

CONTROL_SESSIONS = TableSpec(
    name="control-sessions",
    hash_key="session",
    ttl_attribute="expires_at",
    description="The dashboard's sign-in sessions, by the SHA-256 of their id (the cookie "
    "holds the id; the table holds nothing a browser could present).",
)

# Every table of a namespace. Services name them through these specs, so the shape a service
# queries and the shape provisioned cannot drift apart.
TABLES: tuple[TableSpec, ...] = (
    PROCESSED_EVENTS,
    JOBS,
    GT_EMULATOR_TASKS,
    TASKS,
    DATASET,
    LABELSTUDIO_IMPORTS,
    DATASET_EXPORTS,
    MUTATION_BUDGET,
    CONTROL_SESSIONS,
)


async def provision(
    aws: AwsClients, names: Namespace, tables: tuple[TableSpec, ...] = TABLES
) -> None:
    """Create the bucket and tables of a namespace if they are missing (safe to repeat)."""
    s3 = await aws.s3()
    try:
        await s3.head_bucket(Bucket=names.bucket)
    except ClientError as exc:
        # Only "missing" means create; a 403 means the name exists and is not ours (or not
        # readable by us): never write into it.
        if error_code(exc) not in {"404", "NoSuchBucket", "NotFound"}:
            raise BucketNotOurs(
                f"bucket {names.bucket} exists but is not ours ({describe_error(exc)}); "
                "choose another name with LAVA_AWS__BUCKET"
            ) from None
        await s3.create_bucket(Bucket=names.bucket)
        log.info("created bucket", bucket=names.bucket)
    dynamodb = await aws.dynamodb()
    existing: set[str] = set()
    paginator = dynamodb.get_paginator("list_tables")
    async for page in paginator.paginate():
        existing.update(page.get("TableNames", []))
    for spec in tables:
        table = names.table(spec.name)
        if table in existing:
            continue
        kwargs: dict[str, Any] = {
            "TableName": table,
            "KeySchema": _key_schema(spec.hash_key, spec.range_key),
            "AttributeDefinitions": spec.attribute_definitions(),
            "BillingMode": "PAY_PER_REQUEST",
        }
        if spec.indexes:
            kwargs["GlobalSecondaryIndexes"] = [
                {
                    "IndexName": index.name,
                    "KeySchema": _key_schema(index.hash_key, index.range_key),
                    "Projection": {"ProjectionType": "ALL"},
                }
                for index in spec.indexes
            ]
        try:
            await dynamodb.create_table(**kwargs)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceInUseException":
                raise
            continue
        waiter = dynamodb.get_waiter("table_exists")
        await waiter.wait(TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        if spec.ttl_attribute:
            await dynamodb.update_time_to_live(
                TableName=table,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": spec.ttl_attribute},
            )
        log.info("created table", table=table)
