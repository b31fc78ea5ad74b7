"""The capture rig's uploader: validation first, deterministic clip ids, multipart uploads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from lava.rig import derive_clip_id, upload_clip
from shared.aws import AwsClients
from shared.bus import Bus
from shared.events import ClipIngested, decode_event
from shared.settings import Settings
from shared.storage import S3Store
from shared.taxonomy.attributes import ClipAttributes, DriveAttributes
from tests.support.broker import get_messages, queue_depth
from tests.support.clips import small_clip

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.integration

DRIVE = DriveAttributes(drive_id="rig-7", weather="foggy", time_of_day="dawn/dusk", route="CA-1")
CLIP = ClipAttributes(scene="roundabout", traffic="stop-and-go", traffic_density="medium")


async def _raw_keys(aws: AwsClients, settings: Settings) -> list[str]:
    s3 = await aws.s3()
    found = await s3.list_objects_v2(Bucket=settings.names.bucket, Prefix="raw/")
    return [o["Key"] for o in found.get("Contents", [])]


@pytest.mark.parametrize(
    "change",
    [{"fps": 0}, {"workflows": []}, {"workflows": ["Bad Name"]}, {"fps": -1}],
)
async def test_invalid_values_are_refused_before_any_upload(
    settings: Settings, aws: AwsClients, bus: Bus, tmp_path: Path, change: dict[str, object]
) -> None:
    clip = small_clip(tmp_path, seconds=1, gop=10)
    args: dict[str, object] = {"fps": 1.0, "workflows": ["vehicles"]} | change
    with pytest.raises(ValidationError):
        await upload_clip(settings, clip.video, DRIVE, CLIP, bus=bus, aws=aws, **args)  # type: ignore[arg-type]
    assert await _raw_keys(aws, settings) == []
    assert await queue_depth(settings, settings.names.queue("ingest")) == 0


async def test_a_retried_upload_is_the_same_clip(
    settings: Settings, aws: AwsClients, bus: Bus, tmp_path: Path
) -> None:
    clip = small_clip(tmp_path, seconds=1, gop=10)
    first = await upload_clip(
        settings, clip.video, DRIVE, CLIP, fps=1, workflows=["vehicles"], bus=bus, aws=aws
    )
    store = S3Store(aws)
    key = f"raw/rig-7/{first.clip_id}.mp4"
    before = await store.head(settings.names.bucket, key)
    second = await upload_clip(
        settings, clip.video, DRIVE, CLIP, fps=1, workflows=["vehicles"], bus=bus, aws=aws
    )
    after = await store.head(settings.names.bucket, key)
    assert first == second
    assert first.clip_id.startswith("rig-7-") and len(first.clip_id) == len("rig-7-") + 16
    assert before is not None and after is not None
    assert after.last_modified == before.last_modified  # not uploaded again
    events = [
        decode_event(m.body)
        for m in await get_messages(settings, settings.names.queue("ingest"), 2)
    ]
    assert events[0].event_id == events[1].event_id  # the retry is a recognizable duplicate
    payload = events[0].payload
    assert isinstance(payload, ClipIngested)
    assert payload.video_uri == f"s3://{settings.names.bucket}/{key}"


async def test_large_files_go_up_in_parts(
    aws: AwsClients, settings: Settings, tmp_path: Path
) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(11 * 1024 * 1024))
    store = S3Store(aws)
    await store.upload_file(big, settings.names.bucket, "raw/big.bin", multipart_threshold=1024)
    head = await store.head(settings.names.bucket, "raw/big.bin")
    assert head is not None and head.size == big.stat().st_size
    assert head.etag.endswith("-2")  # 8 MiB + 3 MiB parts
    assert await store.get_bytes(settings.names.bucket, "raw/big.bin") == big.read_bytes()


def test_clip_id_is_derived_from_drive_and_content() -> None:
    assert derive_clip_id("d1", "ab" * 32) == "d1-" + "ab" * 8


def test_cli_refuses_values_outside_the_taxonomy(settings: Settings, tmp_path: Path) -> None:
    clip = small_clip(tmp_path, seconds=1, gop=10)
    env = dict(
        os.environ,
        LAVA_NAMESPACE=settings.namespace,
        AWS_ENDPOINT_URL=settings.aws.endpoint_url or "",
    )
    base = [
        sys.executable,
        "-m",
        "lava",
        "upload",
        str(clip.video),
        "--drive-id",
        "d1",
        "--time-of-day",
        "night",
        "--route",
        "A",
        "--scene",
        "tunnel",
        "--traffic",
        "undefined",
        "--traffic-density",
        "low",
        "--workflow",
        "vehicles",
    ]
    bad = subprocess.run(
        [*base, "--weather", "sunny"], capture_output=True, text=True, env=env, timeout=60
    )
    assert bad.returncode == 2 and "'sunny' is not one of" in bad.stderr
    bad_id = subprocess.run(
        [*base, "--weather", "clear", "--drive-id", "has space"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert bad_id.returncode == 1 and "invalid drive_id" in bad_id.stderr


def test_the_rig_uploader_does_not_drag_video_or_numpy_libraries_in() -> None:
    """The rig runs on the capture machine: its uploader needs neither PyAV nor numpy."""
    code = "import sys, lava.rig; print(sorted({'av', 'numpy'} & set(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "[]"
