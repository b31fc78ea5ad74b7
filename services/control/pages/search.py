"""Search: an id goes to its task or clip page; anything else to the tasks whose id holds it."""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from services.control.context import Ctl
from services.control.pages.layout import signed_in, to_login
from shared.ids import ID_PATTERN

router = APIRouter(include_in_schema=False)


@router.get("/dashboard/search")
async def search(
    request: Request, ctl: Ctl, q: Annotated[str, Query(max_length=128)] = ""
) -> Response:
    if await signed_in(request, ctl) is None:
        return to_login()
    text = q.strip()
    if not re.fullmatch(ID_PATTERN, text):
        return RedirectResponse("/dashboard/tasks", status_code=303)
    store = ctl.store
    # exact ids first (one GetItem each): a task id, then a clip id
    if await store.get_task(text) is not None:
        return RedirectResponse(f"/dashboard/tasks/{text}", status_code=303)
    if await store.clip(text) is not None:
        return RedirectResponse(f"/dashboard/clips/{text}", status_code=303)
    # otherwise every status's tasks whose id holds it start with the active ones
    return RedirectResponse(f"/dashboard/tasks?{urlencode({'q': text})}", status_code=303)
