"""Listening sockets: bound by whoever starts a server and handed down to it by descriptor.

A port picked as "free now" and bound later by another process can be taken in between (a CI
run failed with ``EADDRINUSE`` that way). So no port is chosen before it is bound: the starter
binds (port 0 = the kernel picks one), knows the port at once, and passes the listening socket
to the child; the child serves on it and never binds an address of its own.

The hand-over is one environment variable, ``LAVA_LISTEN_FDS="health=5,webhook=7"`` (a role
name and a descriptor number the child inherits through ``subprocess.Popen(pass_fds=...)``).
A process started without it binds its configured host and port itself (port 0 = any free,
logged by the server that binds it). See docs/ports.md.
"""

from __future__ import annotations

import errno
import os
import socket
import sys
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass

ENV = "LAVA_LISTEN_FDS"
BACKLOG = 128
ROLES = ("health", "control", "webhook", "moto", "labelstudio")
"""health: a service's /healthz /readyz /metrics; control: the control API and dashboard;
webhook: the listener's Label Studio webhooks; moto: the local AWS stand-in; labelstudio: a
local Label Studio server (shared/labeling/labelstudio/launch.py)."""


class HandOverError(RuntimeError):
    """The handed-down sockets cannot be used (a wrong variable or descriptor)."""


class PortInUse(OSError):
    """The address asked for is already bound by something else."""


def listen(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A TCP socket bound to ``host:port`` and listening; port 0 = the kernel picks a free one.

    The port is held from this moment on: nothing else can take it before the server uses it.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=BACKLOG)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(exc.errno, f"port {port} on {host} is already in use") from None
        raise


def port_of(sock: socket.socket) -> int:
    port: int = sock.getsockname()[1]
    return port


@dataclass(frozen=True)
class HandOver:
    """What a child process needs to receive sockets: its variable and the descriptors."""

    env: dict[str, str]
    fds: tuple[int, ...]


def hand_over(sockets: Mapping[str, socket.socket]) -> HandOver:
    """``env`` goes into the child's environment and ``fds`` into ``Popen(pass_fds=...)``."""
    for role in sockets:
        if role not in ROLES:
            raise ValueError(f"unknown socket role {role!r} (known: {', '.join(ROLES)})")
    value = ",".join(f"{role}={sock.fileno()}" for role, sock in sockets.items())
    return HandOver({ENV: value}, tuple(sock.fileno() for sock in sockets.values()))


def _handed_down(value: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for entry in filter(None, value.split(",")):
        role, _, fd = entry.partition("=")
        if role not in ROLES or not fd.isdigit():
            raise HandOverError(
                f"{ENV}: {entry!r} is not <role>=<descriptor> (roles: {', '.join(ROLES)})"
            )
        found[role] = int(fd)
    return found


def inherited(role: str, environ: MutableMapping[str, str] | None = None) -> socket.socket | None:
    """The listening socket handed down for ``role``, or None when there is none.

    Claimed once: the entry leaves the environment, so nothing else in this process (and no
    process it starts) takes the same descriptor.
    """
    environ = os.environ if environ is None else environ
    handed = _handed_down(environ.get(ENV, ""))
    fd = handed.pop(role, None)
    if fd is None:
        return None
    rest = ",".join(f"{r}={d}" for r, d in handed.items())
    if rest:
        environ[ENV] = rest
    else:
        environ.pop(ENV, None)
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        raise HandOverError(f"{ENV}: descriptor {fd} for {role} is no socket ({exc})") from None
    if sock.type != socket.SOCK_STREAM or not sock.getsockopt(
        socket.SOL_SOCKET, socket.SO_ACCEPTCONN
    ):
        sock.detach()
        raise HandOverError(f"{ENV}: descriptor {fd} for {role} is not a listening TCP socket")
    return sock


def server_socket(role: str, host: str, port: int) -> socket.socket:
    """The socket handed down for ``role``, else one bound here to ``host:port``."""
    return inherited(role) or listen(host, port)


@contextmanager
def exit_when_unservable() -> Iterator[None]:
    """Around a server process's main: no socket to serve on (a wrong hand-over, a configured
    port in use) ends it with one line and exit code 2, not a traceback."""
    try:
        yield
    except (HandOverError, PortInUse) as exc:
        print(f"cannot serve: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
