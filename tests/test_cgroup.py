"""The pod's CPU and memory limits, read from fake cgroup files (v2 and v1)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from shared.cgroup import Limits, read_limits


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")


def _proc(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "proc-self-cgroup"
    path.write_text(text)
    return path


def test_v2_limits_at_the_namespace_root(tmp_path: Path) -> None:
    root = tmp_path / "cg"
    _write(
        root,
        {
            "cgroup.controllers": "cpu memory",
            "cpu.max": "150000 100000",
            "memory.max": str(512 * 2**20),
        },
    )
    limits = read_limits(root, _proc(tmp_path, "0::/\n"))
    assert limits == Limits(cpus=1.5, memory_bytes=512 * 2**20, version=2)
    assert replace(limits, online=8).usable_cpus() == 2  # a fractional quota rounds up
    assert replace(limits, online=1).usable_cpus() == 1  # never more than the CPUs online


def test_v2_unlimited(tmp_path: Path) -> None:
    root = tmp_path / "cg"
    _write(root, {"cgroup.controllers": "cpu memory", "cpu.max": "max 100000", "memory.max": "max"})
    limits = read_limits(root, _proc(tmp_path, "0::/\n"))
    assert limits == Limits(cpus=None, memory_bytes=None, version=2)
    assert replace(limits, online=4).usable_cpus() == 4


def test_v2_the_tightest_limit_on_the_way_to_the_root_wins(tmp_path: Path) -> None:
    root = tmp_path / "cg"
    _write(
        root,
        {
            "cgroup.controllers": "cpu memory",
            "kubepods/cpu.max": "400000 100000",
            "kubepods/memory.max": str(2 * 2**30),
            "kubepods/pod1/ctr/cpu.max": "max 100000",
            "kubepods/pod1/ctr/memory.max": str(300 * 2**20),
        },
    )
    limits = read_limits(root, _proc(tmp_path, "0::/kubepods/pod1/ctr\n"))
    assert limits.cpus == 4.0  # the container sets none, its ancestor does
    assert limits.memory_bytes == 300 * 2**20


def test_v1_limits(tmp_path: Path) -> None:
    root = tmp_path / "cg"
    _write(
        root,
        {
            "cpu,cpuacct/cpu.cfs_quota_us": "50000",
            "cpu,cpuacct/cpu.cfs_period_us": "100000",
            "memory/memory.limit_in_bytes": str(256 * 2**20),
        },
    )
    limits = read_limits(root, _proc(tmp_path, "4:memory:/\n3:cpu,cpuacct:/\n"))
    assert limits == Limits(cpus=0.5, memory_bytes=256 * 2**20, version=1)
    assert replace(limits, online=2).usable_cpus() == 1


def test_v1_unlimited_reads_as_none(tmp_path: Path) -> None:
    root = tmp_path / "cg"
    _write(
        root,
        {
            "cpu/cpu.cfs_quota_us": "-1",
            "cpu/cpu.cfs_period_us": "100000",
            "memory/memory.limit_in_bytes": "9223372036854771712",
        },
    )
    assert read_limits(root, _proc(tmp_path, "")) == Limits(None, None, 1)


@pytest.mark.parametrize("garbage", ["", "lots", "12 x"])
def test_unreadable_values_mean_no_limit(tmp_path: Path, garbage: str) -> None:
    root = tmp_path / "cg"
    _write(root, {"cgroup.controllers": "", "cpu.max": garbage, "memory.max": garbage})
    assert read_limits(root, _proc(tmp_path, "0::/\n")) == Limits(None, None, 2)


def test_no_cgroup_files_at_all(tmp_path: Path) -> None:
    assert read_limits(tmp_path / "missing", _proc(tmp_path, "")) == Limits(None, None, None)
