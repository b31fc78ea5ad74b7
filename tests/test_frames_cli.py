"""`lava frames extract` bounds its decoders by decode memory, as the ingest service does."""

from __future__ import annotations

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
