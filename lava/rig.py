"""The capture rig's uploader: validate, upload the clip (and its sidecar), announce it.

A small API for the rig's own code, and what `lava upload` runs:

>>> await upload_clip(settings, Path("clip.mp4"), drive, clip, fps=1, workflows=["vehicles"])

Attributes are validated against the taxonomy before a byte is sent. The clip id derives from
the drive id and the clip's content hash, so an upload the rig retries is the same clip, not a
second one; an object already in S3 with the same hash is not uploaded again.
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime
from pathlib import Path

import structlog

from shared.aws import AwsClients
from shared.bus import Bus
from shared.events import ClipIngested, Event, derived_event_id, new_event
from shared.ids import CONTENT_HASH_METADATA, clip_id_of
from shared.layout import raw_key, s3_uri, sidecar_key
from shared.settings import Settings
from shared.storage import S3Store
from shared.taxonomy.attributes import ClipAttributes, DriveAttributes

log = structlog.get_logger(__name__)

SHA_METADATA = CONTENT_HASH_METADATA


def content_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def derive_clip_id(drive_id: str, sha256: str) -> str:
    return clip_id_of(drive_id, sha256)


async def upload_clip(
    settings: Settings,
    video: Path,
    drive: DriveAttributes,
    clip: ClipAttributes,
    *,
    fps: float,
    workflows: list[str],
    captured_at: datetime | None = None,
    sidecar: Path | None = None,
    clip_id: str | None = None,
    bus: Bus | None = None,
    aws: AwsClients | None = None,
) -> ClipIngested:
    """Upload a clip and publish ClipIngested (confirmed); returns the published payload."""
    sha = await asyncio.to_thread(content_hash, video)
    resolved_id = clip_id or derive_clip_id(drive.drive_id, sha)
    bucket = settings.names.bucket
    key = raw_key(drive.drive_id, resolved_id, video.suffix.lower() or ".mp4")
    # Validates every value (taxonomy, fps, workflow names) before anything is uploaded.
    payload = ClipIngested(
        clip_id=resolved_id,
        drive=drive,
        clip=clip,
        video_uri=s3_uri(bucket, key),
        fps=fps,
        workflows=workflows,
        captured_at=captured_at,
    )
    await _upload(settings, aws, video, key, sha, sidecar, resolved_id)
    event = new_event(
        payload,
        resolved_id,
        event_id=derived_event_id(resolved_id, "ClipIngested", str(fps), *workflows),
    )
    await _publish(settings, bus, event)
    log.info("clip announced", clip_id=resolved_id, video_uri=payload.video_uri)
    return payload


async def _upload(
    settings: Settings,
    aws: AwsClients | None,
    video: Path,
    key: str,
    sha: str,
    sidecar: Path | None,
    clip_id: str,
) -> None:
    """The clip (unless the same content is there already), then its sidecar if any."""
    bucket = settings.names.bucket
    own_aws = aws is None
    clients = aws or AwsClients(settings)
    try:
        store = S3Store(clients)
        existing = await store.head(bucket, key)
        if existing is not None and existing.metadata.get(SHA_METADATA) == sha:
            log.info("clip already uploaded", clip_id=clip_id)
        else:
            await store.upload_file(
                video, bucket, key, content_type="video/mp4", metadata={SHA_METADATA: sha}
            )
        if sidecar is not None:
            await store.upload_file(
                sidecar, bucket, sidecar_key(clip_id), content_type="application/json"
            )
    finally:
        if own_aws:
            await clients.close()


async def _publish(settings: Settings, bus: Bus | None, event: Event[ClipIngested]) -> None:
    """Publish (confirmed) on ``bus``, or on a connection of its own."""
    own_bus = bus is None
    connection = bus or Bus(settings, client_name="lava-rig")
    if own_bus:
        await connection.connect()
    try:
        await connection.publish(event)
    finally:
        if own_bus:
            await connection.close()
