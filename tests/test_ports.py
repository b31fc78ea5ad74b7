"""Every server serves on a socket bound before anyone knows its port (shared/listening.py)."""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from lava.local_pipeline import LocalPipeline, PipelineConfig
from shared.listening import (
    ENV,
    HandOverError,
    PortInUse,
    hand_over,
    inherited,
    listen,
    port_of,
)
from tests.support.ports import PortHog, listening_of, socket_inode

ROOT = Path(__file__).resolve().parents[1]


def test_a_bound_port_cannot_be_taken_before_its_server_serves_on_it() -> None:
    with listen() as sock:
        port = port_of(sock)
        thief = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        with thief, pytest.raises(OSError) as taken:
            thief.bind(("127.0.0.1", port))
        assert taken.value.errno == errno.EADDRINUSE
        with pytest.raises(PortInUse, match=f"port {port} on 127.0.0.1 is already in use"):
            listen(port=port)


def test_a_child_serves_on_the_socket_it_is_handed_and_binds_nothing() -> None:
    child = textwrap.dedent(
        """
        from shared.listening import ENV, inherited
        import os
        sock = inherited("health")
        print(sock.getsockname()[1], ENV in os.environ, flush=True)
        conn, _ = sock.accept()
        conn.sendall(b"served")
        conn.close()
        """
    )
    with listen() as sock:
        port = port_of(sock)
        handed = hand_over({"health": sock})
        proc = subprocess.Popen(
            [sys.executable, "-c", child],
            cwd=ROOT,
            env={**os.environ, **handed.env},
            pass_fds=handed.fds,
            stdout=subprocess.PIPE,
            text=True,
        )
        with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
            assert conn.recv(16) == b"served"
        out, _ = proc.communicate(timeout=30)
    # the port it reports is the parent's; the entry left its environment once claimed
    assert out.split() == [str(port), "False"]


def test_a_wrong_hand_over_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(HandOverError, match="not <role>=<descriptor>"):
        inherited("health", {ENV: "health=three"})
    with pytest.raises(HandOverError, match="not <role>=<descriptor>"):
        inherited("health", {ENV: "ftp=3"})
    with (
        open(tmp_path / "file", "w") as not_a_socket,
        pytest.raises(HandOverError, match=r"descriptor \d+ for health is no socket"),
    ):
        inherited("health", {ENV: f"health={not_a_socket.fileno()}"})
    with socket.socket() as unbound:
        with pytest.raises(HandOverError, match="is not a listening TCP socket"):
            inherited("health", {ENV: f"health={unbound.fileno()}"})
        assert unbound.fileno() >= 0  # refused, and left open for its owner
    with pytest.raises(ValueError, match="unknown socket role"):
        hand_over({"ftp": socket.socket()})
    assert inherited("health", {}) is None


def test_a_socket_is_claimed_once() -> None:
    with listen() as sock:
        environ = dict(hand_over({"health": sock}).env)
        environ[ENV] += f",webhook={sock.fileno()}"
        claimed = inherited("health", environ)
        assert claimed is not None and port_of(claimed) == port_of(sock)
        assert environ[ENV] == f"webhook={sock.fileno()}"
        assert inherited("health", environ) is None
        claimed.detach()  # the same descriptor as sock, which closes it


@pytest.mark.integration
async def test_the_pipeline_starts_while_the_ports_it_could_pick_are_busy(
    tmp_path: Path, rabbitmq: str
) -> None:
    """The defaults (4566, 8080, 8090, 8091), the next ports the kernel offers and a stream of
    others are held busy while moto, every service and the control service start; each serves
    on exactly the socket it was handed (a restart keeps it: test_e2e's killed services)."""
    config = PipelineConfig(
        namespace=f"p{uuid.uuid4().hex[:7]}",
        run_dir=tmp_path,
        ready_timeout_seconds=180,  # six processes importing at once on a loaded machine
    )
    with PortHog() as hog:
        held = hog.ports()
        run = LocalPipeline(config)
        try:
            await run.start((*config.services, "control"))
            assert run.moto is not None and run.moto.pid is not None
            assert set(listening_of(run.moto.pid).values()) == {run.moto.port}
            for service, process in run.processes.items():
                (sock,) = run.listening[service].values()
                # it answered /readyz on that port (start() waited for it) and holds no other
                assert listening_of(process.popen.pid) == {socket_inode(sock): process.port}
        finally:
            codes = await run.stop()
        assert hog.ports() >= held  # nothing of the hog's was taken over or closed
    assert {s: c for s, c in codes.items() if c not in (0, -9)} == {}


@pytest.mark.parametrize(
    ("handed", "says"),
    [
        ("moto=three", "LAVA_LISTEN_FDS: 'moto=three' is not <role>=<descriptor>"),
        ("moto=2", "LAVA_LISTEN_FDS: descriptor 2 for moto is no socket"),
    ],
)
def test_a_server_without_a_socket_to_serve_on_stops_with_one_line(handed: str, says: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "devstack.moto_server", "-p", "0"],
        cwd=ROOT,
        env={**os.environ, ENV: handed},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"cannot serve: {says}"), done.stderr
