"""The AWS developer guide's own output examples, through `lava gt parse`: nothing a worker drew
is lost, parts find their vehicles, and problems appear only where information is missing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from lava.commands.gt import gt

GUIDE = Path(__file__).parent / "fixtures" / "gt" / "guide"
CAR = "480dc450-c0ca-11ea-961f-a9b1c5c97972"
VAN = "98f2b0b0-c0ca-11ea-961f-a9b1c5c97972"


def parse(message: str, labels: str | None = None, *extra: str) -> dict[str, Any]:
    args = ["parse", str(GUIDE / message)]
    if labels is not None:
        args += ["--labels", str(GUIDE / labels)]
    result = CliRunner().invoke(gt, [*args, *extra])
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.output)
    return data


def objects(data: dict[str, Any], frame: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = data["frames"][frame]["objects"]
    return found


def test_tracking_with_uuids_partial_attributes_and_parts_attached_by_geometry() -> None:
    data = parse("tracking_completed.json", "tracking_labels.json")
    assert data["status"] == "completed" and data["job_name"] == "lava-VOTVehicle"
    # frames keep their file names: they are matched to the sequence by name, not position
    assert [f["frame"] for f in data["frames"]] == [
        "frame_0001.jpeg",
        "frame_0002.jpeg",
        "frame_0003.jpeg",
    ]
    assert [f["frame_no"] for f in data["frames"]] == [0, 1, 2]
    # every vehicle drawn is there, under its object-id
    tracks = [[o["track_id"] for o in objects(data, i)] for i in range(3)]
    assert tracks == [[CAR], [CAR, VAN], [CAR, VAN]]
    car0, car1, car2 = (objects(data, i)[0] for i in range(3))
    # "type" given in frame 0 only: carried to frames 1 and 2 (nearest frame of the track)
    assert [c["attributes"]["type"] for c in (car0, car1, car2)] == ["car"] * 3
    # occlusion: frame 1 gave none; the nearest earlier frame (0) gives it
    assert [c["attributes"]["occlusion"] for c in (car0, car1, car2)] == [
        "not occluded",
        "not occluded",
        "partially occluded",
    ]
    # the plate (its own UUID) belongs to the car in every frame - also in frame 2, where the
    # smaller van overlaps it: the plate's track was the car's where the choice was clear
    assert all(c["license_plate"] is not None for c in (car0, car1, car2))
    assert objects(data, 2)[1]["license_plate"] is None
    assert car2["license_plate"]["left"] == 390
    # the tail light's state is carried from frame 0 to frame 1
    assert [light["state"] for light in car0["lights"] + car1["lights"]] == ["on", "on"]
    assert car0["lights"][0]["kind"] == "tail"
    # the van never got a type: kept, null, and one located warning per frame
    van = objects(data, 1)[1]
    assert van["attributes"] == {"type": None, "occlusion": "partially occluded"}
    missing = [p for p in data["problems"] if p["rule"] == "attribute-missing"]
    assert [(p["frame_no"], p["track_id"], p["field"], p["severity"]) for p in missing] == [
        (1, VAN, "attributes.type", "warning"),
        (2, VAN, "attributes.type", "warning"),
    ]
    assert data["problems"] == missing
    assert data["attribute_gaps"] == {"carried": 5, "missing": 2}


def test_detection_with_string_and_integer_frame_numbers_and_class_ids() -> None:
    data = parse("detection_completed.json", "detection_labels.json")
    assert [f["frame_no"] for f in data["frames"]] == [0, 1]
    assert [len(f["objects"]) for f in data["frames"]] == [2, 2]
    assert all(o["category"] == "traffic_sign" for f in data["frames"] for o in f["objects"])
    assert objects(data, 1)[1]["attributes"] == {
        "type": "red and white regulatory",
        "is_front": False,
        "occlusion": "partially occluded",
    }
    # detection objects have no object-id: nothing to carry from; the gaps are located
    missing = {(p["frame_no"], p["object_index"], p["field"]) for p in data["problems"]}
    assert missing == {
        (0, 1, "attributes.type"),
        (0, 1, "attributes.is_front"),
        (1, 0, "attributes.type"),
        (1, 0, "attributes.is_front"),
        (1, 0, "attributes.occlusion"),
    }
    assert {p["rule"] for p in data["problems"]} == {"attribute-missing"}


def test_polylines_with_vertices() -> None:
    data = parse("polyline_completed.json", "polyline_labels.json")
    first, second = objects(data, 0)[0], objects(data, 1)[0]
    assert first["category"] == second["category"] == "lane"
    assert first["points"][-1] == [550.5, 420.0]
    assert second["points"] == [[104.0, 1000.0], [404.0, 600.0]]
    assert second["attributes"] == first["attributes"]  # type and direction carried
    assert data["problems"] == []


def test_the_real_expired_shape() -> None:
    data = parse("expired.json")
    assert data["status"] == "expired"
    assert data["label_attribute"] == "VOTVehicle-ref"
    assert data["job_name"] is None  # the real expired line names no job
    assert data["dedup_key"] == "clip-7.vehicles/1-a1b2/VOTVehicle/0"
    assert data["failure_reason"].startswith("ClientError: Annotation tasks expired")


@pytest.mark.parametrize("message", ["empty_completed.json", "no_class_map_completed.json"])
def test_empty_or_missing_class_map_means_zero_objects(message: str) -> None:
    data = parse(message, "empty_labels.json")
    assert data["status"] == "completed"
    assert [f["objects"] for f in data["frames"]] == [[], []]
    assert data["problems"] == []


def test_class_ids_missing_from_the_class_map_come_from_the_job_type() -> None:
    # An output listing no classes with boxes in it: the job type's label category file
    # knows every class id.
    data = parse("no_class_map_completed.json", "tracking_labels.json", "--job-type", "vehicle")
    assert [len(f["objects"]) for f in data["frames"]] == [1, 2, 2]
    without = parse("no_class_map_completed.json", "tracking_labels.json")
    assert {p["rule"] for p in without["problems"]} == {"gt-class"}  # located, not silent


def test_adjustment_without_adjustment_status() -> None:
    data = parse("adjustment_completed.json", "adjustment_labels.json")
    assert data["label_attribute"] == "AdjVOTVehicle-ref"  # the newer of the two
    assert data["adjustment_status"] is None  # nothing said: nothing was changed
    assert [len(f["objects"]) for f in data["frames"]] == [1, 2, 2]
    assert objects(data, 2)[0]["license_plate"] is not None  # parts attached at this level too
