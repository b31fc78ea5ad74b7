"""``python -m lava.drill services.<name>``: run a service (or emulator) module with the faults
of ``LAVA_FAULT__*`` injected - the explicit opt-in the local runner uses for drills.

The production entry point, ``python -m services.<name>``, never loads fault settings.
"""

from __future__ import annotations

import runpy
import sys

from devstack import faults


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        sys.exit("usage: python -m lava.drill <module>  (e.g. services.dispatcher)")
    faults.enable(faults.FaultSettings.load().fault)
    runpy.run_module(argv[0], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
