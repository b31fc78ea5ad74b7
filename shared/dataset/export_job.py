"""One attempt at a dataset export: select the clips, read their labels, render, write to S3.

The files go under ``exports/<id>/attempt-<n>/`` (``shared.layout.export_prefix``): the format's
files, named as ``lava dataset export`` names them, and ``manifest.json`` (the export, its
filter and the clips it holds with their label and summary URIs). What this returns is
recorded by the caller only after every file is written (the commit point).
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import ValidationError

from shared.dataset.exports import ExportBuilder
from shared.layout import export_prefix, parse_s3_uri, s3_uri
from shared.storage import ObjectMissing, S3Store
from shared.taxonomy.records import ClipLabels

if TYPE_CHECKING:
    from shared.aws import AwsClients
    from shared.dataset.export_store import DatasetExport
    from shared.dataset.index import DatasetIndex, IndexEntry

READS_AT_ONCE = 16
WRITES_AT_ONCE = 8
CONTENT_TYPES = {".json": "application/json", ".txt": "text/plain", ".ini": "text/plain"}


class ExportRefused(Exception):
    """This export cannot be made as asked; ``str(exc)`` is the reason its record keeps."""


@dataclass(frozen=True)
class ExportResult:
    files: list[str]  # S3 URIs, manifest.json first
    clips: int
    frames: int
    annotations: int


def _parse(entry: IndexEntry, raw: bytes) -> ClipLabels:
    try:
        return ClipLabels.model_validate_json(raw)
    except ValidationError as exc:
        raise ExportRefused(
            f"labels of clip {entry.clip_id} ({entry.labels_uri}) do not validate: "
            f"{exc.error_count()} error(s)"
        ) from None


async def read_labels(store: S3Store, entry: IndexEntry) -> bytes:
    try:
        return await store.get_bytes(*parse_s3_uri(entry.labels_uri))
    except ObjectMissing as exc:
        raise ExportRefused(f"labels of clip {entry.clip_id} are missing: {exc}") from None


async def load_labels(aws: AwsClients, entries: list[IndexEntry]) -> list[ClipLabels]:
    """The LAVA records of these index entries, all at once (read 16 at a time)."""
    store = S3Store(aws)
    gate = asyncio.Semaphore(READS_AT_ONCE)

    async def one(entry: IndexEntry) -> ClipLabels:
        async with gate:
            raw = await read_labels(store, entry)
        return _parse(entry, raw)

    return list(await asyncio.gather(*(one(e) for e in entries)))


async def labels_in_order(
    aws: AwsClients, entries: list[IndexEntry], ahead: int = READS_AT_ONCE
) -> AsyncIterator[ClipLabels]:
    """The LAVA records of these entries one after the other, reading up to ``ahead`` files
    ahead (raw bytes) and parsing each only when it is asked for."""
    store = S3Store(aws)
    queue = iter(entries)
    pending: deque[tuple[IndexEntry, asyncio.Task[bytes]]] = deque()

    def read_next() -> None:
        entry = next(queue, None)
        if entry is not None:
            pending.append((entry, asyncio.create_task(read_labels(store, entry))))

    for _ in range(ahead):
        read_next()
    try:
        while pending:
            entry, reading = pending.popleft()
            raw = await reading
            read_next()
            yield _parse(entry, raw)
    finally:
        for _, reading in pending:
            reading.cancel()


async def produce(
    aws: AwsClients,
    index: DatasetIndex,
    bucket: str,
    export: DatasetExport,
    attempt: int,
    max_clips: int,
) -> ExportResult:
    entries = await index.query(export.where)
    if len(entries) > max_clips:
        # the files are built in memory before they are written
        raise ExportRefused(
            f"{len(entries)} clips match; an export holds at most {max_clips} "
            "(LAVA_CONTROL__EXPORT_MAX_CLIPS): narrow the filter"
        )
    builder = ExportBuilder(export.format, bucket)
    async for clip in labels_in_order(aws, entries):
        builder.add(clip)
    rendered = builder.finish()
    prefix = export_prefix(export.export_id, attempt)
    manifest = {
        "export_id": export.export_id,
        "attempt": attempt,
        "format": export.format.value,
        "where": export.where,
        "clips": [
            {"clip_id": e.clip_id, "labels_uri": e.labels_uri, "summary_uri": e.summary_uri}
            for e in entries
        ],
        "frames": rendered.frames,
        "annotations": rendered.annotations,
        "files": sorted(rendered.files),
    }
    files = {"manifest.json": json.dumps(manifest, indent=1).encode(), **rendered.files}
    store = S3Store(aws)
    gate = asyncio.Semaphore(WRITES_AT_ONCE)

    async def write(name: str, body: bytes | bytearray) -> None:
        suffix = name[name.rfind(".") :]
        async with gate:
            await store.put_bytes(
                bucket, prefix + name, body, CONTENT_TYPES.get(suffix, "application/octet-stream")
            )

    await asyncio.gather(*(write(name, body) for name, body in files.items()))
    return ExportResult(
        files=[s3_uri(bucket, prefix + name) for name in files],
        clips=rendered.clips,
        frames=rendered.frames,
        annotations=rendered.annotations,
    )
