"""The control API's quality route (``GET /v1/quality``): the quality report over a window.

The viewer role reads it with workers as pseudonyms; ``reveal=true`` (the backend's worker
ids) needs the operator role (docs/quality.md: who sees whom).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query

from services.control.auth import Principal, Role
from services.control.context import Ctl
from services.control.problems import documented
from services.control.security import viewer
from shared.operations.errors import Invalid
from shared.operations.quality import quality_report
from shared.quality.report import QualityReport

Viewer = Annotated[Principal, Depends(viewer)]

# RFC 3339 with its time zone, as every time in the API. A plain ``datetime`` parameter would
# also take a number as a Unix time (pydantic's lax mode), which the document does not say.
RFC3339 = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|z|[+-]\d{2}:\d{2})$"


def _moment(name: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise HTTPException(422, f"{name}: {value!r} is not an RFC 3339 time") from None


router = APIRouter(prefix="/v1/quality", tags=["quality"])


@router.get(
    "",
    response_model=QualityReport,
    responses=documented(401, 403, 422),
    summary="Label quality per worker, job and class over a time window",
)
async def get_quality(
    who: Viewer,
    ctl: Ctl,
    since: Annotated[
        str | None,
        Query(
            pattern=RFC3339,
            description="Window start, RFC 3339 with a time zone (default: 7 days ago).",
            json_schema_extra={"format": "date-time"},
        ),
    ] = None,
    until: Annotated[
        str | None,
        Query(
            pattern=RFC3339,
            description="Window end, RFC 3339 with a time zone (default: now).",
            json_schema_extra={"format": "date-time"},
        ),
    ] = None,
    reveal: Annotated[
        bool, Query(description="Worker ids instead of pseudonyms (operator role).")
    ] = False,
) -> QualityReport:
    """Gold scores, level agreement and throughput of the tasks finalized in [since, until);
    every proportion with its n and 95 % Wilson interval."""
    if reveal and not who.may(Role.OPERATOR):
        raise HTTPException(403, "worker ids need the operator role; pseudonyms are shown without")
    try:
        window = _moment("since", since), _moment("until", until)
        return await quality_report(ctl.aws, ctl.settings, *window, reveal=reveal)
    except Invalid as exc:  # a well-formed window that cannot be (reversed, too long)
        raise HTTPException(422, str(exc)) from None
