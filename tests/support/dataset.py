"""A small completed dataset: four clips through post-processing, their index entries and
labels, as `tests/test_dataset.py` and the control API's dataset tests read them."""

from __future__ import annotations

from services.postproc.handler import PostprocHandler
from shared.aws import AwsClients
from shared.dataset.index import DatasetIndex
from shared.settings import Settings
from shared.storage import S3Store
from shared.taxonomy.attributes import ClipAttributes, DriveAttributes
from shared.taxonomy.records import ClipLabels
from tests.support.dispatch import Recorder
from tests.support.labels import lane, pedestrian, sign, vehicle
from tests.support.postproc import finalized, stage_frames, stage_output

CLIPS = [
    ("c-rain-night-x", "rainy", "night", "intersection", "stop-and-go"),
    ("c-rain-day-x", "rainy", "daytime", "intersection", "free-flowing"),
    ("c-rain-night-h", "rainy", "night", "highway", "free-flowing"),
    ("c-clear-night-x", "clear", "night", "intersection", "stop-and-go"),
]


async def complete_clip(
    aws: AwsClients,
    settings: Settings,
    clip_id: str,
    weather: str,
    time_of_day: str,
    scene: str,
    traffic: str,
) -> None:
    store, bucket = S3Store(aws), settings.names.bucket
    layout = await stage_frames(store, bucket, clip_id)
    frames = {
        0: [vehicle("v1", plate=True, lights=True), vehicle("v2")],
        1: [vehicle("v1")],
        2: [vehicle("v1"), vehicle("v2")],
    }
    outputs = [
        await stage_output(store, bucket, f"VOTVehicle-{clip_id}", "vehicle", 1, frames),
        await stage_output(
            store,
            bucket,
            f"VOTPedestrian-{clip_id}",
            "pedestrian",
            1,
            {0: [pedestrian("p1")], 1: [pedestrian("p1")]},
        ),
        await stage_output(
            store, bucket, f"VOTLane-{clip_id}", "lane", 1, {k: [lane()] for k in range(3)}
        ),
        await stage_output(
            store, bucket, f"VODTrafficSign-{clip_id}", "traffic_sign", 1, {0: [sign()]}
        ),
    ]
    drive = DriveAttributes(drive_id="d1", weather=weather, time_of_day=time_of_day, route="A1")
    clip = ClipAttributes(scene=scene, traffic=traffic, traffic_density="high")
    event = finalized(layout, "all", ["all"], outputs, clip=clip, drive=drive)
    recorder = Recorder()
    handler = PostprocHandler(settings, store, DatasetIndex(aws, settings), recorder)
    await handler.handle(event)
    assert recorder.of("ClipCompleted"), recorder.events


async def complete_clips(aws: AwsClients, settings: Settings) -> list[ClipLabels]:
    """Every clip of ``CLIPS`` completed; their labels, in that order."""
    for row in CLIPS:
        await complete_clip(aws, settings, *row)
    store = S3Store(aws)
    return [
        ClipLabels.model_validate_json(
            await store.get_bytes(settings.names.bucket, f"labels/{clip_id}.json")
        )
        for clip_id, *_ in CLIPS
    ]
