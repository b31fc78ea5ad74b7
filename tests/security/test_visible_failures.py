"""After a valid ClipIngested every failure is a visible ClipFailed with its reason.

Against the real services, broker and moto: clip ids at the length limit, clips from outside
the raw-clips prefix, label files a parser would choke on, and a handler that keeps failing.
The good clip of each run completes.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from devstack.testing.events import clip_ingested
from lava.rig import derive_clip_id
from services.ingest.service import build as build_ingest
from services.postproc import merge
from services.postproc.service import build as build_postproc
from shared.aws import AwsClients
from shared.bus import Bus
from shared.events import (
    ClipFailed,
    ClipIngested,
    Event,
    FramesReady,
    JobOutput,
    decode_event,
    new_event,
)
from shared.ids import clip_id_of, task_id_of
from shared.layout import parse_s3_uri, s3_uri
from shared.runtime import ServiceRuntime
from shared.settings import Settings
from shared.storage import S3Store
from tests.support.broker import get_messages, wait_until
from tests.support.clips import small_clip
from tests.support.labels import vehicle
from tests.support.postproc import finalized, stage_frames, stage_output
from tests.support.services import running

pytestmark = pytest.mark.integration

SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def test_derived_task_ids_are_always_valid() -> None:
    longest = "c" * 128
    for workflow in ("vehicles", "w" * 64):
        task = task_id_of(longest, workflow)
        assert SAFE_ID.fullmatch(task), task
        assert task != task_id_of("c" * 127 + "d", workflow)  # still unique
    assert task_id_of("clip-1", "vehicles") == "clip-1.vehicles"  # short ones unchanged


def test_derived_clip_ids_are_always_valid() -> None:
    content = hashlib.sha256(b"clip").hexdigest()
    for drive in ("d" * 128, "d" * 111, "drive-01"):
        clip = clip_id_of(drive, content)
        assert SAFE_ID.fullmatch(clip), clip
        assert clip.endswith(content[:16])  # the content still tells clips apart
    assert clip_id_of("drive-01", content) == f"drive-01-{content[:16]}"  # short ones unchanged
    assert derive_clip_id("d" * 128, content) == clip_id_of("d" * 128, content)  # the rig's
    # the control API's task requests use the same function with the object's content hash
    # (shared/operations/clip_source.py)


async def _outcomes(settings: Settings, count: int) -> dict[str, Any]:
    found = await get_messages(settings, settings.names.queue("outcomes"), count, timeout=60)
    events = [decode_event(m.body) for m in found]
    return {getattr(e.payload, "clip_id", ""): e.payload for e in events}


async def test_ingest_long_ids_pass_and_clips_outside_raw_fail_visibly(
    settings: Settings, aws: AwsClients, bus: Bus, tmp_path: Path
) -> None:
    bucket = settings.names.bucket
    video = small_clip(tmp_path, seconds=1, gop=10).video.read_bytes()
    store = S3Store(aws)
    await store.put_bytes(bucket, "raw/d1/long.mp4", video)
    await store.put_bytes(bucket, "clips/elsewhere.mp4", video)  # a key of ours, not a clip
    longest = "L" * 128
    async with running(build_ingest, settings, "ingest", "ingest"):
        for clip_id, uri in (
            (longest, s3_uri(bucket, "raw/d1/long.mp4")),
            ("outside", s3_uri(bucket, "clips/elsewhere.mp4")),
            ("lookalike", s3_uri(bucket, "rawx/d1/long.mp4")),
            ("dotdot", s3_uri(bucket, "raw/../clips/elsewhere.mp4")),
        ):
            payload = clip_ingested(clip_id, video_uri=uri, workflows=["vehicles", "w" * 64])
            await bus.publish(new_event(payload, clip_id))
        outcomes = await _outcomes(settings, 3)
        ready = await get_messages(settings, settings.names.queue("dispatcher"), 5, timeout=60)
    assert "not under the raw-clips prefix" in outcomes["outside"].reason
    assert "not under the raw-clips prefix" in outcomes["lookalike"].reason
    assert "'..' segment" in outcomes["dotdot"].reason
    events = [decode_event(m.body) for m in ready]
    tasks = [e.payload for e in events if isinstance(e.payload, FramesReady)]
    assert sorted(t.task_id for t in tasks) == sorted(
        task_id_of(longest, w) for w in ("vehicles", "w" * 64)
    )
    assert all(SAFE_ID.fullmatch(t.task_id) for t in tasks)


async def _bad_output(store: S3Store, bucket: str, name: str, body: bytes) -> JobOutput:
    key = f"gt-output/VOTVehicle/{name}/SeqLabel.json"
    await store.put_bytes(bucket, key, body, "application/json")
    return JobOutput(
        job_name="VOTVehicle",
        job_type="vehicle",
        level=1,
        label_attribute="VOTVehicle-ref",
        label_uri=s3_uri(bucket, key),
        metadata={"class-map": {"0": "vehicle"}},
    )


async def test_label_files_that_would_overflow_or_recurse_fail_their_clip(
    settings: Settings, aws: AwsClients, bus: Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, bucket = S3Store(aws), settings.names.bucket
    good = await stage_output(store, bucket, "VOTVehicle", "vehicle", 1, {0: [vehicle("v1")]})
    text = (await store.get_bytes(*parse_s3_uri(good.label_uri))).decode()
    monkeypatch.setattr(merge, "MAX_LABEL_FILE_BYTES", 64 * 1024)
    bad = {
        "nan": (text.replace('"left": 100.0', '"left": NaN', 1), "non-finite"),
        "overflow": (text.replace('"left": 100.0', '"left": 1e400', 1), "not finite"),
        "deep": ('{"tracking-annotations": ' + "[" * 5000 + "]" * 5000 + "}", "nests deeper"),
        "huge": ('{"x": "' + "a" * 100_000 + '"}', "limit"),
    }
    assert all(body != text for body, _ in list(bad.values())[:2]), "fixture changed shape"
    async with running(build_postproc, settings, "postproc", "postproc"):
        for name, (body, _) in bad.items():
            layout = await stage_frames(store, bucket, f"clip-{name}")
            output = await _bad_output(store, bucket, name, body.encode())
            await bus.publish(finalized(layout, "vehicles", ["vehicles"], [output]))
        layout = await stage_frames(store, bucket, "clip-good")
        await bus.publish(finalized(layout, "vehicles", ["vehicles"], [good]))
        outcomes = await _outcomes(settings, len(bad) + 1)
    assert outcomes["clip-good"].__class__.__name__ == "ClipCompleted"
    for name, (_, reason) in bad.items():
        failed = outcomes[f"clip-{name}"]
        assert isinstance(failed, ClipFailed) and reason in failed.reason, (name, failed)
    assert await get_messages(settings, settings.names.dead_letter_queue("postproc"), 1, 0.5) == []


async def test_a_clip_event_a_service_gives_up_on_ends_in_clip_failed(
    settings: Settings, bus: Bus
) -> None:
    runtime = ServiceRuntime("ingest", settings, consumer="ingest")
    calls: list[str] = []

    async def broken(event: Event[Any]) -> None:
        calls.append(event.payload.clip_id)
        if event.payload.clip_id == "doomed":
            raise RuntimeError("disk on fire")

    runtime.handle(ClipIngested, broken)
    task = asyncio.create_task(runtime.run(install_signals=False))
    try:
        await wait_until(lambda: runtime.ready, timeout=15)
        await bus.publish(new_event(clip_ingested("doomed"), "doomed"))
        await bus.publish(new_event(clip_ingested("fine"), "fine"))
        outcomes = await _outcomes(settings, 1)
    finally:
        runtime.request_stop()
        await task
    failed = outcomes["doomed"]
    assert failed.stage == "ingest"
    assert "handler failed 3 times" in failed.reason and "disk on fire" in failed.reason
    assert calls.count("fine") == 1
    (dead,) = await get_messages(settings, settings.names.dead_letter_queue("ingest"), 1)
    assert json.loads(dead.body)["payload"]["clip_id"] == "doomed"
