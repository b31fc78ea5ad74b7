"""`lava run` serves a capture rig publishing from another shell, as a user runs it."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from lava.commands.run import env_lines
from lava.deploy.aws_calls import CallGraph, Component, usage
from lava.endpoints import EndpointError, resolve
from shared.settings import load_settings
from tests.support.clips import small_clip

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

RIG = (
    "lava upload {clip} --drive-id rig-1 --weather rainy --time-of-day night --route r1 "
    "--scene intersection --traffic stop-and-go --traffic-density high --fps 1 "
    "--workflow signs_lights"
)


def another_shell(env_file: Path, command: str) -> subprocess.CompletedProcess[str]:
    """``command`` in a fresh bash that only sources the env file `lava run` wrote."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAVA_", "AWS_"))}
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    return subprocess.run(
        ["bash", "-c", f". {env_file} && {command}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def wait_for_file(path: Path, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, f"lava run exited with {process.returncode}"
        assert time.monotonic() < deadline, f"{path} not written within {timeout}s"
        time.sleep(0.2)


def test_lava_run_serves_a_rig_in_another_shell_until_interrupted(
    tmp_path: Path, namespace: str, rabbitmq: str
) -> None:
    env_file = tmp_path / "run.env"
    clip = small_clip(tmp_path / "clips", seconds=2, size=(320, 180))
    env = dict(os.environ, LAVA_BROKER__AMQP_URL=rabbitmq, LAVA_STATE_DIR=str(tmp_path / "state"))
    env.pop("AWS_ENDPOINT_URL", None)
    output = (tmp_path / "run.out").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lava",
            "run",
            "--namespace",
            namespace,
            "--env-file",
            str(env_file),
            "--worker-rate",
            "50",
            "--refresh",
            "0.5",
        ],
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        wait_for_file(env_file, process, timeout=120)
        text = env_file.read_text()
        assert f"export LAVA_NAMESPACE={namespace}" in text
        assert "export AWS_ENDPOINT_URL=http://127.0.0.1:" in text

        uploaded = another_shell(env_file, RIG.format(clip=clip.video))
        assert uploaded.returncode == 0, uploaded.stderr
        deadline = time.monotonic() + 180
        while True:
            status = another_shell(env_file, "lava status")
            assert status.returncode == 0, status.stderr
            if "clips: completed 1" in status.stdout:
                break
            assert "failed" not in status.stdout, status.stdout
            assert time.monotonic() < deadline, status.stdout
            time.sleep(1)
        assert f"namespace {namespace}: 1 task(s)" in status.stdout
        recorded = recorded_aws_calls(text)
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=90)
        output.close()
    log = (tmp_path / "run.out").read_text()
    assert code == 0, log
    assert not env_file.exists()  # removed with the pipeline
    assert "clips: completed 1" in log  # the live view followed the clip
    assert "'ingest': 0" in log and "'gt-emulator': 0" in log  # every process drained
    # A recorded run backs the static analysis the IAM policies come from: every AWS
    # operation a service really called is one the analysis found for it.
    graph = CallGraph()
    for service in ("ingest", "dispatcher", "listener", "postproc"):
        assert recorded[service], service
        found = usage(Component(service, f"services.{service}"), graph).operations
        assert recorded[service] <= found, (service, recorded[service] - found)


def recorded_aws_calls(env_text: str) -> dict[str, set[tuple[str, str]]]:
    """(aws service, operation) pairs each process counted in lava_aws_calls_total."""
    line = next(x for x in env_text.splitlines() if x.startswith("export LAVA_RUN_METRICS="))
    urls = dict(item.split("=", 1) for item in shlex.split(line.split("=", 1)[1])[0].split())
    calls: dict[str, set[tuple[str, str]]] = {}
    for service, url in urls.items():
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode()
        pairs = re.findall(
            r'^lava_aws_calls_total\{[^}]*aws="(\w+)",op="(\w+)"[^}]*\} ([0-9.e+]+)$', text, re.M
        )
        calls[service] = {(aws, op) for aws, op, count in pairs if float(count) > 0}
    return calls


def test_env_lines_quote_values_and_keep_real_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "real")
    settings = load_settings(namespace="n1", broker__amqp_url="amqp://u:p w@h:5672/")
    lines = env_lines(settings, "http://127.0.0.1:4566")
    assert "export LAVA_BROKER__AMQP_URL='amqp://u:p w@h:5672/'" in lines
    assert not any("AWS_ACCESS_KEY_ID" in line for line in lines)


def test_localstack_is_found_by_localstack_client_and_must_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.support.ports import closed_port

    with closed_port() as port:
        monkeypatch.setenv("LOCALSTACK_HOST", f"127.0.0.1:{port}")
        with pytest.raises(EndpointError, match=f"nothing answers at http://127.0.0.1:{port}"):
            resolve("localstack")
    with pytest.raises(EndpointError, match="must be 'localstack' or an http"):
        resolve("127.0.0.1:4566")
