"""Summary numbers and the adjustment diff, checked by hand on small fixtures."""

from __future__ import annotations

from services.postproc.summary import adjustment_diff, summarize
from shared.taxonomy.records import Box, LavaObject, TrafficSign, TrafficSignAttributes
from shared.taxonomy.validation import LabelProblem
from tests.support.labels import clip_labels, frame, lane, pedestrian, sign, vehicle


def test_summary_numbers_by_hand() -> None:
    labels = clip_labels(
        [
            frame(0, [vehicle("v1", plate=True), vehicle("v2"), pedestrian("p1"), lane(), sign()]),
            frame(1, [vehicle("v1"), pedestrian("p1")]),
            frame(2, []),
        ]
    )
    problems = [LabelProblem("box-inside-image", "x", frame_no=0), LabelProblem("box-order", "y")]
    summary = summarize(labels, problems, workflows=["vehicles", "lanes"])
    assert summary.frames == 3
    assert summary.objects_per_class == {
        "lane": 1,
        "pedestrian": 2,
        "traffic_sign": 1,
        "vehicle": 3,
    }
    assert summary.tracks_per_class == {"lane": 1, "pedestrian": 1, "vehicle": 2}
    assert summary.objects_per_frame == {"mean": round(7 / 3, 3), "max": 5.0}
    assert summary.attributes["vehicle.type"] == {"car": 3}
    assert summary.attributes["vehicle.occlusion"] == {"partially occluded": 3}
    assert summary.attributes["vehicle.license_plate"] == {"absent": 2, "present": 1}
    assert summary.attributes["traffic_sign.is_front"] == {"true": 1}
    assert summary.attributes["traffic_sign.type"] == {"highway construction and maintenance": 1}
    assert summary.attributes["lane.lane_direction"] == {"vertical": 1}
    assert summary.problem_counts == {"error": 1, "warning": 1}
    assert summary.problems[0]["location"] == "frame 0"
    assert summary.drive["weather"] == "rainy" and summary.clip["scene"] == "intersection"


def test_adjustment_diff_by_hand() -> None:
    moved = Box(left=100, top=100, right=300, bottom=200)
    shifted = Box(left=140, top=100, right=340, bottom=200)  # IoU 160/240 = 0.67
    level1: dict[int, list[LavaObject]] = {
        0: [vehicle("v1"), vehicle("v2", box=moved), pedestrian("p1"), sign()],
        1: [vehicle("v1")],
    }
    changed_sign = TrafficSign(
        box=sign().box,
        attributes=TrafficSignAttributes(type="stop", is_front=True, occlusion="not occluded"),
    )
    final: dict[int, list[LavaObject]] = {
        0: [vehicle("v1"), vehicle("v2", box=shifted), changed_sign, pedestrian("p2")],
        1: [vehicle("v1"), vehicle("v3")],
    }
    diff = adjustment_diff("VOTVehicle", "AdjVOTVehicle", level1, final, moved_iou=0.9)
    assert diff.compared == 4  # v1 twice, v2, the sign (matched by box)
    assert diff.moved == 1  # v2
    assert diff.attributes_changed == 1  # the sign's type
    assert diff.removed == 1  # p1
    assert diff.added == 2  # p2, v3
    unchanged = adjustment_diff("A", "B", level1, level1, moved_iou=0.9)
    assert (unchanged.added, unchanged.removed, unchanged.moved, unchanged.attributes_changed) == (
        0,
        0,
        0,
        0,
    )
