"""Broker identities of a local run: every process connects as its own component's user.

`lava run`, the demo and the end-to-end tests start the services through
:class:`lava.local_pipeline.LocalPipeline`; with these, each one runs as ``<ns>-<component>``
(``shared/broker_identities.py``), so the broker's permissions and the consumers' origin check
are exercised as in production, and the run's own shell and tests act as the ``operator``.
Where ``rabbitmqctl`` cannot be run (not on the broker's host, not root), the run falls back to
the shared user with ``LAVA_BROKER__LOCAL_ALL_IN_ONE=true`` and says so in one line.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from emulators.settings import LocalSettings
from shared.broker_provision import BrokerAdminError, delete_identities, provision_identities

# processes whose component is named differently (the stand-ins talk SNS/SQS only)
COMPONENTS = {"gt-emulator": "emulator", "ls-annotator": "emulator"}
OPERATOR = "operator"


async def provision_for_run(settings: LocalSettings, run_dir: Path) -> dict[str, str]:
    """Each component's AMQP URL (passwords kept under ``run_dir``); {} when the broker's
    users cannot be managed from here."""
    try:
        return await provision_identities(settings.replace(state_dir=run_dir))
    except BrokerAdminError as exc:
        print(
            f"lava: broker identities unavailable ({exc}); every process runs as the shared "
            "user (LAVA_BROKER__LOCAL_ALL_IN_ONE=true)",
            file=sys.stderr,
        )
        return {}


def broker_env(service: str, identities: dict[str, str]) -> dict[str, str]:
    """The broker variables of one process of the run."""
    if not identities:
        return {"LAVA_BROKER__LOCAL_ALL_IN_ONE": "true"}
    return {"LAVA_BROKER__AMQP_URL": identities[COMPONENTS.get(service, service)]}


async def forget(settings: LocalSettings, run_dir: Path) -> None:
    """Delete the run's broker users (when it provisioned them)."""
    await asyncio.to_thread(delete_identities, settings.replace(state_dir=run_dir))
