"""The moto server as the project runs it: moto's own app, DynamoDB atomic and key-ordered.

Real DynamoDB evaluates a ``ConditionExpression`` and writes the item as one atomic step; the
whole design leans on that (two dispatcher replicas, the idempotency guard, the emulator's
dedup). moto's server handles requests on threads and its DynamoDB backend takes no lock, so two
concurrent conditional writes can both pass their condition - rarely, and more often on a loaded
machine (a post-processing test saw two "first" claims once). Serialising DynamoDB requests gives
moto the service's atomicity; other services (SQS long polls in particular) stay concurrent.

SNS notifications are signed with the local signing key (:mod:`devstack.moto_sns_signing`), so
the listener verifies them as it verifies SNS's own.

And a Query reads one partition in key order, as DynamoDB's does, instead of moto's walk over the
whole table (:mod:`devstack.moto_indexes`): reads that are flat on AWS stay flat here. A
transaction's rollback keeps the items it names instead of a copy of each table
(:mod:`devstack.moto_transactions`): its cost follows its items, as on AWS.

``python -m devstack.moto_server -H 127.0.0.1 -p 4566``; :class:`devstack.local_stack.MotoServer`
binds the port itself and hands the listening socket down (:mod:`shared.listening`), so the
server never binds an address of its own. Either way it prints ``moto server listening on
<url>`` once it serves.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from shared.listening import exit_when_unservable, port_of, server_socket

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class AtomicDynamoDB:
    """WSGI middleware: one DynamoDB request at a time, the response produced under the lock."""

    def __init__(self, app: WsgiApp) -> None:
        self.app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if not str(environ.get("HTTP_X_AMZ_TARGET", "")).startswith("DynamoDB_"):
            return self.app(environ, start_response)
        with self._lock:
            return list(self.app(environ, start_response))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1", help="Address to bind.")
    parser.add_argument(
        "-p", "--port", type=int, default=4566, help="Port to listen on (0 = any free)."
    )
    parser.add_argument(
        "--sns-key-dir",
        type=Path,
        default=None,
        help="Directory of the SNS signing key and certificate (created if absent; default "
        "~/.cache/lava/local-sns).",
    )
    args = parser.parse_args(argv)
    with exit_when_unservable():  # before moto's imports: a wrong socket fails at once
        sock = server_socket("moto", args.host, args.port)
    serve(sock, args.host, args.sns_key_dir)


def serve(sock: socket.socket, host: str, sns_key_dir: Path | None = None) -> None:
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    from devstack import (
        local_sns_key,
        moto_instances,
        moto_memory,
        moto_sns_signing,
        moto_transactions,
    )
    from devstack.moto_indexes import install

    os.environ.setdefault("MOTO_PORT", str(port_of(sock)))  # moto builds some URLs from it
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    moto_sns_signing.install(local_sns_key.ensure(sns_key_dir))
    install()  # before serving; its structures change only under AtomicDynamoDB's lock
    moto_instances.install()  # else moto keeps every object it ever made (docs/soak.md)
    moto_transactions.install()  # a transaction costs its items, not a copy of its tables
    moto_memory.start_from_environment()
    app = DomainDispatcherApplication(create_backend_app)
    server = make_server(
        host,
        port_of(sock),
        AtomicDynamoDB(app),
        threaded=True,
        request_handler=MotoRequestHandler,
        fd=sock.fileno(),
    )
    print(f"moto server listening on http://{host}:{port_of(sock)}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
