"""The S3 reads of one LabelsFinalized's handling, each object fetched once.

The quality record and the merge read the same objects - the clip's frame index and its jobs'
label files (the merge reads a level-1 file again for the adjustment diff) - so the handler
makes one :class:`ClipReads` per event and passes it down. It lives as long as that handling:
nothing is kept across events, so a rewritten object is read afresh by the next one.
"""

from __future__ import annotations

import json
from typing import Any

from shared.storage import ObjectStore, TooLarge

# What one handling keeps in memory at most. A clip's label files are well under 10 MiB each
# (merge.MAX_LABEL_FILE_BYTES caps one at 64 MiB); past the budget an object is read each
# time it is asked for, as before, instead of holding every file of a runaway clip at once.
KEPT_BYTES = 64 * 1024 * 1024


class ClipReads:
    """Reads through ``store``, keeping each object's bytes for the rest of the handling."""

    def __init__(self, store: ObjectStore, budget: int = KEPT_BYTES) -> None:
        self.store = store
        self.budget = budget
        self._kept: dict[tuple[str, str], bytes] = {}

    async def get_bytes(self, bucket: str, key: str, *, max_bytes: int | None = None) -> bytes:
        """The object's bytes, from S3 the first time; :class:`TooLarge` over ``max_bytes``
        as :meth:`ObjectStore.get_bytes` raises it (read failures are not kept)."""
        kept = self._kept.get((bucket, key))
        if kept is None:
            kept = await self.store.get_bytes(bucket, key, max_bytes=max_bytes)
            if len(kept) <= self.budget:
                self.budget -= len(kept)
                self._kept[(bucket, key)] = kept
        elif max_bytes is not None and len(kept) > max_bytes:
            raise TooLarge(f"s3://{bucket}/{key} is {len(kept)} bytes (limit {max_bytes})")
        return kept

    async def get_json(self, bucket: str, key: str) -> Any:
        return json.loads(await self.get_bytes(bucket, key))
