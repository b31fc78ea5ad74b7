"""Ground Truth formats: label configs, sequence files, messages, annotation files, `lava gt`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from shared.groundtruth.annotations import parse_seq_label
from shared.groundtruth.convert import AttributeStats, from_seq_label
from shared.groundtruth.errors import GtFormatError
from shared.groundtruth.job_types import JOB_TYPES, job_type
from shared.groundtruth.label_config import (
    CategoryAttribute,
    Instructions,
    LabelCategory,
    LabelCategoryConfig,
    label_config,
)
from shared.groundtruth.messages import (
    DedupKey,
    OutputStatus,
    dedup_key_of,
    input_message,
    parse_output_message,
)
from shared.groundtruth.sequence import SequenceFile, parse_sequence_file
from shared.groundtruth.vocabulary import SHORT_CODES, UnknownCode, from_gt, to_gt
from shared.taxonomy.records import Lane, TrafficSign, Vehicle
from shared.taxonomy.vocabulary import Occlusion, SignType

FIXTURES = Path(__file__).parent / "fixtures" / "gt"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


# --- label category files ---------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(JOB_TYPES))
@pytest.mark.parametrize("audit", [None, "VOTSomething-ref"])
def test_generated_label_configs_respect_ground_truth_limits(name: str, audit: str | None) -> None:
    config = label_config(job_type(name), audit)
    assert config.limit_violations() == []
    data = json.loads(config.to_json())
    assert data["documentVersion"] == "2020-03-01"
    assert len(data["labels"]) <= 30
    for label in data["labels"]:
        assert len(label["label"]) <= 16
        assert len(label.get("categoryAttributes", [])) <= 10
        for attr in label.get("categoryAttributes", []):
            assert len(attr["enum"]) <= 10
            assert all(len(value) <= 16 for value in attr["enum"])
            assert attr["isRequired"] is True
    if audit:
        assert data["auditLabelAttributeName"] == audit
        assert all(label["editsAllowed"] == "any" for label in data["labels"])
    else:
        assert "auditLabelAttributeName" not in data


def test_limit_checker_catches_every_quota() -> None:
    bad = LabelCategoryConfig(
        labels=[
            LabelCategory(
                label="a label that is far too long",
                categoryAttributes=[CategoryAttribute(name=f"a{i}", enum=["x"]) for i in range(11)]
                + [CategoryAttribute(name="z", enum=[str(i) for i in range(11)])]
                + [CategoryAttribute(name="w", enum=["highway construction and maintenance"])],
            )
        ],
        frameAttributes=[CategoryAttribute(name="f")],
        instructions=Instructions(shortInstruction="s", fullInstruction="f"),
    )
    text = "; ".join(bad.limit_violations())
    assert "longer than 16" in text
    assert "13 attributes" in text
    assert "11 values" in text
    assert "'highway construction and maintenance' is too long" in text
    assert "needs a description" in text


def test_short_codes_are_reversible_and_fit() -> None:
    for member in (*Occlusion, *SignType):
        code = to_gt(member)
        assert len(code) <= 16
        assert from_gt(type(member), code) is member
        assert from_gt(type(member), member.value) is member  # the long spelling too
    assert to_gt(SignType.HIGHWAY_CONSTRUCTION_AND_MAINTENANCE) == "hwy construction"
    assert set(SHORT_CODES) == {
        Occlusion.PARTIALLY_OCCLUDED,
        SignType.RED_AND_WHITE_REGULATORY,
        SignType.HIGHWAY_CONSTRUCTION_AND_MAINTENANCE,
    }
    with pytest.raises(UnknownCode, match="not a SignType"):
        from_gt(SignType, "speed limit")


# --- sequence files and input messages --------------------------------------------------------


def _sequence(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "seq-no": 0,
        "prefix": "s3://lava-data/clips/c1/frames/",
        "number-of-frames": 2,
        "frames": [
            {"frame-no": 0, "unix-timestamp": 1700000000, "frame": "000000.jpg"},
            {"frame-no": "1", "unix-timestamp": 1700000000.2, "frame": "000001.jpg"},
        ],
    }
    data.update(changes)
    return data


def test_sequence_file_round_trip_and_string_frame_numbers() -> None:
    seq = parse_sequence_file(_sequence())
    assert [f.frame_no for f in seq.frames] == [0, 1]
    assert seq.frame_uri(seq.frames[1]) == "s3://lava-data/clips/c1/frames/000001.jpg"
    again = json.loads(seq.to_json())
    assert again["number-of-frames"] == 2 and again["frames"][1]["unix-timestamp"] == 1700000000
    assert parse_sequence_file(seq.to_json()) == seq


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"prefix": "s3://lava-data/clips/c1/frames"}, "prefix must end with '/'"),
        ({"number-of-frames": 3}, "number-of-frames is 3 but 2 frames"),
        ({"frames": []}, "frames"),
    ],
)
def test_sequence_file_rules(change: dict[str, Any], reason: str) -> None:
    with pytest.raises(GtFormatError, match=reason):
        parse_sequence_file(_sequence(**change))


def test_input_message_carries_the_dedup_fields() -> None:
    key = DedupKey("lava-dedup-id", "clip-1.vehicles/ab12/VOTVehicle/0")
    body = input_message("s3://lava-data/c/sequence.json", key, {"VOTVehicle-ref": "s3://x/y"})
    assert body["dataset-objectid-attribute-name"] == "lava-dedup-id"
    assert body["lava-dedup-id"] == key.id
    assert dedup_key_of(body) == key
    assert isinstance(SequenceFile, type)


@pytest.mark.parametrize("name", ["has_underscore", "-leading", "trailing-", "a" * 141, ""])
def test_dedup_key_names_follow_ground_truth_rules(name: str) -> None:
    with pytest.raises(ValueError, match="dedup key name"):
        DedupKey(name, "id")


def test_dedup_key_id_length() -> None:
    DedupKey("k", "x" * 1024)
    with pytest.raises(ValueError, match="1-1024"):
        DedupKey("k", "x" * 1025)


# --- output messages --------------------------------------------------------------------------


def test_completed_tracking_output_inside_an_sns_envelope() -> None:
    msg = parse_output_message(fixture("tracking_completed.json"))
    assert msg.status is OutputStatus.COMPLETED
    assert msg.job_name == "VOTVehicle"
    assert msg.label_attribute == "VOTVehicle-ref"
    assert msg.label_uri and msg.label_uri.endswith("/SeqLabel.json")
    assert msg.dedup_key == DedupKey("lava-dedup-id", "clip-7.vehicles/a1b2/VOTVehicle/0")
    assert msg.class_map["1"] == "license plate"
    assert msg.adjustment_status is None


def test_adjustment_output_picks_the_adjusting_attribute() -> None:
    msg = parse_output_message(fixture("adjustment_completed.json"))
    assert msg.label_attribute == "AdjVOTVehicle-ref"
    assert msg.adjustment_status == "adjusted"
    assert msg.job_name == "AdjVOTVehicle"
    # The listener knows the attribute and can ask for it explicitly.
    first = parse_output_message(fixture("adjustment_completed.json"), "VOTVehicle-ref")
    assert first.job_name == "VOTVehicle"


def test_expired_and_failed_outputs() -> None:
    expired = parse_output_message(fixture("expired.json"))
    assert expired.status is OutputStatus.EXPIRED and expired.label_uri is None
    assert expired.failure_reason and expired.failure_reason.startswith("ClientError: Annotation")
    failed = parse_output_message(fixture("failed.json"))
    assert failed.status is OutputStatus.FAILED
    assert failed.dedup_key is not None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("garbage", "message"),
        ("[1]", "message"),
        ('{"Type": "Notification", "Message": "{nope"}', "Message"),
        ('{"source-ref": "s3://a/b"}', "<label-attribute>-metadata"),
        ('{"X-ref-metadata": {"job-name": "j"}}', "X-ref"),
        ('{"X-ref": 5, "X-ref-metadata": {}}', "X-ref"),
    ],
)
def test_garbage_names_the_field(body: str, field: str) -> None:
    with pytest.raises(GtFormatError) as err:
        parse_output_message(body)
    assert err.value.field == field


# --- annotation files -------------------------------------------------------------------------


def test_tracking_file_with_string_frame_numbers_and_vehicle_parts() -> None:
    msg = parse_output_message(fixture("tracking_completed.json"))
    frames, problems = from_seq_label(
        parse_seq_label(fixture("tracking_labels.json")), msg.class_map
    )
    assert problems == []
    assert [f.frame_no for f in frames] == [0, 1]
    car = frames[0].objects[0]
    assert isinstance(car, Vehicle)
    assert car.attributes.occlusion is Occlusion.PARTIALLY_OCCLUDED
    assert car.box.right == 500 and car.box.bottom == 500
    assert car.license_plate is not None and car.license_plate.left == 370
    assert car.lights[0].kind == "head" and car.lights[0].state == "on"
    assert frames[1].objects[0].track_id == car.track_id  # same object-id, same track


def test_detection_file_maps_short_codes_back() -> None:
    msg = parse_output_message(fixture("detection_completed.json"))
    frames, problems = from_seq_label(
        parse_seq_label(fixture("detection_labels.json")), msg.class_map
    )
    assert problems == []
    signs = frames[0].objects
    assert all(isinstance(s, TrafficSign) for s in signs)
    assert [s.attributes.type for s in signs] == [  # type: ignore[union-attr]
        SignType.HIGHWAY_CONSTRUCTION_AND_MAINTENANCE,
        SignType.RED_AND_WHITE_REGULATORY,
    ]
    assert [s.track_id for s in signs] == [None, None]


def test_polyline_file() -> None:
    frames, problems = from_seq_label(
        parse_seq_label(fixture("polyline_labels.json")), {"0": "lane"}
    )
    assert problems == []
    (only,) = frames[0].objects
    assert isinstance(only, Lane)
    assert only.points[-1] == (550.5, 420.0)
    assert frames[0].frame_no == 3


def test_annotation_problems_are_reported_not_fatal() -> None:
    data = json.loads(fixture("detection_labels.json"))
    anns = data["detection-annotations"][0]["annotations"]
    anns[0]["label-category-attributes"]["type"] = "speed limit"
    del anns[1]["label-category-attributes"]["occlusion"]
    anns.append({"top": 1, "left": 1, "width": 2, "height": 2, "class-id": "7"})
    stats = AttributeStats()
    frames, problems = from_seq_label(parse_seq_label(data), {"0": "traffic sign"}, stats)
    # Both signs are kept (a worker drew them); what is unusable is null and located.
    first, second = frames[0].objects
    assert isinstance(first, TrafficSign) and isinstance(second, TrafficSign)
    assert first.attributes.type is None and second.attributes.occlusion is None
    assert [p.rule for p in problems] == ["gt-attribute", "gt-class"]
    assert problems[0].field == "attributes.type" and problems[0].frame_no == 0
    assert stats.missing == 2  # detection objects have no track to carry from


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({}, "tracking-annotations"),
        ({"tracking-annotations": [{"frame": "x"}]}, "tracking-annotations[0].frame-no"),
        (
            {"tracking-annotations": [{"frame-no": "zero", "annotations": []}]},
            "tracking-annotations[0].frame-no",
        ),
        (
            {"detection-annotations": [{"frame-no": 0, "annotations": [{"class-id": "0"}]}]},
            "detection-annotations[0].annotations[0].left",
        ),
    ],
)
def test_unreadable_annotation_files_name_the_field(data: dict[str, Any], field: str) -> None:
    with pytest.raises(GtFormatError) as err:
        parse_seq_label(data)
    assert err.value.field == field


# --- `lava gt parse` and `lava taxonomy label-config` -----------------------------------------


def lava(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lava", *args],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=60,
    )


def test_lava_gt_parse_prints_lava_json() -> None:
    out = lava(
        "gt",
        "parse",
        str(FIXTURES / "tracking_completed.json"),
        "--labels",
        str(FIXTURES / "tracking_labels.json"),
    )
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["status"] == "completed"
    assert data["dedup_key_name"] == "lava-dedup-id"
    assert data["dedup_key"] == "clip-7.vehicles/a1b2/VOTVehicle/0"
    obj = data["frames"][0]["objects"][0]
    assert obj["category"] == "vehicle"
    assert obj["box"] == {"left": 300.0, "top": 400.0, "right": 500.0, "bottom": 500.0}
    assert obj["points"] is None
    assert obj["attributes"] == {"type": "car", "occlusion": "partially occluded"}


def test_lava_gt_parse_expired_and_garbage(tmp_path: Path) -> None:
    out = lava("gt", "parse", str(FIXTURES / "expired.json"))
    data = json.loads(out.stdout)
    assert data["status"] == "expired" and data["frames"] == []
    garbage = tmp_path / "garbage.json"
    garbage.write_text('{"source-ref": "s3://a/b"}')
    bad = lava("gt", "parse", str(garbage))
    assert bad.returncode != 0
    assert (
        bad.stderr.strip()
        .splitlines()[-1]
        .startswith("Error: unparseable: <label-attribute>-metadata:")
    )


def test_lava_taxonomy_label_config() -> None:
    out = lava("taxonomy", "label-config", "traffic_sign", "--adjustment-of", "VODTrafficSign-ref")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["auditLabelAttributeName"] == "VODTrafficSign-ref"
    assert "hwy construction" in data["labels"][0]["categoryAttributes"][0]["enum"]
