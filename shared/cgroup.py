"""The CPU and memory a process may use, from its cgroup (Kubernetes limits land there).

``os.cpu_count()`` reports the node's cores, not the pod's share; sizing thread pools or
concurrency from it over-subscribes a pod limited to one CPU and ignores its memory limit.

- cgroup v2 (one unified hierarchy): ``cpu.max`` is ``"<quota> <period>"`` or ``"max <period>"``;
  ``memory.max`` is bytes or ``"max"`` (kernel docs, Documentation/admin-guide/cgroup-v2.rst).
- cgroup v1: ``cpu/cpu.cfs_quota_us`` (-1 = none) over ``cpu/cpu.cfs_period_us``;
  ``memory/memory.limit_in_bytes`` (a huge value, about 2**63, means none).

A process's own cgroup is named in ``/proc/self/cgroup``; inside a container with a cgroup
namespace it is ``/`` and the files sit at the mount's root. A limit set on an ancestor also
applies, so the tightest one on the way to the root wins.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_SELF_CGROUP = Path("/proc/self/cgroup")
# cgroup v1 reports "no limit" as the largest page-aligned signed 64-bit value.
_V1_UNLIMITED = 2**62


@dataclass(frozen=True)
class Limits:
    """What the cgroup allows; ``None`` where it sets no limit."""

    cpus: float | None
    memory_bytes: int | None
    version: int | None  # 2, 1, or None when no cgroup files were found
    online: int = 0  # CPUs this process may run on (affinity); 0 = ask the system

    def usable_cpus(self) -> int:
        """Whole CPUs to size thread pools by: the quota rounded up, at most the online ones."""
        online = self.online or _online_cpus()
        if self.cpus is None:
            return online
        return max(1, min(online, math.ceil(self.cpus - 1e-9)))


def _online_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _own_paths(proc_cgroup: Path) -> dict[str, str]:
    """Controller (``""`` for v2) -> the process's cgroup path, from /proc/self/cgroup."""
    paths: dict[str, str] = {}
    for line in (_read(proc_cgroup) or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        for controller in controllers.split(",") if controllers else [""]:
            paths[controller] = path
    return paths


def _candidates(mount: Path, own: str | None) -> list[Path]:
    """The process's cgroup directory and its ancestors up to the mount (deepest first)."""
    dirs: list[Path] = []
    if own:
        relative = Path(own.lstrip("/"))
        while relative != Path("."):
            dirs.append(mount / relative)
            relative = relative.parent
    dirs.append(mount)
    return [d for d in dirs if d.is_dir()]


def _v2_cpus(text: str | None) -> float | None:
    if not text:
        return None
    quota, _, period = text.partition(" ")
    if quota == "max":
        return None
    try:
        return int(quota) / int(period or "100000")
    except ValueError:
        return None


def _v2_memory(text: str | None) -> int | None:
    if not text or text == "max":
        return None
    try:
        return int(text)
    except ValueError:
        return None


def _v1_cpus(quota: str | None, period: str | None) -> float | None:
    try:
        q, p = int(quota or "-1"), int(period or "100000")
    except ValueError:
        return None
    return q / p if q > 0 and p > 0 else None


def _v1_memory(text: str | None) -> int | None:
    try:
        value = int(text or "0")
    except ValueError:
        return None
    return value if 0 < value < _V1_UNLIMITED else None


def _tightest(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def read_limits(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_SELF_CGROUP) -> Limits:
    """The CPU and memory limits of this process's cgroup (v2, else v1), or none found."""
    own = _own_paths(proc_cgroup)
    if (root / "cgroup.controllers").exists():  # v2: one hierarchy
        dirs = _candidates(root, own.get(""))
        cpus = _tightest([_v2_cpus(_read(d / "cpu.max")) for d in dirs])
        memory = _tightest([_v2_memory(_read(d / "memory.max")) for d in dirs])
        return Limits(cpus, None if memory is None else int(memory), 2)
    cpu_mount = next((root / n for n in ("cpu", "cpu,cpuacct") if (root / n).is_dir()), None)
    memory_mount = root / "memory"
    if cpu_mount is None and not memory_mount.is_dir():
        return Limits(None, None, None)
    cpus = memory = None
    if cpu_mount is not None:
        cpu_dirs = _candidates(cpu_mount, own.get("cpu"))
        cpus = _tightest(
            [
                _v1_cpus(_read(d / "cpu.cfs_quota_us"), _read(d / "cpu.cfs_period_us"))
                for d in cpu_dirs
            ]
        )
    if memory_mount.is_dir():
        memory_dirs = _candidates(memory_mount, own.get("memory"))
        memory = _tightest([_v1_memory(_read(d / "memory.limit_in_bytes")) for d in memory_dirs])
    return Limits(cpus, None if memory is None else int(memory), 1)
