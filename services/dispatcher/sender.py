"""Sending data objects to streaming jobs: one input message each, batched per input topic."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from shared.groundtruth.messages import DedupKey, input_message
from shared.labeling.streaming_job import StreamingJob
from shared.seal import Sealer
from shared.tasks.model import DataObject

if TYPE_CHECKING:
    from shared.aws import AwsClients

# SNS PublishBatch takes at most 10 entries.
_BATCH = 10


class SendFailed(RuntimeError):
    """SNS refused some entries for a reason that retrying will not fix."""


class SendInterrupted(RuntimeError):
    """SNS failed some entries on its side; the batch may be sent again (keys make it safe)."""


def build_message(
    obj: DataObject,
    key_name: str,
    carry: dict[str, Any] | None = None,
    sealer: Sealer | None = None,
) -> dict[str, Any]:
    """One input message; sealed (``shared/seal.py``) when the dispatcher has seal keys."""
    if sealer is not None:
        carry = {**(carry or {}), **sealer.fields(obj.key, obj.level, obj.trace_context)}
    return input_message(obj.source_ref, DedupKey(key_name, obj.key), carry)


class InputSender:
    def __init__(self, aws: AwsClients, key_name: str, sealer: Sealer | None = None) -> None:
        self._aws = aws
        self.key_name = key_name
        self.sealer = sealer

    async def send(
        self,
        items: Sequence[tuple[DataObject, StreamingJob, dict[str, Any] | None]],
    ) -> None:
        """Publish each object's input message to its job's input topic (batched)."""
        by_topic: dict[str, list[tuple[DataObject, dict[str, Any]]]] = defaultdict(list)
        for obj, job, carry in items:
            message = build_message(obj, self.key_name, carry, self.sealer)
            by_topic[job.input_topic_arn].append((obj, message))
        sns = await self._aws.sns()
        for topic, entries in by_topic.items():
            for start in range(0, len(entries), _BATCH):
                chunk = entries[start : start + _BATCH]
                response = await sns.publish_batch(
                    TopicArn=topic,
                    PublishBatchRequestEntries=[
                        {"Id": str(i), "Message": json.dumps(body)}
                        for i, (_, body) in enumerate(chunk)
                    ],
                )
                failed = response.get("Failed", [])
                if failed:
                    first = failed[0]
                    error = RuntimeError(
                        f"SNS PublishBatch to {topic}: {first.get('Code')}: {first.get('Message')}"
                    )
                    if any(f.get("SenderFault") for f in failed):
                        raise SendFailed(str(error))
                    raise SendInterrupted(str(error))
