"""The LAVA taxonomy: exact vocabularies and every validation rule, with its location."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import pytest

from shared.taxonomy import vocabulary as v
from shared.taxonomy.records import Box, ClipLabels
from shared.taxonomy.validation import parse_clip_labels, validate_clip
from tests.support.labels import clip_labels, frame, lane, light, pedestrian, sign, vehicle


@pytest.mark.parametrize(
    ("enum", "values"),
    [
        (v.Weather, ["clear", "overcast", "partly cloudy", "rainy", "foggy", "undefined"]),
        (v.TimeOfDay, ["daytime", "night", "dawn/dusk", "undefined"]),
        (
            v.Scene,
            [
                "highway",
                "tunnel",
                "residential",
                "parking lot",
                "city street",
                "gas station",
                "intersection",
                "roundabout",
                "school zone",
                "construction",
                "entrance",
                "exit",
                "undefined",
            ],
        ),
        (v.Traffic, ["free-flowing", "stop-and-go", "undefined"]),
        (v.TrafficDensity, ["high", "medium", "low"]),
        (v.VehicleType, ["car", "van", "truck", "bus", "motorbike", "bicycle", "undefined"]),
        (v.Occlusion, ["not occluded", "partially occluded", "major occlusion"]),
        (v.LaneStyle, ["solid", "dashed"]),
        (
            v.LaneType,
            [
                "crosswalk",
                "double other",
                "double white",
                "double yellow",
                "road curb",
                "single other",
                "single white",
                "single yellow",
            ],
        ),
        (v.LaneDirection, ["horizontal", "vertical"]),
        (v.LightState, ["red", "green", "yellow", "undefined"]),
        (
            v.SignType,
            [
                "stop",
                "yield",
                "do not enter",
                "wrong way",
                "school zone",
                "railroad",
                "red and white regulatory",
                "white regulatory",
                "highway construction and maintenance",
                "warning",
            ],
        ),
    ],
)
def test_vocabularies_are_exact(enum: type[StrEnum], values: list[str]) -> None:
    assert [m.value for m in enum] == values


def test_contruction_is_accepted_and_emitted_as_construction() -> None:
    assert v.Scene("contruction") is v.Scene.CONSTRUCTION
    assert v.Scene.CONSTRUCTION.value == "construction"
    with pytest.raises(ValueError):
        v.Scene("constructing")


def test_a_valid_clip_has_no_problems() -> None:
    labels = clip_labels(
        [
            frame(0, [vehicle("v1", plate=True, lights=True), pedestrian("p1"), lane(), sign()]),
            frame(1, [vehicle("v1"), pedestrian("p1")]),
        ]
    )
    assert validate_clip(labels) == []


def _only(labels: ClipLabels) -> Any:
    problems = validate_clip(labels)
    assert len(problems) == 1, problems
    return problems[0]


def test_box_outside_the_image_names_frame_object_and_field() -> None:
    p = _only(
        clip_labels(
            [frame(4, [pedestrian("p9", box=Box(left=1900, top=10, right=1930, bottom=50))])]
        )
    )
    assert (p.rule, p.frame_no, p.object_index, p.category, p.track_id, p.field) == (
        "box-inside-image",
        4,
        0,
        "pedestrian",
        "p9",
        "box",
    )
    assert "frame 4, pedestrian p9 (#0), box" in str(p)


@pytest.mark.parametrize(
    "box",
    [Box(left=50, top=10, right=40, bottom=60), Box(left=10, top=60, right=50, bottom=60)],
)
def test_box_sides_must_be_ordered(box: Box) -> None:
    assert _only(clip_labels([frame(0, [sign(box=box)])])).rule == "box-order"


def test_license_plate_must_be_inside_its_vehicle() -> None:
    outside = Box(left=10, top=10, right=30, bottom=20)
    p = _only(clip_labels([frame(2, [vehicle("v1", plate_box=outside)])]))
    assert (p.rule, p.field, p.track_id) == ("plate-inside-vehicle", "license_plate", "v1")


def test_lights_must_be_inside_their_vehicle() -> None:
    veh = vehicle("v1").model_copy(
        update={"lights": (light(Box(left=0, top=0, right=5, bottom=5)),)}
    )
    p = _only(clip_labels([frame(0, [veh])]))
    assert (p.rule, p.field) == ("part-inside-vehicle", "lights[0]")


def test_polyline_needs_two_points_inside_the_image() -> None:
    assert _only(clip_labels([frame(0, [lane(points=((5, 5),))])])).rule == "polyline-points"
    p = _only(clip_labels([frame(0, [lane(points=((5, 5), (5000, 5)))])]))
    assert (p.rule, p.field) == ("polyline-inside-image", "points[1]")


def test_a_track_is_one_object_per_frame() -> None:
    p = _only(clip_labels([frame(0, [vehicle("t1"), vehicle("t1")])]))
    assert (p.rule, p.object_index) == ("track-unique-in-frame", 1)


def test_a_track_keeps_one_class_across_frames() -> None:
    p = _only(clip_labels([frame(0, [vehicle("t1")]), frame(1, [pedestrian("t1")])]))
    assert (p.rule, p.frame_no, p.category) == ("track-one-class", 1, "pedestrian")
    assert "vehicle in frame 0" in p.message


def test_wrong_enum_values_are_reported_with_their_location() -> None:
    data = clip_labels([frame(0, []), frame(7, [vehicle("v1")])]).model_dump(mode="json")
    data["frames"][1]["objects"][0]["attributes"]["type"] = "tank"
    labels, problems = parse_clip_labels(data)
    assert labels is None
    assert len(problems) == 1
    p = problems[0]
    assert (p.rule, p.frame_no, p.object_index, p.field) == ("schema", 7, 0, "attributes.type")


def test_records_inherit_drive_and_clip_attributes() -> None:
    labels = clip_labels([frame(0, [])])
    record = labels.frames[0]
    assert record.drive.weather == "rainy" and record.clip.scene == "intersection"
    assert record.clip.clip_id == labels.clip_id
