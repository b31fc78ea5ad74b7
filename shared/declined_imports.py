"""Optional libraries a pipeline service never uses, kept out of its process.

Some libraries import another one whenever it is installed: structlog imports rich (pretty
tracebacks on a terminal; services log JSON), greenlet and colorama; aiobotocore imports httpx
(an HTTP backend we do not configure: ours is aiohttp). rich is installed for the ``lava``
command, httpx and greenlet come with the dev dependencies, and each library falls back cleanly
when they are missing. Loaded anyway, they cost a service 5-6 MB of its peak memory
(docs/ingestperf.md). ``None`` in ``sys.modules`` is Python's documented way to make an import
fail with ModuleNotFoundError, as if the package were not installed.
"""

from __future__ import annotations

import sys

# Imported only "when installed" by the libraries named; never by our service code.
UNUSED_BY_SERVICES = ("rich", "httpx", "greenlet", "colorama")


def decline(names: tuple[str, ...] = UNUSED_BY_SERVICES) -> list[str]:
    """Make importing ``names`` fail in this process; before anything imports them.

    Returns the names that were already imported (declining those is too late: they stay).
    """
    late = [name for name in names if sys.modules.get(name) is not None]
    for name in names:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]
    return late
