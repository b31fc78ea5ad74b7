"""Read who labeled a Ground Truth data object from its worker-response file.

The output message names no worker (sms-data-output); the worker-response file beside the
consolidated label does. A missing or unreadable file is not a reason to hold the labels back:
the output goes on without a worker (logged), and quality reports count it as "unknown".

Where the file is (sms-data-output, "Annotations Directory"): ``worker-response`` "contains a
subdirectory for each iteration, which in turn contains a subdirectory for each data object in
that iteration", holding timestamped JSON files. The file name is not known in advance, so a
data object's folder is listed (1 ListObjectsV2) and its newest file read (1 GetObject). The
iteration folders of a job change rarely, so they are remembered per job and listed again
only when the data object is not in the newest one known: 2 requests per output, not 3.
"""

from __future__ import annotations

import json
from collections import OrderedDict
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
# Jobs whose iteration folders are remembered (a job per registered job and generation).
REMEMBERED_JOBS = 256

_UNREADABLE = (ClientError, ObjectMissing, WorkerResponseMissing, ValidationError, ValueError)

Iteration = tuple[int, str]
"""An iteration folder: its number and its key prefix (``.../iteration-<n>/``)."""


class WorkerResponses:
    """Finds the worker of an output, remembering each job's iteration folders."""

    def __init__(self, aws: AwsClients) -> None:
        self.aws = aws
        # Per worker-response prefix (one job), its iteration folders, newest first.
        self._iterations: OrderedDict[str, list[Iteration]] = OrderedDict()

    async def worker_of(self, label_uri: str) -> WorkerIdentity | None:
        """The worker of the latest response for the data object of ``label_uri``, or None."""
        bucket, key = parse_s3_uri(label_uri)
        location = worker_response_location(key)
        if location is None:
            return None
        prefix, data_object = location
        try:
            latest = await self._latest_response(bucket, prefix, data_object)
            if latest is None:
                log.warning("no worker-response file for an output", label_uri=label_uri)
                return None
            raw = await S3Store(self.aws).get_bytes(bucket, latest, max_bytes=MAX_RESPONSE_BYTES)
            return from_worker_response(json.loads(raw))
        except _UNREADABLE as exc:
            error = str(exc)[:200]
            log.warning("unreadable worker-response file", label_uri=label_uri, error=error)
            return None

    async def _latest_response(self, bucket: str, prefix: str, data_object: str) -> str | None:
        """The newest response file of a data object: in the newest iteration that has the
        data object (file names are timestamps, so the greatest name is the latest answer).

        The newest iteration known is tried first - an output is for a recent data object;
        when it is not there, the iterations are listed again and the others tried, newest
        first (a new iteration began, or the data object is an older one's)."""
        known = self._iterations.get(prefix)
        if known:
            found = await self._newest_file(bucket, known[0], data_object)
            if found is not None:
                if prefix in self._iterations:  # others may have pushed it out meanwhile
                    self._iterations.move_to_end(prefix)
                return found
        listed = await self._list_iterations(bucket, prefix)
        for iteration in listed:
            if known and iteration == known[0]:
                continue  # looked at just now
            found = await self._newest_file(bucket, iteration, data_object)
            if found is not None:
                return found
        return None

    async def _list_iterations(self, bucket: str, prefix: str) -> list[Iteration]:
        s3 = await self.aws.s3()
        listed = await s3.list_objects_v2(Bucket=bucket, Prefix=prefix, Delimiter="/")
        found: list[Iteration] = []
        for common in listed.get("CommonPrefixes", []):
            folder = str(common.get("Prefix", ""))
            number = folder.rstrip("/").rsplit("iteration-", 1)[-1]
            if number.isdigit():
                found.append((int(number), folder))
        found.sort(reverse=True)
        self._iterations[prefix] = found
        self._iterations.move_to_end(prefix)
        while len(self._iterations) > REMEMBERED_JOBS:
            self._iterations.popitem(last=False)
        return found

    async def _newest_file(self, bucket: str, iteration: Iteration, data_object: str) -> str | None:
        s3 = await self.aws.s3()
        files = await s3.list_objects_v2(Bucket=bucket, Prefix=f"{iteration[1]}{data_object}/")
        names = [str(o["Key"]) for o in files.get("Contents", [])]
        return max(names) if names else None
