"""Label Studio video tracks -> per-frame labels, against hand-computed cases (pure, fast)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from shared.groundtruth.job_types import JOB_TYPES, job_type
from shared.labeling.labelstudio.config import Surface, labeling_config, surface_of
from shared.labeling.labelstudio.tracks import (
    FrameRef,
    Keyframe,
    PercentBox,
    VideoFrames,
    lava_frames,
    lava_to_results,
    shape_at,
    to_seq_label,
    track_of,
)
from shared.taxonomy.records import Box, LavaObject, TrafficLight, Vehicle
from shared.taxonomy.vocabulary import Occlusion, VehicleType
from tests.support.clips import small_clip


def kf(frame: int, x: float, enabled: bool = True, w: float = 20.0) -> Keyframe:
    return Keyframe(frame=frame, x=x, y=10.0, width=w, height=10.0, enabled=enabled)


def test_a_keyframe_is_drawn_as_given_on_its_own_frame() -> None:
    assert shape_at([kf(1, 10), kf(11, 30, enabled=False)], 11) == PercentBox(30, 10, 20, 10)


def test_between_enabled_keyframes_the_box_is_linearly_interpolated() -> None:
    # frame 6 is half way from 1 to 11: x 10 -> 30 gives 20, width 20 -> 40 gives 30
    seq = [kf(1, 10, w=20), kf(11, 30, enabled=False, w=40)]
    assert shape_at(seq, 6) == PercentBox(20, 10, 30, 10)
    # a quarter of the way (frame 3.5 is not a frame; frame 3 is 2/10 of the way)
    assert shape_at(seq, 3) == PercentBox(14, 10, 24, 10)


def test_a_disabled_keyframe_ends_the_lifespan_until_the_next_keyframe() -> None:
    seq = [kf(1, 10, enabled=False), kf(5, 50), kf(9, 90, enabled=False)]
    assert shape_at(seq, 1) == PercentBox(10, 10, 20, 10)  # on its own frame it is drawn
    assert shape_at(seq, 3) is None  # the gap after a disabled keyframe
    assert shape_at(seq, 7) == PercentBox(70, 10, 20, 10)
    assert shape_at(seq, 10) is None
    assert shape_at(seq, 0) is None  # before the first keyframe


def test_an_enabled_last_keyframe_holds_its_box_to_the_end() -> None:
    assert shape_at([kf(1, 10), kf(4, 40)], 300) == PercentBox(40, 10, 20, 10)


def test_keyframes_are_read_in_frame_order_whatever_the_order_given() -> None:
    assert shape_at([kf(11, 30, enabled=False), kf(1, 10)], 6) == PercentBox(20, 10, 20, 10)


# A 200x100 clip at 10 fps whose extracted frames are video frames 1, 6 and 11.
CLIP = VideoFrames(
    width=200,
    height=100,
    fps=10,
    frames_count=20,
    frames=(
        FrameRef(0, "000000.jpg", 1),
        FrameRef(1, "000001.jpg", 6),
        FrameRef(2, "000002.jpg", 11),
    ),
)


def vehicle_track(region_id: str = "trk7") -> list[dict[str, object]]:
    return [
        {
            "id": region_id,
            "type": "videorectangle",
            "from_name": "box",
            "to_name": "video",
            "value": {
                "framesCount": 20,
                "sequence": [
                    {"frame": 1, "x": 10, "y": 20, "width": 20, "height": 30, "enabled": True},
                    {"frame": 11, "x": 30, "y": 20, "width": 20, "height": 30, "enabled": False},
                ],
                "labels": ["vehicle"],
            },
        },
        {
            "id": region_id,
            "type": "choices",
            "from_name": "vehicle.type",
            "value": {"choices": ["truck"]},
        },
        {
            "id": region_id,
            "type": "choices",
            "from_name": "vehicle.occlusion",
            "value": {"choices": ["partially occluded"]},
        },
    ]


def test_a_vehicle_track_becomes_one_box_per_extracted_frame_in_pixels() -> None:
    seq, problems = to_seq_label(job_type("vehicle"), vehicle_track(), CLIP)
    assert problems == []
    assert seq.kind == "tracking"
    boxes = [f.boxes for f in seq.frames]
    # x: 10% of 200 = 20 px; at frame 6 x is 20% = 40 px; at frame 11 30% = 60 px
    assert [(b[0].left, b[0].top, b[0].width, b[0].height) for b in boxes] == [
        (20, 20, 40, 30),
        (40, 20, 40, 30),
        (60, 20, 40, 30),
    ]
    assert {b[0].object_id for b in boxes} == {"trk7"}
    # one conversion layer: Ground Truth's short code for the long LAVA value
    assert boxes[0][0].attributes == {"type": "truck", "occlusion": "partially"}


def test_lava_records_keep_the_region_id_as_track_and_the_exact_values() -> None:
    frames, problems = lava_frames(job_type("vehicle"), vehicle_track(), CLIP)
    assert problems == []
    vehicle = frames[1].objects[0]
    assert isinstance(vehicle, Vehicle)
    assert vehicle.track_id == "trk7"
    assert vehicle.box == Box(left=40, top=20, right=80, bottom=50)
    assert vehicle.attributes.type is VehicleType.TRUCK
    assert vehicle.attributes.occlusion is Occlusion.PARTIALLY_OCCLUDED


def test_a_frame_past_the_lifespan_has_no_object() -> None:
    clip = VideoFrames(200, 100, 10, 20, (*CLIP.frames, FrameRef(3, "000003.jpg", 16)))
    frames, _ = lava_frames(job_type("vehicle"), vehicle_track(), clip)
    assert [len(f.objects) for f in frames] == [1, 1, 1, 0]


def test_a_license_plate_region_is_attached_to_the_vehicle_that_contains_it() -> None:
    plate = {
        "id": "p1",
        "type": "videorectangle",
        "value": {
            "sequence": [{"frame": 6, "x": 22, "y": 40, "width": 5, "height": 5, "enabled": False}],
            "labels": ["license plate"],
        },
    }
    frames, problems = lava_frames(job_type("vehicle"), [*vehicle_track(), plate], CLIP)
    assert problems == []
    vehicle = frames[1].objects[0]
    assert isinstance(vehicle, Vehicle)
    assert vehicle.license_plate == Box(left=44, top=40, right=54, bottom=45)
    assert frames[0].objects[0].license_plate is None  # type: ignore[union-attr]


def test_detection_regions_are_single_frames_without_track_ids() -> None:
    light = [
        {
            "id": "r1",
            "type": "videorectangle",
            "value": {
                "sequence": [
                    {"frame": 6, "x": 50, "y": 10, "width": 5, "height": 10, "enabled": False}
                ],
                "labels": ["traffic light"],
            },
        },
        {
            "id": "r1",
            "type": "choices",
            "from_name": "traffic_light.state",
            "value": {"choices": ["red"]},
        },
        {
            "id": "r1",
            "type": "choices",
            "from_name": "traffic_light.is_front",
            "value": {"choices": ["yes"]},
        },
        {
            "id": "r1",
            "type": "choices",
            "from_name": "traffic_light.occlusion",
            "value": {"choices": ["not occluded"]},
        },
    ]
    frames, problems = lava_frames(job_type("traffic_light"), light, CLIP)
    assert problems == []
    assert [len(f.objects) for f in frames] == [0, 1, 0]
    obj = frames[1].objects[0]
    assert isinstance(obj, TrafficLight)
    assert obj.track_id is None
    assert obj.attributes.is_front is True
    assert obj.box == Box(left=100, top=10, right=110, bottom=20)


def test_a_polyline_on_the_frame_sequence_becomes_a_lane_on_its_frame() -> None:
    line = [
        {
            "id": "v1",
            "type": "vectorlabels",
            "item_index": 2,
            "value": {
                "vertices": [{"x": 10, "y": 90}, {"x": 50, "y": 50}],
                "closed": False,
                "vectorlabels": ["lane"],
            },
        },
        {
            "id": "v1",
            "type": "choices",
            "from_name": "lane.lane_style",
            "value": {"choices": ["dashed"]},
        },
        {
            "id": "v1",
            "type": "choices",
            "from_name": "lane.lane_type",
            "value": {"choices": ["road curb"]},
        },
        {
            "id": "v1",
            "type": "choices",
            "from_name": "lane.lane_direction",
            "value": {"choices": ["vertical"]},
        },
    ]
    frames, problems = lava_frames(job_type("lane"), line, CLIP)
    assert problems == [], problems
    assert [len(f.objects) for f in frames] == [0, 0, 1]
    assert frames[2].objects[0].points == ((20, 90), (100, 50))


def test_what_cannot_be_used_is_reported_not_dropped_silently() -> None:
    unlabeled = {
        "id": "x",
        "type": "videorectangle",
        "value": {
            "sequence": [{"frame": 1, "x": 1, "y": 1, "width": 1, "height": 1, "enabled": False}]
        },
    }
    wrong = vehicle_track("t2")
    wrong[1] = {**wrong[1], "value": {"choices": ["spaceship"]}}
    _, problems = lava_frames(job_type("vehicle"), [unlabeled, *wrong], CLIP)
    codes = sorted(p.rule for p in problems)
    assert "ls-label" in codes and "ls-attribute" in codes


def test_segment_suffixes_map_back_to_the_track() -> None:
    assert track_of("abc~2") == "abc"
    assert track_of("abc") == "abc"
    assert track_of("a~b") == "a~b"


@pytest.mark.parametrize("name", sorted(JOB_TYPES))
def test_the_sample_sidecar_survives_a_round_trip_through_label_studio(
    name: str, tmp_path: Path
) -> None:
    sample = small_clip(tmp_path, seconds=2, fps=10, size=(320, 180))
    labels = sample.labels
    job = job_type(name)
    picked = labels.frames[::5]  # extracted at 2 fps from 10 fps
    clip = VideoFrames(
        labels.width,
        labels.height,
        labels.fps,
        len(labels.frames),
        tuple(FrameRef(i, f"{i:06d}.jpg", r.frame_no + 1) for i, r in enumerate(picked)),
    )
    results = lava_to_results(job, zip(clip.frames, (r.objects for r in picked), strict=True), clip)
    frames, problems = lava_frames(job, results, clip)
    assert problems == []
    for record, frame in zip(picked, frames, strict=True):
        want = [o for o in record.objects if o.category in job.lava_classes]
        got = list(frame.objects)
        if name == "lane":  # the frame sequence has no track ids
            want = [o.model_copy(update={"track_id": None}) for o in want]
        # percent coordinates cost a few ulps: compare at a millionth of a pixel
        assert sorted(rounded(o) for o in got) == sorted(rounded(o) for o in want)


def rounded(obj: LavaObject) -> str:
    def walk(value: Any) -> Any:
        if isinstance(value, float):
            return round(value, 6)
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    return json.dumps(walk(obj.model_dump(mode="json")), sort_keys=True)


@pytest.mark.parametrize("name", sorted(JOB_TYPES))
def test_every_job_type_has_a_config_with_the_lava_values(name: str) -> None:
    job = job_type(name)
    for review in (False, True):
        root = ET.fromstring(labeling_config(job, review=review))
        tags = {el.tag for el in root.iter()}
        if surface_of(job) is Surface.VIDEO:
            assert {"Video", "VideoRectangle", "Labels"} <= tags
        else:
            assert {"Image", "VectorLabels"} <= tags
        labels = {el.get("value") for el in root.iter("Label")}
        assert labels == {label.label for label in job.labels}
        controls = {el.get("name") for el in root.iter("Choices")}
        assert controls == {f"{lb.lava}.{a.name}" for lb in job.labels for a in lb.attributes}


def test_long_values_are_offered_in_full_without_short_codes() -> None:
    config = labeling_config(job_type("traffic_sign"))
    assert "red and white regulatory" in config
    assert "red-white reg" not in config
    assert "partially occluded" in config
