"""One IAM policy per deployed component, rendered from the AWS operations its code calls.

``deploy/iam/<component>.json`` are these documents with the account, region and namespace
left as ``${AWS_ACCOUNT_ID}``, ``${AWS_REGION}``, ``${LAVA_NAMESPACE}`` (and the Ground Truth
role as ``${LAVA_LABELING__ROLE_ARN}``) for ``envsubst`` or the infrastructure code that creates the
roles. tests/test_deploy_iam.py fails when a document grants more or less than the code calls;
``lava deploy iam --write`` regenerates them, ``lava deploy iam --why COMPONENT OPERATION``
shows the call chain behind a grant.

S3 grants are per key prefix (read-only where a component only reads); every policy denies
publishing to the output topics and sending to the output queue, which only Ground Truth's
execution role (``deploy/iam/groundtruth-execution-role.json``, rendered here too) may do.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lava.deploy.aws_calls import ROOT, CallGraph, Component, Usage, usage

IAM_DIR = ROOT / "deploy" / "iam"

# Components with a role of their own in production. Every service package is one (found,
# not listed, so a new service needs a policy before CI passes); the provisioning Job is the
# CLI commands it runs (deploy/k8s/base/provision-job.yaml). The Ground Truth emulator
# (emulators/) runs only against the local stand-ins and has no role.
NO_EMULATOR = (
    "shared.labeling.backends:EmulatorBackend",
    "production creates jobs on SageMaker or Label Studio; the emulator backend is local only",
)
PROVISION = Component(
    "provision",
    entry_points=("lava.commands.stack:provision_cmd", "lava.commands.jobs:create_defaults"),
    excluded=(NO_EMULATOR,),
)
# What a service never runs where it has its role (POST /v1/jobs names a backend).
SERVICE_EXCLUSIONS: dict[str, tuple[tuple[str, str], ...]] = {"control": (NO_EMULATOR,)}


def components(root: Path = ROOT) -> list[Component]:
    found = [
        Component(
            path.parent.name,
            f"services.{path.parent.name}",
            excluded=SERVICE_EXCLUSIONS.get(path.parent.name, ()),
        )
        for path in sorted((root / "services").glob("*/__main__.py"))
    ]
    return [*found, PROVISION]


# The default bucket (settings: <namespace>-<account>-<region>); a deployment that sets
# LAVA_AWS__BUCKET to another name edits these two resources after envsubst.
BUCKET = "arn:aws:s3:::${LAVA_NAMESPACE}-${AWS_ACCOUNT_ID}-${AWS_REGION}"
OBJECTS = "arn:aws:s3:::${LAVA_NAMESPACE}-${AWS_ACCOUNT_ID}-${AWS_REGION}/"
TOPICS = "arn:aws:sns:${AWS_REGION}:${AWS_ACCOUNT_ID}:${LAVA_NAMESPACE}-*"
# A job's topics are <ns>-<job>-input / <ns>-<job>-output (shared.labeling.jobs); only the
# labeling service (Ground Truth's execution role) publishes to an output topic.
INPUT_TOPICS = "arn:aws:sns:${AWS_REGION}:${AWS_ACCOUNT_ID}:${LAVA_NAMESPACE}-*-input"
OUTPUT_TOPICS = "arn:aws:sns:${AWS_REGION}:${AWS_ACCOUNT_ID}:${LAVA_NAMESPACE}-*-output"
QUEUES = "arn:aws:sqs:${AWS_REGION}:${AWS_ACCOUNT_ID}:${LAVA_NAMESPACE}-*"
# Ground Truth's own input queue of a job (GroundTruth-<gt job name>): Label Studio jobs read it.
GT_QUEUES = "arn:aws:sqs:${AWS_REGION}:${AWS_ACCOUNT_ID}:GroundTruth-${LAVA_NAMESPACE}-*"
# The listener's queue of every job's outputs: only the output topics send to it.
OUTPUT_QUEUE = "arn:aws:sqs:${AWS_REGION}:${AWS_ACCOUNT_ID}:${LAVA_NAMESPACE}-gt-output"
DEAD_OUTPUT_QUEUE = "arn:aws:sqs:${AWS_REGION}:${AWS_ACCOUNT_ID}:${LAVA_NAMESPACE}-gt-output-dead"

# Where each component reads and writes in the bucket (shared/layout.py), as key prefixes. The
# code analysis finds *that* a component gets or puts objects, not which keys: this table
# says where, and a component that gets (puts) objects must name prefixes it reads (writes).
S3_READS: dict[str, tuple[str, ...]] = {
    "ingest": ("raw/", "clips/"),  # the clip; a finished extraction's frame index
    # Label Studio media, reviews; Ground Truth's worker-response files (gt-output/)
    "listener": ("clips/", "gt-output/", "labelstudio-output/"),
    "dispatcher": ("quality/gold/",),  # the gold clips it mixes in (docs/quality.md)
    # outputs; a gold copy's truth: the gold clip's final labels or sidecar
    "postproc": ("clips/", "gt-output/", "labelstudio-output/", "labels/", "sidecars/"),
    # dataset exports; a task request's clip (HeadObject, its content hash); GET /v1/quality
    "control": ("labels/", "summary/", "raw/", "quality/"),
}
S3_WRITES: dict[str, tuple[str, ...]] = {
    "ingest": ("clips/",),
    "listener": ("labelstudio-output/",),
    "postproc": ("labels/", "summary/", "quality/records/"),
    "control": ("exports/", "label-config/"),  # exports; POST /v1/jobs
    "provision": ("label-config/",),
}
S3_WRITE_ACTIONS = frozenset({"s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"})
TABLE = "arn:aws:dynamodb:${AWS_REGION}:${AWS_ACCOUNT_ID}:table/${LAVA_NAMESPACE}-"
LABELING_JOBS = "arn:aws:sagemaker:${AWS_REGION}:${AWS_ACCOUNT_ID}:labeling-job/${LAVA_NAMESPACE}-*"


@dataclass(frozen=True)
class Grant:
    action: str
    resource: str  # one of the kinds below


# API operation -> the IAM action that authorizes it and the resource it applies to
# (Service Authorization Reference, "Actions, resources, and condition keys" per service).
# An operation missing here fails the test with its name: add it with its action.
GRANTS: dict[tuple[str, str], Grant] = {
    ("s3", "GetObject"): Grant("s3:GetObject", "objects"),
    ("s3", "HeadObject"): Grant("s3:GetObject", "objects"),
    ("s3", "PutObject"): Grant("s3:PutObject", "objects"),
    ("s3", "CreateMultipartUpload"): Grant("s3:PutObject", "objects"),
    ("s3", "UploadPart"): Grant("s3:PutObject", "objects"),
    ("s3", "CompleteMultipartUpload"): Grant("s3:PutObject", "objects"),
    ("s3", "AbortMultipartUpload"): Grant("s3:AbortMultipartUpload", "objects"),
    ("s3", "DeleteObject"): Grant("s3:DeleteObject", "objects"),
    ("s3", "ListObjectsV2"): Grant("s3:ListBucket", "bucket"),
    ("s3", "HeadBucket"): Grant("s3:ListBucket", "bucket"),
    ("s3", "CreateBucket"): Grant("s3:CreateBucket", "bucket"),
    ("s3", "PutBucketPolicy"): Grant("s3:PutBucketPolicy", "bucket"),
    ("s3", "PutBucketOwnershipControls"): Grant("s3:PutBucketOwnershipControls", "bucket"),
    ("s3", "PutPublicAccessBlock"): Grant("s3:PutBucketPublicAccessBlock", "bucket"),
    ("s3", "PutBucketEncryption"): Grant("s3:PutEncryptionConfiguration", "bucket"),
    ("sns", "Publish"): Grant("sns:Publish", "topics"),
    ("sns", "PublishBatch"): Grant("sns:Publish", "topics"),
    ("sns", "CreateTopic"): Grant("sns:CreateTopic", "topics"),
    ("sns", "Subscribe"): Grant("sns:Subscribe", "topics"),
    ("sns", "Unsubscribe"): Grant("sns:Unsubscribe", "topics"),
    ("sns", "GetTopicAttributes"): Grant("sns:GetTopicAttributes", "topics"),
    ("sns", "SetTopicAttributes"): Grant("sns:SetTopicAttributes", "topics"),
    ("sns", "ListSubscriptionsByTopic"): Grant("sns:ListSubscriptionsByTopic", "topics"),
    ("sqs", "CreateQueue"): Grant("sqs:CreateQueue", "queues"),
    ("sqs", "GetQueueUrl"): Grant("sqs:GetQueueUrl", "queues"),
    ("sqs", "GetQueueAttributes"): Grant("sqs:GetQueueAttributes", "queues"),
    ("sqs", "SetQueueAttributes"): Grant("sqs:SetQueueAttributes", "queues"),
    ("sqs", "ReceiveMessage"): Grant("sqs:ReceiveMessage", "queues"),
    ("sqs", "DeleteMessage"): Grant("sqs:DeleteMessage", "queues"),
    ("sqs", "DeleteMessageBatch"): Grant("sqs:DeleteMessage", "queues"),
    ("sqs", "SendMessage"): Grant("sqs:SendMessage", "queues"),
    ("sqs", "SendMessageBatch"): Grant("sqs:SendMessage", "queues"),
    ("sqs", "ChangeMessageVisibility"): Grant("sqs:ChangeMessageVisibility", "queues"),
    ("sqs", "ChangeMessageVisibilityBatch"): Grant("sqs:ChangeMessageVisibility", "queues"),
    ("dynamodb", "GetItem"): Grant("dynamodb:GetItem", "tables"),
    ("dynamodb", "BatchGetItem"): Grant("dynamodb:BatchGetItem", "tables"),
    ("dynamodb", "PutItem"): Grant("dynamodb:PutItem", "tables"),
    ("dynamodb", "UpdateItem"): Grant("dynamodb:UpdateItem", "tables"),
    ("dynamodb", "DeleteItem"): Grant("dynamodb:DeleteItem", "tables"),
    ("dynamodb", "BatchWriteItem"): Grant("dynamodb:BatchWriteItem", "tables"),
    ("dynamodb", "Query"): Grant("dynamodb:Query", "tables"),
    ("dynamodb", "Scan"): Grant("dynamodb:Scan", "tables"),
    ("dynamodb", "TransactWriteItems"): Grant("dynamodb:TransactWriteItems", "tables"),
    ("dynamodb", "DescribeTable"): Grant("dynamodb:DescribeTable", "tables"),
    ("dynamodb", "CreateTable"): Grant("dynamodb:CreateTable", "tables"),
    ("dynamodb", "UpdateTimeToLive"): Grant("dynamodb:UpdateTimeToLive", "tables"),
    # ListTables has no resource-level permission: AWS accepts only "*".
    ("dynamodb", "ListTables"): Grant("dynamodb:ListTables", "*"),
    ("sagemaker", "CreateLabelingJob"): Grant("sagemaker:CreateLabelingJob", "labeling-jobs"),
    ("sagemaker", "DescribeLabelingJob"): Grant("sagemaker:DescribeLabelingJob", "labeling-jobs"),
    ("sagemaker", "StopLabelingJob"): Grant("sagemaker:StopLabelingJob", "labeling-jobs"),
    ("sagemaker", "ListLabelingJobs"): Grant("sagemaker:ListLabelingJobs", "*"),
}

_SIDS = {
    "bucket": "Bucket",
    "objects": "Objects",
    "topics": "Topics",
    "queues": "Queues",
    "tables": "Tables",
    "labeling-jobs": "LabelingJobs",
    "*": "NoResourceLevelPermission",
}


class UnknownOperation(LookupError):
    pass


def grants(found: Usage) -> dict[str, set[str]]:
    """IAM actions by resource kind for what a component calls."""
    by_kind: dict[str, set[str]] = {}
    for service, operation in sorted(found.operations):
        grant = GRANTS.get((service, operation))
        if grant is None:
            raise UnknownOperation(
                f"{service}:{operation} is called but lava/deploy/iam.py GRANTS does not say "
                "which IAM action and resource authorize it"
            )
        by_kind.setdefault(grant.resource, set()).add(grant.action)
    return by_kind


# Actions narrower than their kind's resource: (kind, action) -> resource.
NARROWED: dict[tuple[str, str], str] = {
    ("topics", "sns:Publish"): INPUT_TOPICS,  # the dispatcher sends inputs, never outputs
    ("topics", "sns:Subscribe"): OUTPUT_TOPICS,  # the listener reads outputs
    ("queues", "sqs:SendMessage"): DEAD_OUTPUT_QUEUE,  # the listener refuses to its DLQ
}


def _resources(kind: str, tables: frozenset[str]) -> list[str] | str:
    if kind == "tables":
        # each table and its indexes (Query on a GSI names the index ARN)
        return [r for t in sorted(tables) for r in (f"{TABLE}{t}", f"{TABLE}{t}/index/*")]
    if kind == "queues":
        return [QUEUES, GT_QUEUES]
    return {
        "bucket": BUCKET,
        "topics": TOPICS,
        "labeling-jobs": LABELING_JOBS,
        "*": "*",
    }[kind]


def _object_statements(component: str, actions: set[str]) -> list[dict[str, Any]]:
    """Read-only grants on the prefixes a component reads, write grants where it writes."""
    statements = []
    for sid, wanted, table in (
        ("ReadObjects", actions - S3_WRITE_ACTIONS, S3_READS),
        ("WriteObjects", actions & S3_WRITE_ACTIONS, S3_WRITES),
    ):
        if not wanted:
            continue
        prefixes = table.get(component)
        if not prefixes:
            raise UnknownOperation(
                f"{component} calls {sorted(wanted)} but lava/deploy/iam.py {sid[:-7].upper()}"
                "S of S3 names no prefix for it"
            )
        resource = [f"{OBJECTS}{p}*" for p in prefixes]
        statements.append(
            {"Sid": sid, "Effect": "Allow", "Action": sorted(wanted), "Resource": resource}
        )
    return statements


def _kind_statements(kind: str, actions: set[str], tables: frozenset[str]) -> list[dict[str, Any]]:
    narrowed = {a for a in actions if (kind, a) in NARROWED}
    statements = []
    if actions - narrowed:
        statements.append(
            {
                "Sid": _SIDS[kind],
                "Effect": "Allow",
                "Action": sorted(actions - narrowed),
                "Resource": _resources(kind, tables),
            }
        )
    for action in sorted(narrowed):
        sid = _SIDS[kind] + action.split(":")[1]
        statements.append(
            {
                "Sid": sid,
                "Effect": "Allow",
                "Action": [action],
                "Resource": NARROWED[(kind, action)],
            }
        )
    return statements


# In every component's policy: an explicit Deny no Allow (here or added later) can override.
DENY_OUTPUT_FORGERY: list[dict[str, Any]] = [
    {
        "Sid": "NeverPublishOutputs",
        "Effect": "Deny",
        "Action": ["sns:Publish"],
        "Resource": OUTPUT_TOPICS,
    },
    {
        "Sid": "NeverSendToTheOutputQueue",
        "Effect": "Deny",
        "Action": ["sqs:SendMessage"],
        "Resource": OUTPUT_QUEUE,
    },
]


def policy(found: Usage, component: str = "") -> dict[str, Any]:
    by_kind = grants(found)
    statements: list[dict[str, Any]] = []
    for kind in _SIDS:
        if kind not in by_kind:
            continue
        if kind == "objects":
            statements += _object_statements(component, by_kind[kind])
        else:
            statements += _kind_statements(kind, by_kind[kind], found.tables)
    if "sagemaker:CreateLabelingJob" in by_kind.get("labeling-jobs", set()):
        # CreateLabelingJob hands Ground Truth its execution role (LAVA_LABELING__ROLE_ARN).
        statements.append(
            {
                "Sid": "PassGroundTruthRole",
                "Effect": "Allow",
                "Action": ["iam:PassRole"],
                "Resource": "${LAVA_LABELING__ROLE_ARN}",
                "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            }
        )
    statements += DENY_OUTPUT_FORGERY
    return {"Version": "2012-10-17", "Statement": statements}


def render(component: Component, graph: CallGraph | None = None) -> str:
    return json.dumps(policy(usage(component, graph), component.name), indent=2) + "\n"


def policy_path(component: Component, root: Path = ROOT) -> Path:
    return root / "deploy" / "iam" / f"{component.name}.json"


def actions(document: dict[str, Any]) -> set[str]:
    """What a policy allows (its explicit Denies apart)."""
    return {a for s in document["Statement"] if s["Effect"] == "Allow" for a in s["Action"]}


# The role Ground Truth runs a streaming job as (CreateLabelingJob RoleArn,
# LAVA_LABELING__ROLE_ARN; trusted by sagemaker.amazonaws.com): what the AWS managed policy
# AmazonSageMakerGroundTruthExecution grants (sms-security-permission,
# security-iam-awsmanpol-ground-truth), narrowed to this namespace's bucket prefixes, topics and
# queues. It is the only principal the output topics' policies let publish.
GROUND_TRUTH_ROLE = "groundtruth-execution-role"


def ground_truth_execution_policy() -> dict[str, Any]:
    gt_queue_actions = [
        "sqs:ChangeMessageVisibility",
        "sqs:CreateQueue",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl",
        "sqs:ReceiveMessage",
        "sqs:SendMessage",
        "sqs:SetQueueAttributes",
    ]
    logs = "arn:aws:logs:${AWS_REGION}:${AWS_ACCOUNT_ID}:log-group:/aws/sagemaker/LabelingJobs*"
    statement = [
        ("ReadInputs", ["s3:GetObject"], [f"{OBJECTS}clips/*", f"{OBJECTS}label-config/*"]),
        ("WriteOutputs", ["s3:AbortMultipartUpload", "s3:PutObject"], f"{OBJECTS}gt-output/*"),
        ("Bucket", ["s3:GetBucketLocation", "s3:ListBucket"], BUCKET),
        ("ReadInputTopics", ["sns:Subscribe"], INPUT_TOPICS),
        ("PublishOutputs", ["sns:Publish"], OUTPUT_TOPICS),
        ("OwnInputQueues", gt_queue_actions, GT_QUEUES),
        # AWS's pre-annotation and consolidation Lambdas (API reference, per region)
        (
            "AnnotationLambdas",
            ["lambda:InvokeFunction"],
            [
                "arn:aws:lambda:${AWS_REGION}:*:function:PRE-*",
                "arn:aws:lambda:${AWS_REGION}:*:function:ACS-*",
            ],
        ),
        (
            "Logs",
            [
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:DescribeLogStreams",
                "logs:PutLogEvents",
            ],
            logs,
        ),
    ]
    statements: list[dict[str, Any]] = [
        {"Sid": sid, "Effect": "Allow", "Action": acts, "Resource": res}
        for sid, acts, res in statement
    ]
    statements.append(
        {
            "Sid": "Metrics",
            "Effect": "Allow",
            "Action": ["cloudwatch:PutMetricData"],
            "Resource": "*",
            "Condition": {"StringEquals": {"cloudwatch:namespace": "AWS/SageMaker"}},
        }
    )
    return {"Version": "2012-10-17", "Statement": statements}


def render_ground_truth_role() -> str:
    return json.dumps(ground_truth_execution_policy(), indent=2) + "\n"


def write_all(root: Path = ROOT) -> list[Path]:
    graph = CallGraph(root)
    written = []
    for component in components(root):
        path = policy_path(component, root)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(component, graph))
        written.append(path)
    path = root / "deploy" / "iam" / f"{GROUND_TRUTH_ROLE}.json"
    path.write_text(render_ground_truth_role())
    written.append(path)
    return written
