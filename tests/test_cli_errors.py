"""A failing command says one line and what to do next, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import aiormq.exceptions
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from lava.errors import one_line

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("exc", "hint"),
    [
        (NoCredentialsError(), "source .lava/run.env"),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:9"), "lava stack up"),
        (
            ClientError(
                {"Error": {"Code": "ResourceNotFoundException", "Message": "no table t-jobs"}},
                "Query",
            ),
            "lava stack provision",
        ),
        (aiormq.exceptions.AMQPConnectionError("refused"), "rabbitmq-server -detached"),
        (ConnectionRefusedError(111, "refused"), "LAVA_BROKER__AMQP_URL"),
        (RuntimeError("boom\nsecond line"), "LAVA_DEBUG=1"),
        (ModuleNotFoundError("no", name="matplotlib.pyplot"), "lava-pipeline[report]"),
        (ModuleNotFoundError("no", name="fastapi"), "lava-pipeline[control]"),
        (ModuleNotFoundError("no", name="devstack.local_stack"), "the image's `local` target"),
    ],
)
def test_each_failure_is_one_line_with_the_next_step(exc: Exception, hint: str) -> None:
    message = one_line(exc)
    assert "\n" not in message
    assert hint in message


def test_a_command_without_credentials_prints_one_line_and_fails() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LAVA_NAMESPACE"))}
    env.update(
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
        AWS_CONFIG_FILE="/nonexistent",
        AWS_EC2_METADATA_DISABLED="true",
    )
    run = subprocess.run(
        [sys.executable, "-m", "lava", "jobs", "list"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    lines = [line for line in run.stderr.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1 and "no AWS credentials" in lines[0]


# What the production image leaves out (extras and local tooling), made unimportable.
WITHOUT_EXTRAS = (
    "import sys\n"
    "from lava.errors import OPTIONAL_MODULES\n"
    "for name in OPTIONAL_MODULES: sys.modules[name] = None\n"
)


def _run_without_extras(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_EXTRAS + code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def test_every_command_group_loads_without_the_extras_and_local_tooling() -> None:
    # e.g. the production provision Job runs `lava stack provision` and `lava jobs ...`
    done = _run_without_extras(
        "import importlib\n"
        "from lava.cli import COMMANDS\n"
        "for target in COMMANDS.values(): importlib.import_module(target.split(':')[0])\n"
    )
    assert done.returncode == 0, done.stderr


def test_a_command_whose_extra_is_missing_names_the_extra_in_one_line() -> None:
    done = _run_without_extras(
        "sys.argv = ['lava', 'control', 'token', '--name', 'ops', '--role', 'viewer']\n"
        "from lava.cli import main\n"
        "main()\n"
    )
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1
    assert "pip install 'lava-pipeline[control]'" in done.stderr
