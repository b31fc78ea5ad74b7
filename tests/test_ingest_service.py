"""The ingest service against the real broker and a moto server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from devstack.testing.events import clip_ingested
from lava.rig import upload_clip
from services.ingest.handler import IngestHandler
from services.ingest.service import build
from shared.aws import AwsClients
from shared.bus import Bus
from shared.events import ClipIngested, decode_event, new_event
from shared.groundtruth.sequence import ManifestLine, parse_sequence_file
from shared.layout import ClipLayout, FrameIndex, parse_s3_uri
from shared.resources import TASKS
from shared.settings import Settings
from shared.storage import S3Store
from shared.tasks.clip_records import ClipRecords
from tests.support.broker import get_messages, queue_depth
from tests.support.clips import encode_with, small_clip, truncate
from tests.support.requests import counting
from tests.support.services import running

pytestmark = pytest.mark.integration


@pytest.fixture
async def ingest(settings: Settings, aws: AwsClients, bus: Bus) -> AsyncIterator[Any]:
    async with running(build, settings, "ingest", "ingest") as runtime:
        yield runtime


async def _events(settings: Settings, count: int, timeout: float = 60) -> list[Any]:
    messages = await get_messages(settings, settings.names.queue("dispatcher"), count, timeout)
    return [decode_event(m.body) for m in messages]


async def test_a_clip_becomes_frames_a_sequence_file_a_manifest_and_frames_ready(
    settings: Settings, aws: AwsClients, bus: Bus, ingest: Any, tmp_path: Path
) -> None:
    clip = small_clip(tmp_path, seconds=3, gop=15)
    drive, attrs = clip.labels.drive, clip.labels.clip
    payload = await upload_clip(
        settings,
        clip.video,
        drive,
        attrs,
        fps=2,
        workflows=["vehicles", "lanes"],
        sidecar=clip.sidecar,
        bus=bus,
        aws=aws,
    )
    events = await _events(settings, 2)
    assert sorted(e.payload.task_id for e in events) == [
        f"{payload.clip_id}.lanes",
        f"{payload.clip_id}.vehicles",
    ]
    assert events[0].payload.clip_workflows == ["vehicles", "lanes"]
    assert events[0].payload.drive == drive
    ready = events[0].payload.frames
    assert (ready.frame_count, ready.width, ready.height, ready.fps) == (6, 320, 180, 2)

    store = S3Store(aws)
    sequence = parse_sequence_file(await store.get_bytes(*parse_s3_uri(ready.sequence_uri)))
    assert sequence.number_of_frames == 6
    assert [f.frame_no for f in sequence.frames] == list(range(6))
    stamps = [f.unix_timestamp or 0 for f in sequence.frames]
    # whole seconds, as the guide has them (the exact times are in frames.json)
    assert all(isinstance(f.unix_timestamp, int) for f in sequence.frames)
    assert stamps == sorted(stamps) and stamps[-1] - stamps[0] in (2, 3)
    for frame in sequence.frames:
        head = await store.head(*parse_s3_uri(sequence.frame_uri(frame)))
        assert head is not None and head.size > 0
    manifest = (await store.get_bytes(*parse_s3_uri(ready.manifest_uri))).decode().splitlines()
    assert ManifestLine.model_validate_json(manifest[0]).source_ref == ready.sequence_uri
    layout = ClipLayout.from_sequence_uri(ready.sequence_uri)
    index = FrameIndex.model_validate(await store.get_json(layout.bucket, layout.frame_index_key))
    assert [f.source_frame for f in index.frames] == [0, 15, 30, 45, 60, 75]
    assert await queue_depth(settings, settings.names.queue("ingest")) == 0


async def test_redelivery_yields_the_same_keys_and_events(
    settings: Settings, aws: AwsClients, bus: Bus, ingest: Any, tmp_path: Path
) -> None:
    clip = small_clip(tmp_path, seconds=2, gop=10)
    store = S3Store(aws)
    key = "raw/d1/c-redeliver.mp4"
    await store.put_bytes(settings.names.bucket, key, clip.video.read_bytes())
    event = new_event(
        clip_ingested("c-redeliver", video_uri=f"s3://{settings.names.bucket}/{key}", fps=1),
        "c-redeliver",
    )
    await bus.publish(event)
    first = await _events(settings, 1)
    layout = ClipLayout(settings.names.bucket, "c-redeliver", 1)
    marker = await store.head(layout.bucket, layout.frame_index_key)
    listing = await _keys(aws, settings, layout.prefix)

    await bus.publish(event)  # the broker delivers it again
    second = await _events(settings, 1)
    assert second[0].event_id == first[0].event_id
    assert second[0].payload == first[0].payload
    assert await _keys(aws, settings, layout.prefix) == listing
    again = await store.head(layout.bucket, layout.frame_index_key)
    assert again is not None and marker is not None
    assert again.last_modified == marker.last_modified  # not extracted twice


async def test_a_new_clip_is_not_looked_for_among_finished_extractions(
    settings: Settings, aws: AwsClients, tmp_path: Path
) -> None:
    """A clip without a record before its ClipIngested has nothing extracted: one GetObject
    (the clip), no look for frames.json; a redelivery looks and extracts nothing again."""
    clip = small_clip(tmp_path, seconds=2, gop=10)
    bucket, key = settings.names.bucket, "raw/d1/c-new.mp4"
    await S3Store(aws).put_bytes(bucket, key, clip.video.read_bytes())
    published: list[Any] = []

    async def publish(event: Any) -> None:
        published.append(event)

    clips = ClipRecords(aws, settings.names.table(TASKS.name))
    handler = IngestHandler(settings, S3Store(aws), publish, clips=clips)
    event = new_event(clip_ingested("c-new", video_uri=f"s3://{bucket}/{key}", fps=1), "c-new")
    frame_index = ClipLayout(bucket, "c-new", 1).frame_index_key
    async with counting(aws, "s3") as first:
        await handler.handle(event)
    assert first.of("GetObject") == [key]
    async with counting(aws, "s3") as again:
        await handler.handle(event)  # redelivered: the record exists now
    assert again.of("GetObject") == [frame_index] and again.of("PutObject") == []
    half = len(published) // 2
    assert half and [e.event_id for e in published[:half]] == [e.event_id for e in published[half:]]


async def _keys(aws: AwsClients, settings: Settings, prefix: str) -> list[str]:
    s3 = await aws.s3()
    found = await s3.list_objects_v2(Bucket=settings.names.bucket, Prefix=prefix)
    return sorted(o["Key"] for o in found.get("Contents", []))


async def test_bad_clips_fail_visibly_and_the_service_keeps_serving(
    settings: Settings, aws: AwsClients, bus: Bus, tmp_path: Path
) -> None:
    strict = settings.replace(ingest__max_duration_seconds=2.5, ingest__max_width=400)
    store = S3Store(aws)
    bucket = settings.names.bucket
    good = small_clip(tmp_path, seconds=2, gop=10, name="good")
    long = small_clip(tmp_path, seconds=3, gop=30, name="long")
    wide = small_clip(tmp_path, seconds=1, gop=10, size=(480, 180), name="wide")
    files = {
        "notvideo": b"quarterly report, not a video\n" * 50,
        "empty": b"",
        "truncated": truncate(good.video, tmp_path / "t.mp4", 0.5).read_bytes(),
        "mpeg2": encode_with(tmp_path / "m.mkv", "mpeg2video").read_bytes(),
        "long": long.video.read_bytes(),
        "wide": wide.video.read_bytes(),
        "good": good.video.read_bytes(),
        # playlists naming a file the pod can read: refused before anything is followed
        "concat": f"ffconcat version 1.0\nfile {good.video}\n".encode(),
        "hls": f"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\n{good.video}\n".encode(),
    }
    for name, data in files.items():
        await store.put_bytes(bucket, f"raw/d1/{name}.mp4", data)
    cases: dict[str, tuple[dict[str, Any], str]] = {
        "notvideo": ({}, "not a readable video"),
        "empty": ({}, "empty (0 bytes)"),
        "truncated": ({}, "truncated"),
        "mpeg2": ({}, "unsupported video codec 'mpeg2video'"),
        "long": ({}, "lasts 3.0 s, above the limit of 2.5 s"),
        "wide": ({}, "resolution 480x180 is above the limit"),
        "missing": ({}, "clip not found at"),
        "concat": ({}, "not a video in an accepted container format"),
        "hls": ({}, "not a readable video file"),  # without .m3u8, FFmpeg does not probe HLS
        "toofast": ({"fps": 60}, "requested 60 frames/s but the clip has 30 frames/s"),
        "foreign": ({"video_uri": "s3://someone-else/raw/good.mp4"}, "bucket 'someone-else'"),
        "unsafe": ({"video_uri": f"s3://{bucket}/raw/d1/bad key$.mp4"}, "characters outside"),
    }
    async with running(build, strict, "ingest", "ingest"):
        for name, (changes, _) in cases.items():
            source = "toofast" if name == "toofast" else name
            changes.setdefault(
                "video_uri", f"s3://{bucket}/raw/d1/{source if name != 'toofast' else 'good'}.mp4"
            )
            payload: ClipIngested = clip_ingested(name, **changes)
            await bus.publish(new_event(payload, name))
        await bus.publish(
            new_event(clip_ingested("good", video_uri=f"s3://{bucket}/raw/d1/good.mp4"), "good")
        )
        events = await _events(settings, len(cases) + 1, timeout=90)
    failed = {e.payload.clip_id: e.payload.reason for e in events if e.type == "ClipFailed"}
    for name, (_, reason) in cases.items():
        assert name in failed, f"{name} did not fail: {failed}"
        assert reason in failed[name], (name, failed[name])
        assert "\n" not in failed[name]
    ready = [e for e in events if e.type == "FramesReady"]
    assert [e.payload.clip_id for e in ready] == ["good"]
    assert await queue_depth(settings, settings.names.queue("ingest")) == 0
    assert await queue_depth(settings, settings.names.dead_letter_queue("ingest")) == 0


async def test_malformed_clip_ingested_goes_to_the_dead_letter_queue(
    settings: Settings, bus: Bus, ingest: Any
) -> None:
    import aio_pika

    from shared.bus import DEAD_REASON_HEADER

    raw = json.loads(new_event(clip_ingested("x"), "x").model_dump_json())
    raw["payload"]["drive"]["weather"] = "sunny"
    connection = await aio_pika.connect(settings.broker.amqp_url.get_secret_value())
    channel = await connection.channel()
    exchange = await channel.get_exchange(settings.names.exchange)
    await exchange.publish(aio_pika.Message(json.dumps(raw).encode()), routing_key="ClipIngested")
    await connection.close()
    dead = await get_messages(settings, settings.names.dead_letter_queue("ingest"), 1)
    assert "payload.drive.weather" in str(dead[0].headers[DEAD_REASON_HEADER])
