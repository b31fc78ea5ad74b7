"""Ids: the one format of every id, and ids derived from other ids (always valid)."""

from __future__ import annotations

import hashlib

# Every id (drive, clip, task) ends up in S3 keys, dedup-key ids and file names: a safe
# character set, at most MAX_ID characters. SafeId (shared.taxonomy.attributes) checks it in
# events; the control API's paths and requests check it with ID_PATTERN.
MAX_ID = 128
ID_PATTERN = rf"^[A-Za-z0-9][A-Za-z0-9._-]{{0,{MAX_ID - 1}}}$"


# The S3 user metadata (x-amz-meta-lava-sha256) holding a clip's content hash: written by the
# capture rig's upload, read by task requests that name the object (the same clip id either way).
CONTENT_HASH_METADATA = "lava-sha256"


def clip_id_of(drive_id: str, content_sha256: str) -> str:
    """A clip is its drive and its content: ``<drive>-<16 hex of the content hash>``, the drive
    id cut so the whole stays a valid id (the hash keeps it unique)."""
    return f"{drive_id[: MAX_ID - 17]}-{content_sha256[:16]}"


def task_id_of(clip_id: str, workflow: str) -> str:
    """An annotation task is one clip through one workflow: ``<clip>.<workflow>``, or when that
    is too long for an id, its first characters and a hash of the whole (unique, stable and
    valid: a 128-character clip id must not yield an invalid task id)."""
    full = f"{clip_id}.{workflow}"
    if len(full) <= MAX_ID:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:16]
    return f"{full[: MAX_ID - 17]}-{digest}"
