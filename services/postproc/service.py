"""Wiring of the postproc service: adapters and handlers on the shared runtime."""

from __future__ import annotations

from shared.runtime import ServiceRuntime, run_service


async def build(runtime: ServiceRuntime) -> None:
    """Register handlers and loops (added by the postproc issue)."""


def main() -> None:
    run_service("postproc", build)
