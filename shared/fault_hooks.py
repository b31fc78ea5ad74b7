"""The seam where a drill injects faults into a process; production installs nothing here.

The AWS clients (``shared.aws``), the bus (``shared.bus``) and the runtime's metrics ask these
hooks; with no injector installed each is a no-op, which is what a pipeline service runs. The
injector itself is local tooling (``devstack.faults``): ``python -m lava.drill`` and the tests
install it, so no pipeline service's imports reach it (tests/test_architecture.py).
"""

from __future__ import annotations

from typing import Any, Protocol


class FaultInjector(Protocol):
    """What a drill changes in a process."""

    def on_aws_client(self, client: Any, service: str) -> None:
        """Called once for each AWS client the process creates (a throttle drill hooks it)."""

    def duplicate_delivery(self) -> bool:
        """Whether every event is published twice (an idempotency drill)."""

    def injected(self, service: str) -> int:
        """AWS calls to ``service`` answered with an injected fault so far (on /metrics)."""


_installed: FaultInjector | None = None


def install(injector: FaultInjector | None) -> None:
    """Inject ``injector``'s faults from now on (None: inject nothing)."""
    global _installed
    _installed = injector


def on_aws_client(client: Any, service: str) -> None:
    if _installed is not None:
        _installed.on_aws_client(client, service)


def duplicate_delivery() -> bool:
    return _installed is not None and _installed.duplicate_delivery()


def injected(service: str) -> int:
    return 0 if _installed is None else _installed.injected(service)
