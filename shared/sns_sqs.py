"""SQS queues fed by SNS topics: a queue's ARN, and the queue policy that lets topics send.

Ground Truth's input queues (emulated) and the listener's output queue are both such queues;
without the policy, real AWS silently drops what the topic delivers.
"""

from __future__ import annotations

import json
from typing import Any


async def queue_arn(sqs: Any, url: str) -> str:
    attrs = await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return str(attrs["Attributes"]["QueueArn"])


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
