"""Running a service's runtime inside the test process (real broker, real moto server)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypeVar

from shared.runtime import Build, ServiceRuntime
from shared.settings import ServiceSettings
from tests.support.broker import provision_topology, wait_until

S = TypeVar("S", bound=ServiceSettings)


@asynccontextmanager
async def running(
    build: Build[S], settings: S, name: str, consumer: str | None, uses_bus: bool = True
) -> AsyncIterator[ServiceRuntime[S]]:
    runtime = ServiceRuntime(name, settings, consumer=consumer, uses_bus=uses_bus)
    if uses_bus:
        await provision_topology(settings)  # services only check it (passive declares)
    await build(runtime)
    task = asyncio.create_task(runtime.run(install_signals=False))
    try:
        await wait_until(lambda: runtime.ready or task.done(), timeout=20)
        if task.done():
            task.result()
        yield runtime
    finally:
        runtime.request_stop()
        await asyncio.wait_for(task, 30)
