"""Ports in tests: a closed port held for a test, and what a process listens on (Linux /proc)."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def closed_port(host: str = "127.0.0.1") -> Iterator[int]:
    """A port nothing answers on while the block runs: bound here and never listening, so a
    connection to it is refused at once and no other process can start listening on it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        yield sock.getsockname()[1]


def socket_inode(sock: socket.socket) -> int:
    return os.fstat(sock.fileno()).st_ino


def listening_inodes() -> dict[int, int]:
    """Every listening TCP socket on the machine (this network namespace): inode -> port."""
    found: dict[int, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        path = Path(table)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":  # TCP_LISTEN
                found[int(fields[9])] = int(fields[1].rsplit(":", 1)[1], 16)
    return found


def listening_of(pid: int) -> dict[int, int]:
    """The listening sockets process ``pid`` holds: inode -> port."""
    listening = listening_inodes()
    held: dict[int, int] = {}
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inode = int(target[len("socket:[") : -1])
            if inode in listening:
                held[inode] = listening[inode]
    return held


class PortHog:
    """Holds ports busy, as a loaded CI machine does: the project's default ports, the next
    ports the kernel offers, and more taken in the background for as long as it runs."""

    DEFAULTS = (4566, 8080, 8081, 8090, 8091)

    def __init__(self, ahead: int = 200, more: int = 300) -> None:
        self.ahead, self.more = ahead, more
        self.held: list[socket.socket] = []
        self.busy_defaults: list[int] = []  # already taken by someone else: busy all the same
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._keep_taking, daemon=True)

    def _take(self, port: int = 0) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen()
        except OSError:
            sock.close()
            self.busy_defaults.append(port)
            return
        self.held.append(sock)

    def _keep_taking(self) -> None:
        for _ in range(self.more):
            if self._stop.wait(0.01):  # pacing only: a steady trickle while others start
                return
            self._take()

    def ports(self) -> set[int]:
        return {sock.getsockname()[1] for sock in list(self.held)}

    def __enter__(self) -> PortHog:
        for port in self.DEFAULTS:
            self._take(port)
        for _ in range(self.ahead):
            self._take()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        for sock in self.held:
            sock.close()
