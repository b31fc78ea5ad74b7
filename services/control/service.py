"""`python -m services.control`: the control service process (API + dashboard).

It holds AWS clients and a publishing connection to the bus (task creation publishes
``ClipIngested``); it consumes nothing. It runs the dataset exports operators request in the
background (``services/control/exports.py``). Uvicorn serves the app on the socket its
starter handed down (``shared/listening.py``), else on ``LAVA_CONTROL__HOST``:
``LAVA_CONTROL__PORT`` (0 = any free, logged), and stops on SIGTERM after in-flight requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Iterator
from typing import Any

import structlog
import uvicorn

from services.control.app import create_app
from services.control.auth import Authenticator
from services.control.context import Control
from services.control.exports import ExportRunner
from services.control.limits import MutationBudget
from shared import tracing
from shared.aws import AwsClients
from shared.bus import Bus
from shared.events import Event
from shared.listening import exit_when_unservable, port_of, server_socket
from shared.logging import configure_logging
from shared.runtime import exit_unless_identity
from shared.settings import ControlSettings

log = structlog.get_logger(__name__)


async def serve(settings: ControlSettings) -> None:
    auth = Authenticator(settings)
    if not auth.tokens and auth.jwks is None:
        log.warning("no LAVA_CONTROL__TOKENS and no OIDC issuer: every API call gets 401")
    async with AwsClients(settings) as aws:
        # Its broker identity is `control` (shared/broker_identities.py): it may publish
        # ClipIngested (task creation) and nothing else.
        bus = Bus(settings, client_name="lava-control")
        await bus.connect()
        try:

            async def publish(event: Event[Any]) -> None:
                await bus.publish(event)

            exports = ExportRunner(aws, settings, now=time.time)
            control = Control(
                settings=settings,
                aws=aws,
                publish=publish,
                auth=auth,
                budget=MutationBudget(aws, settings, settings.control.mutations_per_minute),
                now=time.time,
                ready=lambda: bus.connected,
                exports=exports,
            )
            app = create_app(control)
            tracing.instrument_app(app)  # a no-op unless OTEL_* turned tracing on
            config = uvicorn.Config(
                app,
                host=settings.control.host,
                port=settings.control.port,
                log_config=None,
                access_log=False,
                server_header=False,
                timeout_graceful_shutdown=int(settings.runtime.shutdown_grace_seconds),
            )
            server = _Server(config)
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, server.stop)
            # A socket handed down by whoever started this process, else the configured port.
            sock = server_socket("control", settings.control.host, settings.control.port)
            log.info("control service", host=settings.control.host, port=port_of(sock))
            sweeping = asyncio.create_task(exports.run())
            try:
                await server.serve(sockets=[sock])
            finally:
                # runs in progress are handed back for another replica to resume
                await exports.stop()
                await sweeping
            log.info("control service stopped")
        finally:
            await bus.close()


class _Server(uvicorn.Server):
    """Uvicorn without its signal capture: it re-raises SIGTERM after shutting down, so a
    clean stop would end with -15. SIGTERM here asks for a graceful stop and exits 0."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def stop(self) -> None:
        self.should_exit = True


def main() -> None:
    settings = ControlSettings.load_or_exit()
    configure_logging(settings, "control")
    exit_unless_identity(settings, "control")
    tracing.configure("control")
    try:
        with exit_when_unservable():
            asyncio.run(serve(settings))
    finally:
        tracing.shutdown()
