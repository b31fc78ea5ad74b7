"""The control service as a real process against a test's namespace (moto + RabbitMQ)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from services.control.auth import Role, new_token
from shared.broker_identities import component_of
from shared.listening import hand_over, listen, port_of
from shared.settings import Settings
from tests.support.broker import provision_topology


@dataclass
class ControlProcess:
    url: str
    tokens: dict[str, str]  # role -> bearer token
    log_path: Path
    popen: subprocess.Popen[bytes]

    def auth(self, role: str) -> dict[str, str]:
        # the CSRF proof every state-changing request carries (services/control/csrf.py)
        return {"Authorization": f"Bearer {self.tokens[role]}", "X-CSRF-Token": "api"}

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def tokens() -> tuple[dict[str, str], str]:
    viewer, viewer_entry = new_token("vera", Role.VIEWER)
    operator, operator_entry = new_token("otto", Role.OPERATOR)
    return {"viewer": viewer, "operator": operator}, f"{viewer_entry},{operator_entry}"


def _shared_user(settings: Settings) -> bool:
    user = urlsplit(settings.broker.amqp_url.get_secret_value()).username or ""
    return component_of(settings.namespace, user) is None


def control_env(settings: Settings, port: int, entries: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "LAVA_NAMESPACE": settings.namespace,
        "AWS_ENDPOINT_URL": settings.aws.endpoint_url or "",
        "LAVA_BROKER__AMQP_URL": settings.broker.amqp_url.get_secret_value(),
        # the test's shared user unless the test runs control as its identity
        "LAVA_BROKER__LOCAL_ALL_IN_ONE": str(_shared_user(settings)).lower(),
        "LAVA_CONTROL__PORT": str(port),
        "LAVA_CONTROL__TOKENS": entries,
        "LAVA_LOG__FORMAT": "json",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=1):
            return True
    except (urllib.error.URLError, OSError):
        return False


@asynccontextmanager
async def control_service(
    settings: Settings, log_dir: Path, **extra: str
) -> AsyncIterator[ControlProcess]:
    await provision_topology(settings)  # services only check it (passive declares)
    known, entries = tokens()
    log_path = log_dir / "control.log"
    # Bound here and handed down (shared/listening.py): no port is picked before it is bound.
    with listen() as sock, log_path.open("ab") as log:
        handed = hand_over({"control": sock})
        popen = subprocess.Popen(
            [sys.executable, "-m", "services.control"],
            env={**control_env(settings, port_of(sock), entries, **extra), **handed.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            pass_fds=handed.fds,
        )
        port = port_of(sock)
    process = ControlProcess(f"http://127.0.0.1:{port}", known, log_path, popen)
    try:
        deadline = time.monotonic() + 60
        while not await asyncio.to_thread(_ready, process.url):
            if popen.poll() is not None:
                raise RuntimeError(f"control service exited: {process.log()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError("control service not ready within 60 s")
            await asyncio.sleep(0.2)
        yield process
    finally:
        if popen.poll() is None:
            popen.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(popen.wait, 20)
            except subprocess.TimeoutExpired:
                popen.kill()
                await asyncio.to_thread(popen.wait, 10)
