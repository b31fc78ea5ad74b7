"""`label-studio start` serving on a listening socket handed down to it (run by its own venv).

Label Studio serves through Django's ``runserver``, which binds the address it is given and
cannot take a socket; and before that, ``label-studio start`` probes its port and silently moves
to the next one when something answers (``_get_free_port``). Both would re-open the race this
project closed (docs/ports.md). So :class:`LabelStudioServer` binds the port, hands the socket
down as ``LAVA_LISTEN_FDS=labelstudio=<fd>`` (:mod:`shared.listening`), and starts this script
with Label Studio's interpreter: it runs Label Studio's own ``main()`` with two changes - the
port is taken as given, and runserver's server adopts the handed-down socket instead of binding.

Only the standard library, Django and Label Studio are importable here (not this project's
packages): :mod:`shared.listening` is loaded from its file.
"""

from __future__ import annotations

import importlib.util
import socket
import sys
from pathlib import Path
from typing import Any

LISTENING = Path(__file__).resolve().parents[2] / "listening.py"


def handed_down() -> socket.socket:
    spec = importlib.util.spec_from_file_location("lava_listening", LISTENING)
    assert spec is not None and spec.loader is not None
    listening = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(listening)
    sock: socket.socket | None = listening.inherited("labelstudio")
    if sock is None:
        raise SystemExit("launch.py: no socket handed down for labelstudio (LAVA_LISTEN_FDS)")
    return sock


def adopting(sock: socket.socket) -> type[Any]:
    """Django's runserver server class, serving on ``sock`` instead of binding an address."""
    from django.core.servers.basehttp import WSGIServer  # type: ignore[import-not-found]

    class HandedDownServer(WSGIServer):  # type: ignore[misc]
        socket: Any

        def server_bind(self) -> None:
            self.socket.close()  # the unbound one socketserver made
            self.socket = sock
            self.server_address = sock.getsockname()
            self.server_name = socket.getfqdn(self.server_address[0])
            self.server_port = self.server_address[1]
            self.setup_environ()

    return HandedDownServer


def main() -> None:
    # Run as a script, its own folder heads sys.path; its modules (config.py, server.py...)
    # must not shadow Label Studio's or its libraries'.
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if not p or Path(p).resolve() != here]
    sock = handed_down()
    from django.core.management.commands import runserver  # type: ignore[import-not-found]
    from label_studio import server  # type: ignore[import-not-found]

    runserver.Command.server_cls = adopting(sock)
    server._get_free_port = lambda port, debug: port  # the handed-down port, as given
    sys.argv = ["label-studio", *sys.argv[1:]]
    sys.exit(server.main())


if __name__ == "__main__":
    main()
