"""One IAM policy per deployed component, rendered from the AWS operations its code calls.

``deploy/iam/<component>.json`` are these documents with the account, region and namespace
left as ``${AWS_ACCOUNT_ID}``, ``${AWS_REGION}``, ``${LAVA_NAMESPACE}`` (and the Ground Truth
role as ``${LAVA_LABELING__ROLE_ARN}``) for ``envsubst`` or the infrastructure code that creates the
roles. tests/test_deploy_iam.py fails when a document grants more or less than the code calls;
``lava deploy iam --write`` regenerates them, ``lava deploy iam --why COMPONENT OPERATION``
shows the call chain behind a grant.
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
PROVISION = Component(
    "provision",
    entry_points=("lava.commands.stack:provision_cmd", "lava.commands.jobs:create_defaults"),
    excluded=(
        (
            "shared.labeling.backends:EmulatorBackend",
            "the Job creates jobs with --backend sagemaker; the emulator backend is local only",
        ),
    ),
)


def components(root: Path = ROOT) -> list[Component]:
    found = [
        Component(path.parent.name, f"services.{path.parent.name}")
        for path in sorted((root / "services").glob("*/__main__.py"))
    ]
    return [*found, PROVISION]


# The default bucket (settings: <namespace>-<account>-<region>); a deployment that sets
# LAVA_AWS__BUCKET to another name edits these two resources after envsubst.
BUCKET = "arn:aws:s3:::${LAVA_NAMESPACE}-${AWS_ACCOUNT_ID}-${AWS_REGION}"
OBJECTS = "arn:aws:s3:::${LAVA_NAMESPACE}-${AWS_ACCOUNT_ID}-${AWS_REGION}/*"
TOPICS = "arn:aws:sns:${AWS_REGION}:${AWS_ACCOUNT_ID}:${LAVA_NAMESPACE}-*"
QUEUES = "arn:aws:sqs:${AWS_REGION}:${AWS_ACCOUNT_ID}:${LAVA_NAMESPACE}-*"
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


def _resources(kind: str, tables: frozenset[str]) -> list[str] | str:
    if kind == "tables":
        # each table and its indexes (Query on a GSI names the index ARN)
        return [r for t in sorted(tables) for r in (f"{TABLE}{t}", f"{TABLE}{t}/index/*")]
    return {
        "bucket": BUCKET,
        "objects": OBJECTS,
        "topics": TOPICS,
        "queues": QUEUES,
        "labeling-jobs": LABELING_JOBS,
        "*": "*",
    }[kind]


def policy(found: Usage) -> dict[str, Any]:
    by_kind = grants(found)
    statements: list[dict[str, Any]] = []
    for kind in _SIDS:
        if kind not in by_kind:
            continue
        statements.append(
            {
                "Sid": _SIDS[kind],
                "Effect": "Allow",
                "Action": sorted(by_kind[kind]),
                "Resource": _resources(kind, found.tables),
            }
        )
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
    return {"Version": "2012-10-17", "Statement": statements}


def render(component: Component, graph: CallGraph | None = None) -> str:
    return json.dumps(policy(usage(component, graph)), indent=2) + "\n"


def policy_path(component: Component, root: Path = ROOT) -> Path:
    return root / "deploy" / "iam" / f"{component.name}.json"


def actions(document: dict[str, Any]) -> set[str]:
    return {a for s in document["Statement"] for a in s["Action"]}


def write_all(root: Path = ROOT) -> list[Path]:
    graph = CallGraph(root)
    written = []
    for component in components(root):
        path = policy_path(component, root)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(component, graph))
        written.append(path)
    return written
