"""Schemathesis against the control service's own OpenAPI document: generated requests on
every operation, as an operator, every check, the stateful phase along the document's links;
0 failures, and the share of mutating calls that reached a handler is measured."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from devstack.testing.events import frames_ready
from shared.aws import AwsClients
from shared.clock import FakeClock
from shared.settings import Settings
from shared.storage import S3Store
from tests.support.control import control_service
from tests.support.dispatch import Recorder, create_jobs, dispatch_settings, make

pytestmark = pytest.mark.integration

EXAMPLES = os.environ.get("LAVA_TEST_SCHEMATHESIS_EXAMPLES", "10")
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
# Valid by the schema, refused by the state it meets (an unregistered job, a clip that is not
# in the bucket, a task in a status the action does not apply to): documented answers, not
# failures of positive_data_acceptance.
CONFIG = """
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "401", "403", "404", "409", "422"]
"""


async def test_the_api_keeps_its_own_openapi_document(
    aws: AwsClients, settings: Settings, tmp_path: Path
) -> None:
    s = dispatch_settings(settings)
    await create_jobs(aws, s)
    dispatcher = make(aws, s, FakeClock(), Recorder())
    for i in range(3):
        await dispatcher.on_frames_ready(frames_ready(f"clip-{i}", bucket=s.names.bucket))
    await S3Store(aws).put_bytes(s.names.bucket, "raw/x.mp4", b"a clip")
    (tmp_path / "schemathesis.toml").write_text(CONFIG)
    har = tmp_path / "calls.har"
    # the mutation budget raised by its setting: the fuzzer's mutations reach the handlers
    async with control_service(s, tmp_path, LAVA_CONTROL__MUTATIONS_PER_MINUTE="100000") as control:
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "schemathesis.cli",
                "--config-file",
                str(tmp_path / "schemathesis.toml"),
                "run",
                f"{control.url}/openapi.json",
                "--header",
                f"Authorization: Bearer {control.tokens['operator']}",
                "--header",
                "X-CSRF-Token: api",
                "--checks",
                "all",
                "--phases",
                "examples,coverage,fuzzing,stateful",
                "--max-examples",
                EXAMPLES,
                "--seed",
                "15",
                "--generation-deterministic",
                "--request-timeout",
                "30",
                "--report",
                "har",
                "--report-har-path",
                str(har),
            ],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=tmp_path,
        )
        assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-2000:]
        assert "5xx" not in control.log()
        audits = [line for line in control.log().splitlines() if '"audit"' in line]
    calls = [entry["request"] for entry in json.loads(har.read_text())["log"]["entries"]]
    mutating = [call for call in calls if call["method"] in MUTATING]
    share = len(audits) / len(mutating)
    print(
        f"schemathesis: {len(calls)} calls, {len(mutating)} mutating, {len(audits)} reached a "
        f"handler ({share:.0%})"
    )
    assert stateful_ran(run.stdout), run.stdout[-3000:]
    assert share >= 0.25, (len(audits), len(mutating))


def stateful_ran(output: str) -> bool:
    """Whether the stateful phase ran (it is skipped when the document has no links)."""
    return "Stateful" in output and "Stateful (skipped" not in output
