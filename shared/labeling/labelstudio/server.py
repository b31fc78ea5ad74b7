"""Running a Label Studio server for local runs, tests and the demo.

Label Studio pins libraries that clash with ours (its boto3 against aiobotocore's botocore), so
it lives in its own virtual environment and runs as a separate process (handbook):
- installed once per machine under ``LAVA_LABELSTUDIO_HOME`` (default
  ``~/.cache/lava/labelstudio-<version>``; ``scripts/labelstudio.sh`` does it);
- a data directory migrated once (``label-studio init``, ~25 s or more) is kept there as a
  template and copied per run (a start from a migrated copy takes seconds);
- SQLite, bound to 127.0.0.1, telemetry and version checks off, legacy token auth;
- SSRF protection off so its webhooks may reach the listener on 127.0.0.1 - acceptable for a
  server that only a local run talks to; a production server keeps it on and reaches the
  listener by a routable name.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from shared.listening import hand_over, listen, port_of

VERSION = "1.23.2"
USER = "lava@localhost"
LAUNCH = Path(__file__).with_name("launch.py")


class LabelStudioNotInstalled(RuntimeError):
    pass


class LabelStudioInitFailed(RuntimeError):
    """``label-studio init`` exited non-zero: its last line of error output."""


def home() -> Path:
    default = Path.home() / ".cache" / "lava" / f"labelstudio-{VERSION}"
    return Path(os.environ.get("LAVA_LABELSTUDIO_HOME", str(default)))


def executable(root: Path | None = None) -> Path:
    return (root or home()) / "venv" / "bin" / "label-studio"


def python(root: Path | None = None) -> Path:
    """Label Studio's interpreter (it runs :data:`LAUNCH`)."""
    return (root or home()) / "venv" / "bin" / "python"


def installed(root: Path | None = None) -> bool:
    return (executable(root).parent.parent / ".lava-complete").exists()


def base_env(data_dir: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "LAVA_", "VIRTUAL_ENV", "PYTHON"))
    }
    env.update(
        {
            "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir),
            "LATEST_VERSION_CHECK": "false",
            "COLLECT_ANALYTICS": "false",
            "SSRF_PROTECTION_ENABLED": "false",
            "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
            "DJANGO_DB": "sqlite",
        }
    )
    return env


def password(root: Path | None = None) -> str:
    """The template user's password (for a person looking at a local run's server)."""
    found = (root or home()) / "template.password"
    return found.read_text().strip() if found.exists() else ""


def template(root: Path | None = None) -> tuple[Path, str]:
    """The migrated data directory and its user's API token (made once, then reused)."""
    root = root or home()
    done = root / "template"
    token_file = root / "template.token"
    if done.exists() and token_file.exists():
        return done, token_file.read_text().strip()
    # Two runs on one machine (two CI clones, xdist workers) may both find no template: the
    # first to take the lock makes it, the others wait and reuse it. Without the lock a
    # second run overwrote the token file of the template the first had already renamed.
    root.mkdir(parents=True, exist_ok=True)
    with (root / "template.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.exists() and token_file.exists():
            return done, token_file.read_text().strip()
        return _make_template(root, done, token_file)


def _make_template(root: Path, done: Path, token_file: Path) -> tuple[Path, str]:
    if not installed(root):
        raise LabelStudioNotInstalled(
            f"Label Studio {VERSION} is not installed under {root}; run scripts/labelstudio.sh"
        )
    work = root / f"template-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    token = secrets.token_hex(20)
    secret_password = secrets.token_urlsafe(12)
    init = subprocess.run(
        [
            str(executable(root)),
            "init",
            "--data-dir",
            str(work),
            "--username",
            USER,
            "--password",
            secret_password,
            "--user-token",
            token,
            "--enable-legacy-api-token",
        ],
        env=base_env(work),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        # Migrations take ~25 s idle, 140 s at load 10 and 682 s at load 40 (measured here):
        # a bound guards against a hang, not against a busy machine.
        timeout=1800,
    )
    if init.returncode != 0:
        shutil.rmtree(work, ignore_errors=True)
        # One line, without the command or the secrets on it (an argument error echoes them).
        lines = init.stderr.decode(errors="replace").strip().splitlines() or ["no output"]
        last = lines[-1].replace(secret_password, "***").replace(token, "***")
        raise LabelStudioInitFailed(
            f"label-studio init failed (exit {init.returncode}): {last[:500]}; "
            "reinstall with scripts/labelstudio.sh (its packages: requirements/labelstudio.lock)"
        )
    shutil.rmtree(done, ignore_errors=True)  # a half-made one from a killed run
    (root / "template.password").write_text(secret_password)
    work.rename(done)
    token_file.write_text(token)  # last: its presence says the template is whole
    return done, token


@dataclass
class LabelStudioServer:
    """A Label Studio process on a port bound here (0 = any free) and handed down to it."""

    run_dir: Path
    port: int = 0
    root: Path | None = None
    token: str = ""
    popen: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = None
    start_seconds: float = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def user(self) -> str:
        return USER

    @property
    def password(self) -> str:
        return password(self.root)

    def start(self, timeout: float = 180.0) -> None:
        source, self.token = template(self.root)
        data = self.run_dir / "labelstudio-data"
        shutil.rmtree(data, ignore_errors=True)
        shutil.copytree(source, data)
        self.log = (self.run_dir / "labelstudio.log").open("ab")
        began = time.monotonic()
        # Bound here, served by Label Studio through launch.py (runserver cannot take a socket
        # and `label-studio start` moves to the next port when its own answers).
        with listen("127.0.0.1", self.port) as sock:
            self.port = port_of(sock)
            handed = hand_over({"labelstudio": sock})
            self.popen = subprocess.Popen(
                [str(python(self.root)), str(LAUNCH), *self._start_args(data)],
                env={**base_env(data), **handed.env},
                stdout=self.log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                pass_fds=handed.fds,
                start_new_session=True,
            )
        while time.monotonic() - began < timeout:
            if self.popen.poll() is not None:
                raise RuntimeError(
                    f"Label Studio exited with {self.popen.returncode}; see "
                    f"{self.run_dir / 'labelstudio.log'}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1):
                    self.start_seconds = time.monotonic() - began
                    return
            except (urllib.error.URLError, OSError):
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"Label Studio did not answer within {timeout:.0f} s")

    def _start_args(self, data: Path) -> list[str]:
        return [
            "start",
            "--internal-host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--no-browser",
            "--data-dir",
            str(data),
            "--enable-legacy-api-token",
        ]

    def rss_bytes(self) -> int:
        """Resident memory of the server's process group (Linux /proc)."""
        if self.popen is None:
            return 0
        total = 0
        for status in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = status.read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) == self.popen.pid:  # process group id
                    total += int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        return total

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)
        if self.log is not None:
            self.log.close()
            self.log = None
