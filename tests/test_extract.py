"""Frame extraction on real encoded clips: which frames, at which timestamps, bad input."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from lava.sample_clips import sidecar_path
from services.ingest.extract import ClipError, FrameExtractor, encode_jpeg, sample_times
from shared.taxonomy.records import ClipLabels
from shared.taxonomy.validation import validate_clip
from tests.support.clips import decode_all, encode_with, small_clip, truncate

SOURCE_FPS = 30


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    out = tmp_path_factory.mktemp("clips")
    return {gop: small_clip(out, seconds=3, gop=gop).video for gop in (5, 30, 90)}


def test_sample_times_pick_the_first_frame_at_or_after_each_time() -> None:
    times = [i / 30 for i in range(90)]
    picks = sample_times(times, 1)
    assert [(k, p) for k, _, p in picks] == [(0, 0), (1, 30), (2, 60)]
    # 7 fps does not divide 30: frame k is ceil(k * 30 / 7)
    assert [p for _, _, p in sample_times(times, 7)] == [math.ceil(k * 30 / 7) for k in range(21)]
    # variable frame timing: a gap makes the next frame serve the time inside the gap
    assert [p for _, _, p in sample_times([0.0, 0.1, 0.5, 0.6], 5)] == [0, 2, 2, 3]


@pytest.mark.parametrize("gop", [5, 30, 90])
@pytest.mark.parametrize("fps", [1, 2.5, 7, 30])
@pytest.mark.parametrize("threads", [1, 2])
def test_frames_and_timestamps(clips: dict[int, Path], gop: int, fps: float, threads: int) -> None:
    reference = reference_jpegs(clips[gop])
    with FrameExtractor(clips[gop], decode_threads=threads) as extractor:
        samples = sorted(extractor.samples(fps), key=lambda s: s.index)
        strategy = extractor.stats.strategy
    assert len(samples) == math.ceil(3 * fps)
    for k, sample in enumerate(samples):
        expected = math.ceil(k * SOURCE_FPS / fps - 1e-9)
        assert sample.index == k
        assert sample.source_frame == expected
        assert sample.timestamp == pytest.approx(expected / SOURCE_FPS)
        # The very frame: byte-identical to its JPEG from a full decode (a pixel-difference
        # test against the neighbours cannot tell frames apart where the scene barely moves).
        assert sample.jpeg == reference[expected], (k, strategy)


def reference_jpegs(path: Path) -> list[bytes]:
    """Every frame of the clip, decoded from the start, as the extractor encodes it."""
    with av.open(str(path)) as container:
        return [encode_jpeg(frame, 90) for frame in container.decode(video=0)]


def test_strategy_follows_the_keyframes(clips: dict[int, Path]) -> None:
    with FrameExtractor(clips[5], decode_threads=2) as dense:
        list(dense.samples(1))
        assert dense.stats.strategy.startswith("GOP-parallel")
        assert dense.stats.decoded_frames <= 3 * 5  # about one frame per sample
    with FrameExtractor(clips[90], decode_threads=2) as sparse:
        list(sparse.samples(1))
        assert sparse.stats.strategy.startswith("sequential")
        assert sparse.stats.decoded_frames < 90  # the tail after the last sample is skipped


def test_fps_above_the_source_is_refused(clips: dict[int, Path]) -> None:
    with FrameExtractor(clips[30]) as extractor, pytest.raises(ClipError, match="has 30 frames/s"):
        list(extractor.samples(60))


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (
            lambda d: (d / "notes.mp4").write_bytes(b"this is not a video at all" * 100),
            "not a readable video",
        ),
        (lambda d: (d / "empty.mp4").write_bytes(b""), "not a readable video"),
    ],
)
def test_garbage_is_a_clip_error(tmp_path: Path, make: object, reason: str) -> None:
    make(tmp_path)  # type: ignore[operator]
    path = next(tmp_path.iterdir())
    with pytest.raises(ClipError, match=reason):
        FrameExtractor(path)


def test_truncated_clip_is_a_clip_error(clips: dict[int, Path], tmp_path: Path) -> None:
    cut = truncate(clips[30], tmp_path / "cut.mp4", keep=0.6)
    with pytest.raises(ClipError, match=r"truncated"), FrameExtractor(cut) as extractor:
        list(extractor.samples(1))


def test_audio_only_file_has_no_video_stream(tmp_path: Path) -> None:
    import av

    path = tmp_path / "audio.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=8000)
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 1024), dtype=np.float32), format="fltp", layout="mono"
        )
        frame.sample_rate = 8000
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    with pytest.raises(ClipError, match="no video stream"):
        FrameExtractor(path)


def test_other_codecs_are_reported_for_the_caller_to_judge(tmp_path: Path) -> None:
    path = encode_with(tmp_path / "old.mkv", "mpeg2video")
    with FrameExtractor(path) as extractor:
        assert extractor.info.codec == "mpeg2video"
        assert len(list(extractor.samples(5))) == 5  # 10 frames at 10 fps = 1 s


def test_sample_clip_sidecar_matches_the_video(tmp_path: Path) -> None:
    clip = small_clip(tmp_path, seconds=2, gop=10, seed=3)
    labels = ClipLabels.model_validate_json(sidecar_path(clip.video).read_text())
    assert len(labels.frames) == 60 == len(decode_all(clip.video))
    assert validate_clip(labels) == []
    classes = {o.category for f in labels.frames for o in f.objects}
    assert classes == {"vehicle", "pedestrian", "lane", "traffic_light", "traffic_sign", "ignore"}
    # vehicles move: the first track's box changes over the clip
    first = next(o for o in labels.frames[0].objects if o.category == "vehicle")
    last = next(o for o in labels.frames[-1].objects if o.track_id == first.track_id)
    assert first.box != last.box


def _lava(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lava", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
    )


def test_cli_make_sample_and_extract(tmp_path: Path) -> None:
    made = _lava(
        "clips",
        "make-sample",
        "--out",
        str(tmp_path),
        "--seconds",
        "2",
        "--size",
        "320x180",
        "--gop",
        "15",
        "--seed",
        "4",
    )
    assert made.returncode == 0, made.stderr
    video = tmp_path / "sample-0004.mp4"
    assert video.exists() and sidecar_path(video).exists()
    out = _lava("frames", "extract", str(video), "--fps", "2", "--out", str(tmp_path / "f"))
    assert out.returncode == 0, out.stderr
    assert sorted(p.name for p in (tmp_path / "f").iterdir()) == [f"{i:06d}.jpg" for i in range(4)]
    assert "4 frames from 320x180 h264" in out.stdout
    bad = _lava("frames", "extract", str(video), "--fps", "60", "--out", str(tmp_path / "g"))
    assert bad.returncode == 1 and "has 30 frames/s" in bad.stderr


def test_the_encoder_is_imported_while_the_clip_is_opened(clips: dict[int, Path]) -> None:
    """Opening a clip starts the JPEG encoder's import (numpy, simplejpeg) on a thread of its
    own, so it runs beside FFmpeg's stream probing instead of beside the decoders (docs/
    ingestperf.md). In a fresh interpreter: here every test has imported it already."""
    script = (
        "import sys, threading\n"
        "from services.ingest.extract import FrameExtractor\n"
        "assert 'simplejpeg' not in sys.modules\n"
        f"FrameExtractor({str(clips[30])!r}).close()\n"
        "for t in threading.enumerate():\n"
        "    if t.name == 'lava-encoder-import':\n"
        "        t.join()\n"
        "assert 'simplejpeg' in sys.modules and 'numpy' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
