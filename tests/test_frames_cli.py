"""`lava frames extract` bounds its decoders by decode memory, as the ingest service does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import services.ingest.extract as extract
from lava.commands.frames import DECODE_MEMORY_MB, MB, frames
from services.ingest.extract import PICTURES_PER_DECODER, FrameExtractor, picture_bytes
from shared.settings import IngestConfig
from tests.support.clips import small_clip


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_clip(tmp_path_factory.mktemp("cli"), seconds=1, gop=10).video


@pytest.fixture()
def built(monkeypatch: pytest.MonkeyPatch) -> list[FrameExtractor]:
    """Every FrameExtractor the command builds."""
    made: list[FrameExtractor] = []

    class Recorded(FrameExtractor):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(extract, "FrameExtractor", Recorded)
    monkeypatch.delenv("LAVA_INGEST__DECODE_MEMORY_MB", raising=False)
    return made


def _extract(clip: Path, out: Path, *extra: str, env: dict[str, str] | None = None) -> str:
    args = ["extract", str(clip), "--fps", "5", "--out", str(out), *extra]
    result = CliRunner().invoke(frames, args, env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert len(list(out.glob("*.jpg"))) == 5
    return result.output


def test_the_default_cap_is_the_services_default() -> None:
    assert IngestConfig.model_fields["decode_memory_mb"].default == DECODE_MEMORY_MB


def test_frames_extract_caps_decoders_by_decode_memory(
    clip: Path, tmp_path: Path, built: list[FrameExtractor]
) -> None:
    per_decoder = PICTURES_PER_DECODER * picture_bytes(320, 180)
    output = _extract(clip, tmp_path / "default")
    assert built[-1].decode_threads <= max(1, int(DECODE_MEMORY_MB * MB) // per_decoder)
    assert f"within {DECODE_MEMORY_MB:g} MiB" in output
    # room for exactly one decoder of this clip's pictures: one decoder thread, not one per CPU
    one = f"{per_decoder * 1.5 / MB:.3f}"
    output = _extract(clip, tmp_path / "option", "--decode-memory-mb", one)
    assert built[-1].decode_threads == 1 and built[-1].encode_threads == 1
    assert "1 decoder thread within" in output


def test_frames_extract_reads_the_services_setting(
    clip: Path, tmp_path: Path, built: list[FrameExtractor]
) -> None:
    output = _extract(clip, tmp_path / "env", env={"LAVA_INGEST__DECODE_MEMORY_MB": "1"})
    assert built[-1].decode_threads == 1
    assert "1 decoder thread within 1 MiB" in output


def test_the_command_ends_without_teardown_and_loses_no_output(clip: Path, tmp_path: Path) -> None:
    """`python -m lava frames extract` skips the interpreter's teardown (lava.cli.skip_teardown):
    its summary still reaches a pipe, every frame is on disk, and the exit status is 0; a bad
    clip still fails with its one-line error."""
    out = tmp_path / "frames"
    command = [sys.executable, "-m", "lava", "frames", "extract", "--fps", "5", "--out"]
    done = subprocess.run([*command, str(out), str(clip)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("5 frames from 320x180 h264"), done.stdout
    assert sorted(p.name for p in out.glob("*.jpg")) == [f"{i:06d}.jpg" for i in range(5)]
    assert all(p.read_bytes().endswith(b"\xff\xd9") for p in out.glob("*.jpg"))  # whole JPEGs

    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    failed = subprocess.run(
        [*command, str(tmp_path / "no"), str(bad)], capture_output=True, text=True
    )
    assert failed.returncode == 1 and failed.stderr.startswith("Error: "), failed.stderr


def test_the_malloc_threshold_is_set_without_a_library_search() -> None:
    code = (
        "import sys; from services.ingest.allocator import fix_mmap_threshold; "
        "print(fix_mmap_threshold(), 'ctypes.util' in sys.modules)"
    )
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_MMAP_THRESHOLD_"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.stdout.split() == ["True", "False"], done.stderr
