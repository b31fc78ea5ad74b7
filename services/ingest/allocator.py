"""Give large freed buffers back to the system at once (glibc malloc).

glibc serves allocations above ``M_MMAP_THRESHOLD`` with their own mappings, returned to the
system on free - but it raises that threshold each time such a buffer is freed (up to 32 MiB
on 64-bit), after which decoded pictures, their copies and JPEGs come from the heaps of the
threads that made them and stay in the process after they are freed. Fixing the threshold
(which also turns that adjustment off, mallopt(3)) measured 10-20 MB lower peaks in
bench/ingest_memory_bench.py. ``MALLOC_MMAP_THRESHOLD_`` in the environment wins.
"""

from __future__ import annotations

import ctypes
import os

M_MMAP_THRESHOLD = -3  # <malloc.h>
THRESHOLD_BYTES = 128 * 1024  # glibc's initial value


def fix_mmap_threshold() -> bool:
    """True when glibc took the setting (False elsewhere, e.g. musl, or when overridden)."""
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    try:
        # The process's own symbols (dlopen(NULL)) hold libc's: no library search, whose
        # ctypes.util import (subprocess, shutil) would cost ~5 ms of `lava frames extract`'s
        # start.
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, THRESHOLD_BYTES))
