"""The listener's Label Studio side, wired into its runtime: loaded only when configured.

``services.listener.service`` names this module instead of importing it, so a listener for
Ground Truth jobs alone loads no Label Studio code (tests/test_architecture.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from services.listener.labelstudio import LabelStudioSide
from services.listener.webhooks import PATH, WebhookReceiver, serve
from shared.runtime import ServiceRuntime
from shared.settings import ListenerSettings

log = structlog.get_logger(__name__)


def add_labelstudio(
    runtime: ServiceRuntime[ListenerSettings], key_checked: Callable[[str], None]
) -> None:
    """Label Studio jobs: imports, reconciliation + expiry, and the webhook server;
    ``key_checked`` counts how outputs' keys were checked (the listener's metric)."""
    settings = runtime.settings
    side = LabelStudioSide(settings, runtime.aws, runtime.bus.publish, key_checked=key_checked)
    receiver = WebhookReceiver(side, settings.labelstudio.webhook_secret.get_secret_value())

    async def webhooks(stop: asyncio.Event) -> None:
        runner, port = await serve(
            receiver, settings.labelstudio.webhook_host, settings.labelstudio.webhook_port
        )
        log.info("Label Studio webhooks served", port=port, path=PATH)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()
            await side.client.close()

    runtime.add_loop("labelstudio-import", side.import_loop)
    runtime.add_loop("labelstudio-reconcile", side.reconcile_loop)
    runtime.add_loop("labelstudio-webhooks", webhooks)
