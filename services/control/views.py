"""The API's shapes of the domain's records: every time an RFC 3339 UTC string (``Z``).

The records keep epoch seconds (what DynamoDB stores, compares and indexes); a client reads
one format in every shape, the jobs' ``created_at`` included (a datetime already). Each view is
the record with its time fields re-typed, built with ``of`` from the record itself, so a new
field of a record shows up in its view without being listed here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Self

from pydantic import BaseModel, PlainSerializer, WithJsonSchema

from shared.dataset.export_store import DatasetExport
from shared.dataset.index import IndexEntry
from shared.operations.status import Failure, HourCounts, PipelineStatus
from shared.tasks.model import AnnotationTask, DataObject, HistoryEntry, LateOutput


def rfc3339(seconds: float) -> str:
    """Epoch seconds as ``2026-12-06T13:38:26.123Z``."""
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


DATE_TIME = WithJsonSchema({"type": "string", "format": "date-time"})
Timestamp = Annotated[float, PlainSerializer(rfc3339, return_type=str), DATE_TIME]


def hour_start(hour: str) -> str:
    """The counters' ``YYYYMMDDHH`` hour as the RFC 3339 time it starts."""
    return datetime.strptime(hour, "%Y%m%d%H").replace(tzinfo=UTC).strftime("%Y-%m-%dT%H:00:00Z")


class View(BaseModel):
    @classmethod
    def of(cls, record: BaseModel) -> Self:
        return cls.model_validate(record.model_dump())


class HistoryView(HistoryEntry, View):
    at: Timestamp


class TaskRecordView(AnnotationTask, View):
    created_at: Timestamp
    updated_at: Timestamp
    level_started_at: Timestamp
    due_at: Timestamp | None = None
    # list is invariant: mypy sees a narrower element type as another type
    history: list[HistoryView] = []  # type: ignore[assignment]


class ObjectView(DataObject, View):
    last_sent_at: Timestamp | None = None
    due_at: Timestamp | None = None
    done_at: Timestamp | None = None
    held_since: Timestamp | None = None


class LateOutputView(LateOutput, View):
    at: Timestamp


class FailureView(Failure, View):
    updated_at: Timestamp


class HourView(HourCounts, View):
    hour: Annotated[
        str, PlainSerializer(hour_start, return_type=str), DATE_TIME
    ]  # the start of the hour


class StatusView(PipelineStatus, View):
    failures: list[FailureView]  # type: ignore[assignment]
    hours: list[HourView]  # type: ignore[assignment]


class IndexEntryView(IndexEntry, View):
    completed_at: Timestamp


class ExportView(DatasetExport, View):
    requested_at: Timestamp
    lease_until: Timestamp | None = None
    started_at: Timestamp | None = None
    finished_at: Timestamp | None = None
