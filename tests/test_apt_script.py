"""scripts/apt.sh: set-up waits while another apt-get holds its lock, and fails at once on
anything else (a second test run installing chromium beside the first failed on the lock)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="as root, apt_get runs apt-get itself")


def _apt_get(tmp_path: Path, fake: str, *, wait: int = 600) -> subprocess.CompletedProcess[str]:
    """`apt_get update -qq` with ``fake`` as apt-get (a bash body; $calls counts its runs)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub = bin_dir / "apt-get"
    stub.write_text(
        f'#!/bin/bash\necho "$*" >> {tmp_path}/args\ncalls=$(wc -l < {tmp_path}/args)\n{fake}\n'
    )
    stub.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "APT_LOCK_POLL_SECONDS": "0",
        "APT_LOCK_WAIT_SECONDS": str(wait),
    }
    script = f"set -euo pipefail; source {ROOT / 'scripts/apt.sh'}; apt_get update -qq"
    return subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True)


LOCKED = (
    "echo 'E: Could not get lock /var/lib/apt/lists/lock. It is held by process 1 (apt-get)' >&2"
)


def test_a_held_lock_is_waited_for(tmp_path: Path) -> None:
    done = _apt_get(tmp_path, f'if [ "$calls" -le 2 ]; then {LOCKED}; exit 100; fi')
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "args").read_text().count("update -qq") == 3
    assert "another apt-get holds its lock; waiting" in done.stderr
    assert "DPkg::Lock::Timeout=600" in (tmp_path / "args").read_text()  # dpkg's lock too


def test_any_other_failure_is_reported_at_once(tmp_path: Path) -> None:
    done = _apt_get(tmp_path, "echo 'E: Unable to locate package nope' >&2; exit 100")
    assert done.returncode == 1
    assert done.stderr.strip() == "E: Unable to locate package nope"
    assert (tmp_path / "args").read_text().count("\n") == 1


def test_a_lock_held_past_the_wait_fails_with_apts_message(tmp_path: Path) -> None:
    done = _apt_get(tmp_path, f"{LOCKED}; exit 100", wait=0)
    assert done.returncode == 1
    assert "Could not get lock /var/lib/apt/lists/lock" in done.stderr
