"""End-to-end helpers: the whole pipeline as processes, clips through it, checks on results."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from lava.local_pipeline import LocalPipeline, PipelineConfig
from lava.sample_clips import SampleClip, upload_sample
from lava.status import Snapshot, snapshot
from shared.aws import AwsClients
from shared.layout import FrameIndex, labels_key
from shared.settings import Settings
from shared.storage import S3Store
from shared.taxonomy.records import ClipLabels, LavaObject, Vehicle
from tests.support.clips import small_clip

WORKFLOW_CLASSES = {
    "vehicles": {"vehicle"},
    "lanes": {"lane"},
    "signs_lights": {"traffic_light", "traffic_sign"},
    "pedestrians": {"pedestrian"},
    "ignore": {"ignore"},
}


@asynccontextmanager
async def pipeline(tmp_path: Path, **config: Any) -> AsyncIterator[LocalPipeline]:
    namespace = f"e{uuid.uuid4().hex[:7]}"
    run = LocalPipeline(PipelineConfig(namespace=namespace, run_dir=tmp_path / "run", **config))
    try:
        await run.start()
        yield run
    finally:
        codes = await run.stop()
        bad = {s: c for s, c in codes.items() if c not in (0, -9)}
        assert not bad, f"processes exited badly: {bad}"


def make_clips(
    tmp_path: Path, count: int, seconds: float = 3, start_seed: int = 10
) -> list[SampleClip]:
    return [
        small_clip(
            tmp_path / "clips",
            seconds=seconds,
            gop=15,
            seed=start_seed + i,
            name=f"clip{start_seed + i}",
        )
        for i in range(count)
    ]


async def upload(
    settings: Settings, clips: list[SampleClip], workflows: list[str], fps: float = 2
) -> list[str]:
    ids = []
    async with AwsClients(settings) as aws:
        for clip in clips:
            payload = await upload_sample(settings, clip, fps=fps, workflows=workflows, aws=aws)
            ids.append(payload.clip_id)
    return ids


async def wait_for_clips(
    settings: Settings, clip_ids: list[str], timeout: float = 180, during: Any = None
) -> Snapshot:
    """Until every clip completed or failed, and a completed clip's tasks too;
    ``during(snapshot)`` runs on every poll. (Post-processing completes the clip record with
    its dataset entry; the dispatcher moves the tasks on ClipCompleted a moment later.)"""
    deadline = time.monotonic() + timeout
    async with AwsClients(settings) as aws:
        while True:
            snap = await snapshot(aws, settings)
            states = {c: snap.clip_status(c) for c in clip_ids}
            settling = [
                t.task_id
                for t in snap.tasks.values()
                if states.get(t.clip_id) == "completed" and t.status in ("finalizing", "finalized")
            ]
            if all(s in ("completed", "failed") for s in states.values()) and not settling:
                return snap
            if during is not None:
                await during(snap)
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"clips not done after {timeout}s: {states}; failures {snap.failures()}"
                )
            await asyncio.sleep(0.5)


async def labels_of(settings: Settings, clip_id: str) -> ClipLabels:
    async with AwsClients(settings) as aws:
        raw = await S3Store(aws).get_bytes(settings.names.bucket, labels_key(clip_id))
    return ClipLabels.model_validate_json(raw)


async def frame_index(settings: Settings, clip_id: str, fps: float) -> FrameIndex:
    async with AwsClients(settings) as aws:
        from shared.layout import ClipLayout

        layout = ClipLayout(settings.names.bucket, clip_id, fps)
        return FrameIndex.model_validate(
            await S3Store(aws).get_json(layout.bucket, layout.frame_index_key)
        )


def match_truth(
    labels: ClipLabels,
    truth: ClipLabels,
    index: FrameIndex,
    classes: set[str],
    min_iou: float = 0.9,
) -> list[str]:
    """Problems: truth objects missing from the labels, or boxes below ``min_iou``.

    Objects are paired by geometry (Ground Truth names tracks with its own UUIDs); every truth
    track must have a labeled counterpart, and vehicles keep their plates.
    """
    problems = []
    by_source = {f.frame_no: f for f in truth.frames}
    source_of = {f.frame_no: f.source_frame for f in index.frames}
    truth_tracks: set[tuple[str, str]] = set()
    label_tracks: set[tuple[str, str]] = set()
    for record in labels.frames:
        expected = [
            o for o in by_source[source_of[record.frame_no]].objects if o.category in classes
        ]
        got = [o for o in record.objects if o.category in classes]
        for obj in expected:
            if obj.track_id:
                truth_tracks.add((obj.category, obj.track_id))
            twin = _twin(obj, got)
            if twin is None:
                problems.append(f"frame {record.frame_no}: {obj.category} {obj.track_id} missing")
            elif obj.box is not None and twin.box is not None and obj.box.iou(twin.box) < min_iou:
                problems.append(
                    f"frame {record.frame_no}: {obj.track_id} IoU {obj.box.iou(twin.box):.2f}"
                )
            elif isinstance(obj, Vehicle) and isinstance(twin, Vehicle):
                if (obj.license_plate is None) != (twin.license_plate is None):
                    problems.append(f"frame {record.frame_no}: {obj.track_id} plate not attached")
                if len(obj.lights) != len(twin.lights):
                    problems.append(f"frame {record.frame_no}: {obj.track_id} lights not attached")
        label_tracks.update((o.category, o.track_id) for o in got if o.track_id)
    for category in {c for c, _ in truth_tracks}:
        want = sum(1 for c, _ in truth_tracks if c == category)
        have = sum(1 for c, _ in label_tracks if c == category)
        if want != have:
            problems.append(f"{category}: {want} tracks in the sidecar, {have} labeled")
    return problems


def _twin(obj: LavaObject, candidates: list[LavaObject]) -> LavaObject | None:
    if obj.box is None:
        return next((c for c in candidates if c.category == obj.category), None)
    scored = [
        (c.box.iou(obj.box), c)
        for c in candidates
        if c.category == obj.category and c.box is not None
    ]
    return max(scored, key=lambda x: x[0])[1] if scored else None
