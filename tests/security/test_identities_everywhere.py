"""Broker identities in every run (issue 24, finding 9).

A service connecting as a user that is not its component identity (local ``guest``, an admin)
would run with every right and switch the consumers' origin check off silently; it now refuses
to start with one line unless the settings say this is a local all-in-one run. And the local
runner (`lava run`, the demo, the end-to-end suite) gives each process its own identity.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from emulators.settings import LocalSettings
from lava.local_pipeline import MODULES, SERVICES, LocalPipeline, PipelineConfig
from lava.run_identities import OPERATOR, forget, provision_for_run
from shared.broker_identities import component_of, identity_problem

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration


def _start(module: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module],
        env={**os.environ, "LAVA_RUNTIME__HEALTH_PORT": "0", **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_service_refuses_to_run_as_a_shared_user_with_one_line(settings: LocalSettings) -> None:
    url = settings.broker.amqp_url.get_secret_value()  # the machine's guest
    env = {"LAVA_BROKER__AMQP_URL": url, "LAVA_NAMESPACE": settings.namespace}
    refused = _start("services.ingest", **env)
    assert refused.returncode == 2
    (line,) = refused.stderr.strip().splitlines()
    assert line.startswith("refusing to start: broker user 'guest' is not the ingest identity")
    assert "LAVA_BROKER__LOCAL_ALL_IN_ONE" in line
    # another component's identity is refused too; the own one passes the check
    other = f"{settings.namespace}-dispatcher"
    assert identity_problem(settings.namespace, other, "ingest")
    assert identity_problem(settings.namespace, f"{settings.namespace}-ingest", "ingest") is None


async def test_the_local_runner_gives_every_process_its_own_identity(
    settings: LocalSettings, tmp_path: Path
) -> None:
    identities = await provision_for_run(settings, tmp_path)
    try:
        assert identities, "rabbitmqctl is available on the project's machines"
        run = LocalPipeline(
            PipelineConfig(namespace=settings.namespace, run_dir=tmp_path, aws_endpoint="x"),
            base_env={"LAVA_BROKER__AMQP_URL": settings.broker.amqp_url.get_secret_value()},
        )
        run.identities = identities
        users = {}
        for service in (*SERVICES, "control"):
            assert service in MODULES
            env = run.env_for(service, 0)
            users[service] = urlsplit(env["LAVA_BROKER__AMQP_URL"]).username
            assert env.get("LAVA_BROKER__LOCAL_ALL_IN_ONE") != "true"
        components = {s: component_of(settings.namespace, u or "") for s, u in users.items()}
        assert components == {
            "ingest": "ingest",
            "dispatcher": "dispatcher",
            "listener": "listener",
            "postproc": "postproc",
            "gt-emulator": "emulator",
            "control": "control",
        }
        assert component_of(settings.namespace, urlsplit(identities[OPERATOR]).username or "")
    finally:
        await forget(settings, tmp_path)
