"""Ids derived from other ids: always valid, whatever the length of their parts."""

from __future__ import annotations

import hashlib

# A task id is a SafeId (shared.taxonomy.attributes): at most 128 characters.
MAX_TASK_ID = 128


def task_id_of(clip_id: str, workflow: str) -> str:
    """An annotation task is one clip through one workflow: ``<clip>.<workflow>``, or when that
    is too long for an id, its first characters and a hash of the whole (unique, stable and
    valid: a 128-character clip id must not yield an invalid task id)."""
    full = f"{clip_id}.{workflow}"
    if len(full) <= MAX_TASK_ID:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:16]
    return f"{full[: MAX_TASK_ID - 17]}-{digest}"
