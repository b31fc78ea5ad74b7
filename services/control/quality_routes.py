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

router = APIRouter(prefix="/v1/quality", tags=["quality"])


@router.get(
    "",
    response_model=QualityReport,
    responses=documented(400, 401, 403, 422),
    summary="Label quality per worker, job and class over a time window",
)
async def get_quality(
    who: Viewer,
    ctl: Ctl,
    since: Annotated[
        datetime | None, Query(description="Window start with a time zone (default: 7 days ago).")
    ] = None,
    until: Annotated[
        datetime | None, Query(description="Window end with a time zone (default: now).")
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
        return await quality_report(ctl.aws, ctl.settings, since, until, reveal=reveal)
    except Invalid as exc:
        raise HTTPException(400, str(exc)) from None
