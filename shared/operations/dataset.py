"""Operations on the dataset: a page of completed clips by attributes; request and show an
export (the control service runs requested exports: ``shared.dataset.export_store``).

An export request is idempotent by its id. A client names it (``export_id``: the same id is
the same export, whenever it is repeated; with another format or filter it is a conflict), or
the id is derived from the format and the filter: a repeat within ``repeat_seconds`` of the
request that created an export is that export (a retried POST never doubles it), a later one
starts a new export (the dataset may have grown since).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from shared.dataset.export_store import DatasetExport, ExportStatus, ExportStore
from shared.dataset.exports import ExportFormat
from shared.dataset.index import DatasetIndex, IndexEntry
from shared.operations.errors import Conflict, Invalid, NotFound

DERIVED_PREFIX = "auto-"


@dataclass(frozen=True)
class IndexPage:
    entries: list[IndexEntry]
    next_cursor: str | None


def encode_cursor(key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, sort_keys=True).encode()).decode()


def decode_cursor(cursor: str, where: dict[str, str]) -> dict[str, Any]:
    """The page position a cursor holds, checked against the query it continues."""
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise Invalid("cursor is not one this API returned") from None
    expected = DatasetIndex.page_key_fields(where)
    if (
        not isinstance(key, dict)
        or set(key) != set(expected)
        or not all(isinstance(v, str) and v for v in key.values())
        or any(value and key[name] != value for name, value in expected.items())
    ):
        raise Invalid("cursor is not one this API returned (for this filter)")
    return key


async def clips_page(
    index: DatasetIndex, where: dict[str, str], limit: int, cursor: str | None = None
) -> IndexPage:
    after = decode_cursor(cursor, where) if cursor else None
    entries, last = await index.page(where, limit, after)
    return IndexPage(entries, encode_cursor(last) if last else None)


def derived_export_id(fmt: ExportFormat, where: dict[str, str], window: int) -> str:
    request = json.dumps({"format": fmt.value, "where": where, "window": window}, sort_keys=True)
    return DERIVED_PREFIX + hashlib.sha256(request.encode()).hexdigest()[:24]


async def request_export(
    store: ExportStore,
    fmt: ExportFormat,
    where: dict[str, str],
    requested_by: str,
    now: float,
    repeat_seconds: float,
    export_id: str | None = None,
) -> tuple[DatasetExport, bool]:
    """The export for this request, queued if new; and whether it is new."""
    if export_id is None:
        window = int(now // repeat_seconds)
        previous = await store.get(derived_export_id(fmt, where, window - 1))
        if previous is not None and now - previous.requested_at < repeat_seconds:
            return previous, False
        export_id = derived_export_id(fmt, where, window)
    elif export_id.startswith(DERIVED_PREFIX):
        raise Invalid(f"export ids starting {DERIVED_PREFIX!r} are the service's own")
    export, created = await store.create(
        DatasetExport(
            export_id=export_id,
            format=fmt,
            where=where,
            status=ExportStatus.QUEUED,
            requested_by=requested_by,
            requested_at=now,
        )
    )
    if not created and (export.format is not fmt or export.where != where):
        raise Conflict(f"export {export_id} exists with another format or filter")
    return export, created


async def show_export(store: ExportStore, export_id: str) -> DatasetExport:
    export = await store.get(export_id)
    if export is None:
        raise NotFound(f"no export {export_id}")
    return export
