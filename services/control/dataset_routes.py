"""The control API's dataset routes (``/v1/dataset``): completed clips by attribute, exports.

Attributes are checked against the taxonomy (``shared.dataset.index.check_where``): an
unknown attribute or value is a 400 problem naming what is allowed. Exports are requested
here and run in the background (``services/control/exports.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from services.control.audit import audited
from services.control.auth import Principal
from services.control.context import Ctl
from services.control.problems import documented
from services.control.security import operator, viewer
from services.control.views import ExportView, IndexEntryView
from shared.dataset.export_store import ExportStore
from shared.dataset.exports import ExportFormat
from shared.dataset.index import ENUMS, FREE, QueryError, check_where
from shared.ids import MAX_ID
from shared.operations import dataset
from shared.taxonomy.vocabulary import Scene, TimeOfDay, Traffic, TrafficDensity, Weather

Viewer = Annotated[Principal, Depends(viewer)]
Operator = Annotated[Principal, Depends(operator)]
# An export id names an S3 prefix (exports/<id>/): a narrower set than other ids, no dots.
EXPORT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]*$"
MAX_EXPORT_ID = 64
ExportId = Annotated[str, Path(min_length=1, max_length=MAX_EXPORT_ID, pattern=EXPORT_ID_PATTERN)]
PAGING = ("limit", "cursor")
# Longest filter value: ids are at most MAX_ID, a route up to 256 characters (the taxonomy's).
MAX_VALUE = 256

router = APIRouter(prefix="/v1/dataset", tags=["dataset"])


def _allowed(name: str) -> str:
    return ", ".join(m.value for m in ENUMS[name])


def _value(name: str) -> object:
    # the taxonomy's attributes are enums in the OpenAPI document (closed sets of values)
    if name in ENUMS:
        return Query(description=f"One of: {_allowed(name)}.")
    return Query(min_length=1, max_length=MAX_VALUE, description="Exact value.")


class DatasetFilter(BaseModel):
    """Clips whose attributes have every value named (none named: every clip)."""

    model_config = ConfigDict(extra="forbid")

    weather: Weather | None = None
    time_of_day: TimeOfDay | None = None
    scene: Scene | None = None
    traffic: Traffic | None = None
    traffic_density: TrafficDensity | None = None
    drive_id: str | None = Field(None, min_length=1, max_length=MAX_ID)
    route: str | None = Field(None, min_length=1, max_length=MAX_VALUE)
    clip_id: str | None = Field(None, min_length=1, max_length=MAX_ID)


def checked(named: Mapping[str, str | None]) -> dict[str, str]:
    """The filter as the index takes it; 400 with the reason when the taxonomy says no."""
    try:
        return check_where({k: str(v) for k, v in named.items() if v is not None})
    except QueryError as exc:
        raise HTTPException(400, str(exc)) from None


class ClipPage(BaseModel):
    items: list[IndexEntryView] = Field(
        description="Index entries: attributes, counts, and the clip's labels and summary URIs."
    )
    next_cursor: str | None = Field(
        None,
        description="Pass as `cursor` for the next page (a page may hold fewer than `limit` "
        "entries; only a null cursor means the end).",
    )


class ExportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: ExportFormat
    where: DatasetFilter = Field(default_factory=DatasetFilter)
    export_id: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_EXPORT_ID,
        pattern=EXPORT_ID_PATTERN,
        description="Your name for the export, to repeat the request safely: the same id is "
        "the same export. Without it a repeat with the same format and filter within "
        "LAVA_CONTROL__EXPORT_REPEAT_SECONDS is the same export.",
    )


LOCATION = {
    "Location": {"description": "Where the export's status is.", "schema": {"type": "string"}}
}


@router.get(
    "/clips",
    response_model=ClipPage,
    responses=documented(400, 401, 403, 422),
    summary="Completed clips by attribute, a page at a time",
)
async def list_clips(
    who: Viewer,
    ctl: Ctl,
    request: Request,
    weather: Annotated[Weather | None, _value("weather")] = None,
    time_of_day: Annotated[TimeOfDay | None, _value("time_of_day")] = None,
    scene: Annotated[Scene | None, _value("scene")] = None,
    traffic: Annotated[Traffic | None, _value("traffic")] = None,
    traffic_density: Annotated[TrafficDensity | None, _value("traffic_density")] = None,
    drive_id: Annotated[str | None, _value("drive_id")] = None,
    route: Annotated[str | None, _value("route")] = None,
    clip_id: Annotated[str | None, _value("clip_id")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> ClipPage:
    """Through the index of `weather`, `time_of_day` or `scene` when one is named (by clip
    id), other attributes filtered on top; over the whole index otherwise."""
    unknown = sorted(set(request.query_params) - {*ENUMS, *FREE, *PAGING})
    if unknown:
        known = ", ".join(sorted([*ENUMS, *FREE]))
        raise HTTPException(400, f"cannot query by {unknown[0]!r} (attributes: {known})")
    where = checked(
        {
            "weather": weather,
            "time_of_day": time_of_day,
            "scene": scene,
            "traffic": traffic,
            "traffic_density": traffic_density,
            "drive_id": drive_id,
            "route": route,
            "clip_id": clip_id,
        }
    )
    page = await dataset.clips_page(
        ctl.dataset, where, min(limit, ctl.settings.control.page_max), cursor
    )
    return ClipPage(
        items=[IndexEntryView.of(entry) for entry in page.entries], next_cursor=page.next_cursor
    )


@router.post(
    "/exports",
    response_model=ExportView,
    status_code=202,
    responses={
        202: {"headers": LOCATION, "description": "Accepted: queued, or the same request's"},
        **documented(400, 401, 403, 409, 413, 422, 429),
    },
    summary="Start an export of the clips a filter selects",
)
async def request_export(
    who: Operator, ctl: Ctl, body: ExportRequest, response: Response
) -> ExportView:
    """Written to `exports/<id>/attempt-<n>/` in the pipeline's bucket by a control replica
    in the background; `GET` the `Location` for its status, counts and files. Idempotent by
    `export_id` (given or derived)."""
    target = body.export_id or "(derived)"
    async with audited(who, "dataset.export", target, format=body.format.value) as line:
        where = checked(body.where.model_dump(mode="json"))
        line.extra["where"] = where
        export, created = await dataset.request_export(
            ExportStore(ctl.aws, ctl.settings),
            body.format,
            where,
            f"{who.via}:{who.name}",
            ctl.now(),
            ctl.settings.control.export_repeat_seconds,
            body.export_id,
        )
        line.target = export.export_id
        line.extra["created"] = created
    if created:
        ctl.exports.submit(export.export_id)
    response.headers["Location"] = f"/v1/dataset/exports/{export.export_id}"
    return ExportView.of(export)


@router.get(
    "/exports/{export_id}",
    response_model=ExportView,
    responses=documented(400, 401, 403, 404, 422),
    summary="An export's status, counts, files, or why it failed",
)
async def show_export(who: Viewer, ctl: Ctl, export_id: ExportId) -> ExportView:
    return ExportView.of(await dataset.show_export(ExportStore(ctl.aws, ctl.settings), export_id))
