"""`lava run` serves a capture rig publishing from another shell, as a user runs it."""

from __future__ import annotations

import json
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

from lava.commands.run import env_lines, write_env_file
from lava.deploy.aws_calls import CallGraph, Component, usage
from lava.endpoints import EndpointError, resolve
from lava.run_control import control_access
from shared.settings import load_settings

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

WALKTHROUGH = Path(__file__).parents[1] / "docs" / "console.md"


def walkthrough(shell: str) -> list[str]:
    """The commands of one shell of the docs' walk-through (the bash block after its marker)."""
    text = WALKTHROUGH.read_text()
    block = text.split(f"<!-- walkthrough: {shell} -->", 1)[1].split("```bash\n", 1)[1]
    return [line for line in block.split("```", 1)[0].splitlines() if line.strip()]


def another_shell(cwd: Path, command: str) -> subprocess.CompletedProcess[str]:
    """``command`` in a fresh bash, in ``cwd``, with none of this process's LAVA_/AWS_ values
    (what it knows of the run comes from the env file it sources)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAVA_", "AWS_"))}
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    return subprocess.run(
        ["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def wait_for_file(path: Path, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, f"lava run exited with {process.returncode}"
        assert time.monotonic() < deadline, f"{path} not written within {timeout}s"
        time.sleep(0.2)


def wait_for_text(path: Path, pattern: str, process: subprocess.Popen[bytes]) -> re.Match[str]:
    """The first match of ``pattern`` in ``path`` once ``lava run`` has printed it (it writes
    the env file before its banner: a read right after the env file may find no banner)."""
    deadline = time.monotonic() + 120
    while (found := re.search(pattern, path.read_text())) is None:
        assert process.poll() is None, f"lava run exited with {process.returncode}"
        assert time.monotonic() < deadline, f"{pattern!r} not in {path} within 120 s"
        time.sleep(0.2)
    return found


def test_the_docs_walkthrough_runs_as_written(
    tmp_path: Path, namespace: str, rabbitmq: str
) -> None:
    """`lava run` in one shell, the walk-through's commands in another (docs/console.md),
    each run as written: the control service's URL and tokens, the run's scaled settings in
    run.env, a clip uploaded and completed, the same status through the API."""
    (first,) = walkthrough("first shell")
    second = walkthrough("second shell")
    assert first == "lava run" and second[0] == "source .lava/run.env"
    env_file = tmp_path / ".lava" / "run.env"
    # the test's namespace and broker; everything else as a new user has it (state in ./.lava)
    env = dict(os.environ, LAVA_BROKER__AMQP_URL=rabbitmq, LAVA_NAMESPACE=namespace)
    for name in ("AWS_ENDPOINT_URL", "LAVA_STATE_DIR", "LAVA_CONTROL__TOKENS"):
        env.pop(name, None)
    output = (tmp_path / "run.out").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "lava", *shlex.split(first)[1:]],
        cwd=tmp_path,
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
        # the run's scaled durations, so another shell ages objects as the run does
        assert "export LAVA_DISPATCH__RESEND_INTERVAL_SECONDS=8.64" in text, text
        assert "export LAVA_CONTROL_URL=http://127.0.0.1:" in text
        operator = wait_for_text(tmp_path / "run.out", r"operator token: (lava_\S+)", process)
        assert f"export LAVA_CONTROL_TOKEN={operator.group(1)}" in text, text

        prefix = second[0]
        results = []
        for command in second[1:]:
            done = another_shell(tmp_path, f"{prefix} && {command}")
            assert done.returncode == 0, (command, done.stdout, done.stderr)
            results.append(done)
        api_status = json.loads(results[-2].stdout)
        assert api_status["waiting_by_age"].keys() == {
            "< 1 min",
            "1-10 min",
            "10-60 min",
            "1-24 h",
            "> 1 day",
            "held",  # objects whose job takes no input, apart from the age bands
        }
        deadline = time.monotonic() + 180
        while True:
            status = another_shell(tmp_path, f"{prefix} && lava status")
            assert status.returncode == 0, status.stderr
            if "clips: completed 1" in status.stdout:
                break
            assert "failed" not in status.stdout, status.stdout
            assert time.monotonic() < deadline, status.stdout
            time.sleep(1)
        assert f"namespace {namespace}: 1 task(s)" in status.stdout
        api = another_shell(tmp_path, f"{prefix} && {second[-2]}")
        assert json.loads(api.stdout)["clips_by_outcome"] == {"completed": 1}
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
    assert "'control': 0" in log
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


def test_a_run_keeps_the_tokens_a_shell_already_holds(tmp_path: Path) -> None:
    env_file = tmp_path / "run.env"
    made = control_access({}, env_file)
    assert made.created and made.operator and made.viewer
    values = made.env("http://127.0.0.1:1")
    # a shell that sourced a run's env file keeps its tokens, and so does a file a killed run
    # left behind
    again = control_access(values, env_file)
    assert not again.created and again.operator == made.operator
    assert again.entries == made.entries
    write_env_file(env_file, [f"export {k}={shlex.quote(v)}" for k, v in values.items()])
    from_file = control_access({}, env_file)
    assert not from_file.created and from_file.viewer == made.viewer


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
