"""A service whose handler takes a while: for the SIGTERM drain test.

Writes ``started-<reason>`` when a handler begins and ``finished-<reason>`` when it ends, in
the directory named by LAVA_TEST_MARKERS. A handler runs until the test creates
``release-<reason>`` there (or LAVA_TEST_HANDLER_SECONDS pass), so a test decides when it ends.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from shared.bus import Topology
from shared.events import ClipFailed, Event
from shared.runtime import ServiceRuntime, run_service
from shared.settings import ServiceSettings

TOPOLOGY = Topology(consumers={"probe": ("ClipFailed",)})


async def build(runtime: ServiceRuntime[ServiceSettings]) -> None:
    markers = Path(os.environ["LAVA_TEST_MARKERS"])
    seconds = float(os.environ.get("LAVA_TEST_HANDLER_SECONDS", "60"))

    async def handle(event: Event[Any]) -> None:
        reason = event.payload.reason
        (markers / f"started-{reason}").touch()
        release = markers / f"release-{reason}"
        deadline = asyncio.get_running_loop().time() + seconds
        while not release.exists() and asyncio.get_running_loop().time() < deadline:  # noqa: ASYNC110 - polls a file the test creates
            await asyncio.sleep(0.02)
        (markers / f"finished-{reason}").touch()

    runtime.handle(ClipFailed, handle)


if __name__ == "__main__":
    run_service(
        "probe", build, consumer="probe", topology=TOPOLOGY, settings=ServiceSettings.load()
    )
