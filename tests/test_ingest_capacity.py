"""Clips, decoders and uploads from the pod's limits; the memory formula they imply."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from services.ingest.budget import ByteBudget
from services.ingest.capacity import BASE_BYTES, MB, derive_capacity
from shared.cgroup import Limits, read_limits
from shared.settings import Settings

GB = 1024 * MB


def _limits(cpus: float | None, memory: int | None) -> Limits:
    return Limits(cpus=cpus, memory_bytes=memory, version=2, online=8)


def test_one_clip_per_cpu_sharing_the_decoder_threads(settings: Settings) -> None:
    capacity = derive_capacity(settings, _limits(4, None))
    assert (capacity.clips, capacity.decode_threads) == (4, 1)
    capacity = derive_capacity(settings.replace(ingest__concurrency=2), _limits(4, None))
    assert (capacity.clips, capacity.decode_threads) == (2, 2)


def test_a_tight_memory_limit_takes_fewer_clips(settings: Settings) -> None:
    roomy = derive_capacity(settings, _limits(4, 4 * GB))
    assert roomy.clips == 4 and roomy.memory_bytes() <= 0.85 * 4 * GB
    tight = derive_capacity(settings, _limits(4, 700 * MB))
    assert 1 <= tight.clips < 4
    assert tight.memory_bytes() <= 0.85 * 700 * MB
    # too little for even one clip: still one (the pod is undersized; the log says so)
    assert derive_capacity(settings, _limits(4, 128 * MB)).clips == 1


def test_settings_override_the_derivation(settings: Settings) -> None:
    forced = settings.replace(
        ingest__concurrency=3, ingest__decode_threads=2, ingest__upload_concurrency=7
    )
    capacity = derive_capacity(forced, _limits(1, 128 * MB))
    assert (capacity.clips, capacity.decode_threads, capacity.uploads) == (3, 2, 7)


def test_uploads_follow_the_jpeg_budget(settings: Settings) -> None:
    assert derive_capacity(settings, _limits(2, None)).uploads == 4  # 8 MiB / 2.8 MB, at least 4
    mid = settings.replace(ingest__jpeg_buffer_mb=16.0)
    assert derive_capacity(mid, _limits(2, None)).uploads == 5
    small = settings.replace(ingest__jpeg_buffer_mb=1.0)
    assert derive_capacity(small, _limits(2, None)).uploads == 4
    big = settings.replace(ingest__jpeg_buffer_mb=200.0)
    assert derive_capacity(big, _limits(2, None)).uploads == 16


def test_the_memory_formula_does_not_depend_on_the_clip(settings: Settings) -> None:
    capacity = derive_capacity(settings, _limits(2, None))
    hd, uhd = capacity.memory_bytes(1920, 1080), capacity.memory_bytes(3840, 2160)
    assert BASE_BYTES < hd < uhd <= capacity.memory_bytes()  # the largest frame bounds it
    # one decoder of 10 pictures at 4K (12.4 MB each) is more than the 64 MiB decode memory
    per_clip_4k = capacity.clip_bytes(3840, 2160)
    assert per_clip_4k >= 10 * 3840 * 2160 * 3 // 2


def test_the_derivation_reads_the_cgroup_files(tmp_path: Path, settings: Settings) -> None:
    root = tmp_path / "cg"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpu memory\n")
    (root / "cpu.max").write_text("300000 100000\n")
    (root / "memory.max").write_text(f"{8 * GB}\n")
    proc = tmp_path / "cgroup"
    proc.write_text("0::/\n")
    capacity = derive_capacity(settings, read_limits(root, proc))
    assert capacity.clips == min(3, capacity.limits.usable_cpus())


async def test_the_byte_budget_holds_producers_back_and_lets_a_big_item_pass_alone() -> None:
    budget = ByteBudget(10)
    await budget.acquire(6)
    waiting = asyncio.create_task(budget.acquire(6))
    await asyncio.sleep(0)
    assert not waiting.done()  # 12 > 10
    budget.release(6)
    await asyncio.wait_for(waiting, 1)
    assert budget.held == 6
    budget.release(6)
    await asyncio.wait_for(budget.acquire(50), 1)  # alone, larger than the budget
    assert budget.peak == 50


@pytest.fixture
def settings() -> Settings:
    return Settings()


def test_ingest_prefetches_only_its_clip_slots_unless_told(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from services.ingest.service import ingest_settings
    from shared.settings import IngestSettings

    monkeypatch.delenv("LAVA_BROKER__PREFETCH", raising=False)
    monkeypatch.setenv("LAVA_INGEST__CONCURRENCY", "3")
    assert ingest_settings(IngestSettings.load()).broker.prefetch == 3
    monkeypatch.setenv("LAVA_BROKER__PREFETCH", "9")
    assert ingest_settings(IngestSettings.load()).broker.prefetch == 9
