"""Read who labeled a Ground Truth data object from its worker-response file.

The output message names no worker (sms-data-output); the worker-response file beside the
consolidated label does. A missing or unreadable file is not a reason to hold the labels back:
the output goes on without a worker (logged), and quality reports count it as "unknown".
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import structlog
from botocore.exceptions import ClientError
from pydantic import ValidationError

from shared.layout import parse_s3_uri
from shared.quality.workers import (
    WorkerIdentity,
    WorkerResponseMissing,
    from_worker_response,
    worker_response_location,
)
from shared.storage import ObjectMissing, S3Store

if TYPE_CHECKING:
    from shared.aws import AwsClients

log = structlog.get_logger(__name__)

# A worker-response file is a few hundred bytes; anything far larger is not one.
MAX_RESPONSE_BYTES = 256 * 1024


async def worker_of(aws: AwsClients, label_uri: str) -> WorkerIdentity | None:
    """The worker of the latest response for the data object of ``label_uri``, or None."""
    bucket, key = parse_s3_uri(label_uri)
    location = worker_response_location(key)
    if location is None:
        return None
    prefix, data_object = location
    try:
        latest = await _latest_response(aws, bucket, prefix, data_object)
        if latest is None:
            log.warning("no worker-response file for an output", label_uri=label_uri)
            return None
        raw = await S3Store(aws).get_bytes(bucket, latest, max_bytes=MAX_RESPONSE_BYTES)
        return from_worker_response(json.loads(raw))
    except (ClientError, ObjectMissing, WorkerResponseMissing, ValidationError, ValueError) as exc:
        log.warning("unreadable worker-response file", label_uri=label_uri, error=str(exc)[:200])
        return None


async def _latest_response(
    aws: AwsClients, bucket: str, prefix: str, data_object: str
) -> str | None:
    """The newest response file of a data object over every iteration: file names are
    timestamps, so the greatest (iteration, name) is the latest answer."""
    s3 = await aws.s3()
    iterations = await s3.list_objects_v2(Bucket=bucket, Prefix=prefix, Delimiter="/")
    found: list[tuple[int, str]] = []
    for common in iterations.get("CommonPrefixes", []):
        folder = str(common.get("Prefix", ""))
        number = folder.rstrip("/").rsplit("iteration-", 1)[-1]
        if not number.isdigit():
            continue
        files = await s3.list_objects_v2(Bucket=bucket, Prefix=f"{folder}{data_object}/")
        found += [(int(number), str(o["Key"])) for o in files.get("Contents", [])]
    return max(found)[1] if found else None
