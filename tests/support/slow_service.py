"""A service whose handler takes a while: for the SIGTERM drain test.

Writes ``started-<reason>`` when a handler begins and ``finished-<reason>`` when it ends, in
the directory named by LAVA_TEST_MARKERS.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from shared.bus import Topology
from shared.events import Event
from shared.runtime import ServiceRuntime, run_service

TOPOLOGY = Topology(consumers={"probe": ("ClipFailed",)})


async def build(runtime: ServiceRuntime) -> None:
    markers = Path(os.environ["LAVA_TEST_MARKERS"])
    seconds = float(os.environ.get("LAVA_TEST_HANDLER_SECONDS", "2"))

    async def handle(event: Event[Any]) -> None:
        (markers / f"started-{event.payload.reason}").touch()
        await asyncio.sleep(seconds)
        (markers / f"finished-{event.payload.reason}").touch()

    runtime.handle("ClipFailed", handle)


if __name__ == "__main__":
    run_service("probe", build, consumer="probe", topology=TOPOLOGY)
