"""The MOTA/IDF1 helper the end-to-end suite scores final labels with (motmetrics)."""

from __future__ import annotations

from shared.layout import FrameIndex, IndexedFrame
from shared.taxonomy.attributes import ClipAttributes, DriveAttributes
from shared.taxonomy.records import (
    Box,
    ClipInfo,
    ClipLabels,
    FrameRecord,
    Vehicle,
    VehicleAttributes,
)
from tests.support.tracking_metrics import tracking_scores

DRIVE = DriveAttributes(drive_id="d1", weather="clear", time_of_day="daytime", route="A1")
CLIP = ClipInfo(
    clip_id="c1",
    **ClipAttributes(scene="tunnel", traffic="undefined", traffic_density="low").model_dump(),
)
ATTRS = VehicleAttributes(type="car", occlusion="not occluded")


def _car(track: str, x: float) -> Vehicle:
    return Vehicle(
        track_id=track, box=Box(left=x, top=10, right=x + 40, bottom=40), attributes=ATTRS
    )


def _labels(frames: list[list[Vehicle]]) -> ClipLabels:
    records = tuple(
        FrameRecord(frame_no=i, timestamp=i, drive=DRIVE, clip=CLIP, objects=tuple(objs))
        for i, objs in enumerate(frames)
    )
    return ClipLabels(
        clip_id="c1", width=320, height=180, fps=1, drive=DRIVE, clip=CLIP, frames=records
    )


INDEX = FrameIndex(
    clip_id="c1",
    fps=1,
    source_fps=1,
    width=320,
    height=180,
    video_uri="s3://b/c1.mp4",
    sequence_uri="s3://b/c1/sequence.json",
    manifest_uri="s3://b/c1/manifest.jsonl",
    frames=[
        IndexedFrame(frame_no=i, timestamp=i, source_frame=i, file=f"{i}.jpg") for i in range(3)
    ],
)


def test_other_track_names_and_small_shifts_score_perfectly() -> None:
    truth = _labels([[_car("a", 0), _car("b", 100)] for _ in range(3)])
    uuids = _labels([[_car("u1", 3), _car("u2", 104)] for _ in range(3)])
    scores = tracking_scores(uuids, truth, INDEX, {"vehicle"})
    assert (scores.mota, scores.idf1, scores.truth_boxes, scores.matches) == (1.0, 1.0, 6, 6)


def test_a_missed_object_and_an_identity_switch_are_counted() -> None:
    truth = _labels([[_car("a", 0), _car("b", 100)] for _ in range(3)])
    worse = _labels(
        [
            [_car("u1", 0), _car("u2", 100)],
            [_car("u1", 0)],  # b missed
            [_car("u3", 0), _car("u2", 100)],  # a switched identity
        ]
    )
    scores = tracking_scores(worse, truth, INDEX, {"vehicle"})
    # MOTA = 1 - (1 miss + 0 false positives + 1 switch) / 6; the switch is not a match
    assert scores.matches == 4
    assert abs(scores.mota - (1 - 2 / 6)) < 1e-9 and scores.idf1 < 0.99
