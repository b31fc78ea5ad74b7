"""The clip a task request names, checked when the request is made (not when ingest fails).

It must be in the pipeline's bucket under ``raw/`` (ingest may read nothing else: its IAM
policy, deploy/iam/ingest.json) and exist (HeadObject). Its
clip id is the capture rig's (``shared.ids.clip_id_of``: drive id + content hash): the hash
the rig's upload recorded on the object, else the object's content hashed here (up to
``LAVA_LABELING__HASH_MAX_BYTES``), so one clip has one id whichever way it came in.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.aws import AwsClients
from shared.ids import CONTENT_HASH_METADATA, clip_id_of
from shared.layout import RAW_PREFIX, parse_s3_uri
from shared.settings import LabelingSettings
from shared.storage import S3Store


@dataclass(frozen=True)
class ClipSource:
    uri: str
    error: str | None = None  # why it cannot be a task's clip
    content_sha256: str | None = None

    def clip_id(self, drive_id: str, given: str | None) -> str:
        assert self.content_sha256 is not None or given, "check() found the clip first"
        return given or clip_id_of(drive_id, self.content_sha256 or "")


async def check(
    aws: AwsClients, settings: LabelingSettings, uri: str, hash_needed: bool = True
) -> ClipSource:
    """The clip at ``uri``, or why it cannot be used (``error``)."""
    bucket, key = parse_s3_uri(uri)
    if bucket != settings.names.bucket:
        return ClipSource(uri, f"{uri} is not in the pipeline's bucket {settings.names.bucket}")
    if not key.startswith(RAW_PREFIX):
        return ClipSource(uri, f"{uri} is not under {RAW_PREFIX} (where ingest reads clips)")
    store = S3Store(aws)
    found = await store.head(bucket, key)
    if found is None:
        return ClipSource(uri, f"{uri} does not exist")
    recorded = found.metadata.get(CONTENT_HASH_METADATA)
    if recorded or not hash_needed:
        return ClipSource(uri, content_sha256=recorded)
    limit = settings.labeling.hash_max_bytes
    if found.size > limit:
        return ClipSource(
            uri,
            f"{uri} has no content hash (`lava upload` records one) and is over "
            f"{limit} bytes to hash here; upload it with `lava upload` or name its clipId",
        )
    return ClipSource(uri, content_sha256=await store.content_sha256(bucket, key))
