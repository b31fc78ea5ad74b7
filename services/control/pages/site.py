"""Every dashboard page and form route beyond sign-in and the overview, as one router."""

from __future__ import annotations

from fastapi import APIRouter

from services.control.pages import actions, clips, search, tasks

router = APIRouter(include_in_schema=False)
for module in (actions, clips, search, tasks):
    router.include_router(module.router)
