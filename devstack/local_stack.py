"""The local stand-in for AWS: a moto server process, started, checked and stopped by pid.

Used by `lava stack up/status/down`, the test fixtures and the demo, so all three start the
emulator the same way: the port is bound here (port 0 = any free) and the listening socket is
handed down to the server process (:mod:`shared.listening`), so no other process can take it
in between.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from shared.listening import PortInUse, hand_over, listen, port_of

RABBITMQ_START_HINT = "rabbitmq-server -detached   (as root; or: systemctl start rabbitmq-server)"


def endpoint_answers(endpoint: str, timeout: float = 2.0) -> bool:
    """Whether an AWS-style endpoint answers HTTP at all (any status counts)."""
    try:
        with urllib.request.urlopen(endpoint, timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False


@dataclass
class MotoServer:
    """A moto server subprocess on one port (S3, SNS, SQS, DynamoDB and more); port 0 = any
    free one, known once :meth:`start` has bound it (``{port}`` in ``log_path`` becomes it)."""

    host: str = "127.0.0.1"
    port: int = 4566
    log_path: Path | None = None
    pid: int | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        try:
            sock = listen(self.host, self.port)
        except PortInUse:
            raise RuntimeError(
                f"port {self.port} is already in use; pick another with --port"
            ) from None
        self.port = port_of(sock)
        if self.log_path is not None:
            self.log_path = Path(str(self.log_path).replace("{port}", str(self.port)))
        handed = hand_over({"moto": sock})
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        server = [sys.executable, "-m", "devstack.moto_server"]
        with sock:  # the server holds its own copy from here on
            proc = subprocess.Popen(
                [*server, "-H", self.host, "-p", str(self.port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **handed.env},
                pass_fds=handed.fds,
                start_new_session=True,  # survives the CLI that started it; stopped by pid
            )
        self.pid = proc.pid
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"moto server exited with code {proc.returncode}"
                    + (f"; see {self.log_path}" if self.log_path else "")
                )
            if endpoint_answers(f"{self.endpoint}/moto-api/"):
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"moto server did not answer on {self.endpoint} within {timeout}s")

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop the server; True if a process was stopped."""
        if self.pid is None:
            return False
        pid, self.pid = self.pid, None
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _alive(pid):
                return True
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        return True


def _is_moto(pid: int) -> bool:
    """Whether ``pid`` is (still) a moto server - a recycled pid must never be signalled."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc to ask (not Linux): trust the state file
    return b"devstack.moto_server" in cmdline or b"moto.server" in cmdline


def _alive(pid: int) -> bool:
    try:
        # Reap it if it is our child, so it does not linger as a zombie.
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@dataclass
class StackState:
    """What `lava stack up` started, kept in the state dir so `down` can stop it by pid."""

    state_dir: Path

    def _path(self, port: int) -> Path:
        return self.state_dir / f"moto-{port}.json"

    def save(self, server: MotoServer) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._path(server.port).write_text(
            json.dumps({"pid": server.pid, "host": server.host, "port": server.port})
        )

    def load(self, port: int) -> MotoServer | None:
        path = self._path(port)
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        server = MotoServer(host=data["host"], port=data["port"], pid=data["pid"])
        if server.pid is not None and not (_alive(server.pid) and _is_moto(server.pid)):
            server.pid = None
        return server

    def forget(self, port: int) -> None:
        self._path(port).unlink(missing_ok=True)

    def known_ports(self) -> list[int]:
        if not self.state_dir.exists():
            return []
        return sorted(int(p.stem.split("-", 1)[1]) for p in self.state_dir.glob("moto-*.json"))
