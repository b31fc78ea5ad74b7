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

# What the process keeps in memory at most, over every handling in flight (post-processing
# handles LAVA_POSTPROC__CONCURRENCY events at once in a pod of a few hundred MiB). A clip's
# label files are well under 10 MiB each (merge.MAX_LABEL_FILE_BYTES caps one at 64 MiB);
# past the budget an object is read each time it is asked for, as before the cache.
KEPT_BYTES = 64 * 1024 * 1024


class KeptBytes:
    """The bytes every :class:`ClipReads` of a process may keep at once, together."""

    def __init__(self, limit: int = KEPT_BYTES) -> None:
        self.free = limit

    def take(self, size: int) -> bool:
        if size > self.free:
            return False
        self.free -= size
        return True

    def give_back(self, size: int) -> None:
        self.free += size


class ClipReads:
    """Reads through ``store``, keeping each object's bytes for the rest of the handling
    while ``budget`` allows; :meth:`release` (at the handling's end) gives the bytes back."""

    def __init__(self, store: ObjectStore, budget: KeptBytes | None = None) -> None:
        self.store = store
        self.budget = budget or KeptBytes()
        self._kept: dict[tuple[str, str], bytes] = {}

    async def get_bytes(self, bucket: str, key: str, *, max_bytes: int | None = None) -> bytes:
        """The object's bytes, from S3 the first time; :class:`TooLarge` over ``max_bytes``
        as :meth:`ObjectStore.get_bytes` raises it (read failures are not kept)."""
        kept = self._kept.get((bucket, key))
        if kept is None:
            kept = await self.store.get_bytes(bucket, key, max_bytes=max_bytes)
            if self.budget.take(len(kept)):
                self._kept[(bucket, key)] = kept
        elif max_bytes is not None and len(kept) > max_bytes:
            raise TooLarge(f"s3://{bucket}/{key} is {len(kept)} bytes (limit {max_bytes})")
        return kept

    async def get_json(self, bucket: str, key: str) -> Any:
        return json.loads(await self.get_bytes(bucket, key))

    def release(self) -> None:
        """Forget what was kept and give its bytes back to the budget."""
        self.budget.give_back(sum(len(b) for b in self._kept.values()))
        self._kept.clear()
