"""Label quality measures: agreement between levels, gold scores, Wilson intervals."""

from __future__ import annotations

import random

import pytest

from emulators.groundtruth.labels import Noise, add_noise
from shared.quality.agreement import agreement
from shared.quality.confidence import wilson
from shared.quality.gold import score
from shared.taxonomy.records import Box, LavaObject, Pedestrian, VehicleAttributes
from tests.support.labels import pedestrian, sign, vehicle

Frames = dict[int, list[LavaObject]]


def _box(x: float) -> Box:
    return Box(left=x, top=100, right=x + 200, bottom=200)


def test_an_unchanged_level_is_all_kept() -> None:
    frames: Frames = {0: [vehicle("a"), sign()], 1: [vehicle("a"), sign()]}
    counts = agreement("l1", "l2", frames, frames).total()
    assert (counts.objects, counts.kept, counts.changed, counts.added) == (4, 4, 0, 0)


def test_agreement_counts_each_kind_of_change_once() -> None:
    level1: Frames = {
        0: [vehicle("a"), vehicle("b", _box(600)), pedestrian("p"), vehicle("gone", _box(1200))]
    }
    flipped = vehicle("b", _box(600)).model_copy(
        update={"attributes": VehicleAttributes(type="truck", occlusion="partially occluded")}
    )
    relabelled = Pedestrian(track_id="a", box=_box(100), attributes=pedestrian("x").attributes)
    final: Frames = {
        0: [
            relabelled,
            flipped,
            pedestrian("p", Box(left=500, top=300, right=540, bottom=400)),
            sign(),
        ]
    }
    per_class = agreement("l1", "l2", level1, final, moved_iou=0.5).per_class
    assert per_class["vehicle"].relabelled == 1
    assert per_class["vehicle"].attributes_flipped == 1
    assert per_class["vehicle"].deleted == 1
    assert per_class["pedestrian"].moved == 1
    assert per_class["pedestrian"].iou_shift_sum == pytest.approx(1.0)
    assert per_class["traffic_sign"].added == 1


def test_perfect_gold_labels_score_one_everywhere() -> None:
    truth: Frames = {n: [vehicle("a", _box(100 + 10 * n)), sign()] for n in range(4)}
    scores = score(truth, truth, {"vehicle"})
    car = scores["vehicle"]
    assert (car.precision, car.recall, car.attribute_accuracy) == (1.0, 1.0, 1.0)
    assert (car.mota, car.idf1) == (1.0, 1.0)
    assert scores["traffic_sign"].mota is None  # untracked: detection scores only


def test_a_missed_track_lowers_recall_mota_and_idf1_but_not_precision() -> None:
    truth: Frames = {n: [vehicle("a", _box(100)), vehicle("b", _box(800))] for n in range(4)}
    labeled: Frames = {n: [vehicle("x", _box(104))] for n in range(4)}
    car = score(labeled, truth, {"vehicle"})["vehicle"]
    assert car.precision == 1.0
    assert car.recall == 0.5
    assert car.mota == pytest.approx(0.5)
    assert car.idf1 == pytest.approx(2 * 4 / (2 * 4 + 0 + 4))


def test_gold_counts_add_up_over_clips() -> None:
    truth: Frames = {0: [vehicle("a")]}
    nothing: Frames = {0: []}
    one = score(nothing, truth, {"vehicle"})["vehicle"]
    two = score(truth, truth, {"vehicle"})["vehicle"]
    both = one.plus(two)
    assert (both.truth, both.matched, both.recall) == (2, 1, 0.5)


def test_wilson_interval_is_wide_at_small_n_and_stays_in_bounds() -> None:
    assert wilson(0, 0) is None
    low, high = wilson(5, 5) or (0.0, 0.0)
    assert high == 1.0 and 0.5 < low < 0.6
    narrow = wilson(500, 1000) or (0.0, 1.0)
    assert narrow[1] - narrow[0] < 0.07


def test_agreement_recovers_the_injected_noise_on_many_tracks() -> None:
    """What the end-to-end tests are too small to show: over 2,000 tracks the share of objects
    review added is the worker's miss share, and the share of objects with a changed attribute
    its wrong-attribute share (the emulator's own noise; seeded, so the same draws every run)."""
    box = Box(left=100, top=100, right=300, bottom=200)
    objects: list[LavaObject] = [vehicle(f"t{i}", box) for i in range(2000)]
    truth = [(f, f"{f}.jpg", objects) for f in range(3)]
    noisy = add_noise(truth, Noise(0.0, 0.35, 0.6), random.Random(27), 1920, 1080)
    found = agreement(
        "l1", "l2", {f: list(o) for f, _, o in noisy}, {f: list(o) for f, _, o in truth}
    ).total()
    assert abs(found.added / (found.objects + found.added) - 0.35) <= 0.05, found
    assert abs((found.objects - found.kept) / found.objects - 0.6) <= 0.05, found
    assert found.deleted == 0 and found.moved == 0  # no jitter injected: nothing else changed
