"""SQS queues fed by SNS topics: a queue's ARN, and the queue policy that lets topics send.

Ground Truth's input queues (emulated) and the listener's output queue are both such queues;
without the policy, real AWS silently drops what the topic delivers.
"""

from __future__ import annotations

import json
from typing import Any


def topic_arn(region: str, account: str, name: str) -> str:
    """A topic's ARN before it exists (its policy names it at creation)."""
    return f"arn:aws:sns:{region}:{account}:{name}"


async def queue_arn(sqs: Any, url: str) -> str:
    attrs = await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return str(attrs["Attributes"]["QueueArn"])


def topics_send_policy(queue: str, topics: list[str], account: str) -> str:
    """The policy (JSON) letting exactly ``topics`` (ARNs, no wildcards) of ``account`` send to
    the queue ``queue``, and denying every other sender - an IAM principal of the account whose
    own policy allows ``sqs:SendMessage`` included (an explicit Deny wins over any Allow; a
    direct send has no ``aws:SourceArn``, which a negated condition counts as not matching)."""
    deny: dict[str, Any] = {
        "Sid": "NobodyElseSends",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "sqs:SendMessage",
        "Resource": queue,
    }
    if topics:
        deny["Condition"] = {"ArnNotEquals": {"aws:SourceArn": topics}}
    statements: list[dict[str, Any]] = [deny]
    if topics:
        statements.append(
            {
                "Sid": "OutputTopicsOfRegisteredJobs",
                "Effect": "Allow",
                "Principal": {"Service": "sns.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue,
                "Condition": {
                    "ArnEquals": {"aws:SourceArn": topics},
                    "StringEquals": {"aws:SourceAccount": account},
                },
            }
        )
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def publish_only_policy(topic: str, publisher: str, account: str) -> str:
    """An SNS topic policy: only ``publisher`` (an IAM role ARN) may publish, every other
    principal is explicitly denied; the owning account may read, subscribe to and delete the
    topic but not publish to it, and nobody may change its policy or attributes after its
    creation (an explicit Deny: a stolen role cannot open it to other publishers; to change it,
    re-create the topic)."""
    manage = [
        "SNS:GetTopicAttributes",
        "SNS:DeleteTopic",
        "SNS:Subscribe",
        "SNS:ListSubscriptionsByTopic",
    ]
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "OwnerManages",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                    "Action": manage,
                    "Resource": topic,
                },
                {
                    "Sid": "OnlyTheLabelingServicePublishes",
                    "Effect": "Allow",
                    "Principal": {"AWS": publisher},
                    "Action": "SNS:Publish",
                    "Resource": topic,
                },
                {
                    "Sid": "FixedAtCreation",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": [
                        "SNS:SetTopicAttributes",
                        "SNS:AddPermission",
                        "SNS:RemovePermission",
                    ],
                    "Resource": topic,
                },
                {
                    # An explicit Deny: no identity policy of the account can grant it back.
                    "Sid": "NobodyElsePublishes",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "SNS:Publish",
                    "Resource": topic,
                    "Condition": {"ArnNotEquals": {"aws:PrincipalArn": publisher}},
                },
            ],
        }
    )


def topic_send_policy(queue: str, topics: str) -> str:
    """The policy (JSON) letting SNS topics whose ARN matches ``topics`` (``*`` allowed) send
    to the queue with ARN ``queue``."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "sns.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": queue,
                    "Condition": {"ArnLike": {"aws:SourceArn": topics}},
                }
            ],
        }
    )
