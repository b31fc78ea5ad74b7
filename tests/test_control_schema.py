"""Schemathesis against the control service's own OpenAPI document: generated requests on
every operation, as an operator; no 5xx, and every response matches its documented schema."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from devstack.testing.events import frames_ready
from shared.aws import AwsClients
from shared.clock import FakeClock
from shared.settings import Settings
from tests.support.control import control_service
from tests.support.dispatch import Recorder, create_jobs, dispatch_settings, make

pytestmark = pytest.mark.integration

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
    ]
)
EXAMPLES = os.environ.get("LAVA_TEST_SCHEMATHESIS_EXAMPLES", "10")


async def test_the_api_keeps_its_own_openapi_document(
    aws: AwsClients, settings: Settings, tmp_path: Path
) -> None:
    s = dispatch_settings(settings)
    await create_jobs(aws, s)
    dispatcher = make(aws, s, FakeClock(), Recorder())
    for i in range(3):
        await dispatcher.on_frames_ready(frames_ready(f"clip-{i}", bucket=s.names.bucket))
    async with control_service(s, tmp_path, LAVA_CONTROL__MUTATIONS_PER_MINUTE="100000") as control:
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "schemathesis.cli",
                "run",
                f"{control.url}/openapi.json",
                "--header",
                f"Authorization: Bearer {control.tokens['operator']}",
                "--header",
                "X-CSRF-Token: api",
                "--checks",
                CHECKS,
                "--max-examples",
                EXAMPLES,
                "--seed",
                "15",
                "--generation-deterministic",
                "--request-timeout",
                "30",
                "--report",
                "junit",
                "--report-dir",
                str(tmp_path / "schemathesis"),
            ],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=tmp_path,
        )
        assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
        assert "5xx" not in control.log()
