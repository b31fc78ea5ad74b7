"""A gold clip's labels scored against its truth.

Tracked classes: MOTA and IDF1 at IoU 0.5 from motmetrics (its accumulator and metrics as
published; the IoU distance matrix is built here from its own ``boxiou``, because motmetrics
1.4's helper calls ``np.asfarray``, which NumPy 2 removed). Every class: precision and recall of
object instances (pairs from :mod:`shared.quality.matching`, IoU >= 0.5, same class), and
attribute accuracy over the attributes both sides gave on those pairs. Counts travel with the
scores so that sums over clips are exact (MOTA and IDF1 are recomputed from their parts).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import motmetrics as mm
import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict

from shared.quality.matching import flipped_attributes, match_frame
from shared.taxonomy.records import LavaObject

Frames = Mapping[int, Sequence[LavaObject]]
GOLD_IOU = 0.5
METRICS = [
    "num_objects",
    "num_misses",
    "num_false_positives",
    "num_switches",
    "idtp",
    "idfp",
    "idfn",
]


class GoldCounts(BaseModel):
    """What one labeling of a gold clip got right, for one class; sums add up."""

    model_config = ConfigDict(extra="forbid")

    truth: int = 0  # truth instances
    labeled: int = 0  # labeled instances
    matched: int = 0  # same class, IoU >= 0.5
    attributes: int = 0
    attributes_right: int = 0
    # motmetrics' parts of MOTA and IDF1 (tracked classes only)
    tracked: bool = False
    misses: int = 0
    false_positives: int = 0
    switches: int = 0
    idtp: int = 0
    idfp: int = 0
    idfn: int = 0

    def plus(self, other: GoldCounts) -> GoldCounts:
        merged = {
            k: (getattr(self, k) or getattr(other, k))
            if k == "tracked"
            else getattr(self, k) + getattr(other, k)
            for k in type(self).model_fields
        }
        return GoldCounts(**merged)

    @property
    def precision(self) -> float | None:
        return self.matched / self.labeled if self.labeled else None

    @property
    def recall(self) -> float | None:
        return self.matched / self.truth if self.truth else None

    @property
    def attribute_accuracy(self) -> float | None:
        return self.attributes_right / self.attributes if self.attributes else None

    @property
    def mota(self) -> float | None:
        """1 - (misses + false positives + identity switches) / truth instances."""
        if not self.tracked or not self.truth:
            return None
        return 1.0 - (self.misses + self.false_positives + self.switches) / self.truth

    @property
    def idf1(self) -> float | None:
        """2 IDTP / (2 IDTP + IDFP + IDFN)."""
        denominator = 2 * self.idtp + self.idfp + self.idfn
        return 2 * self.idtp / denominator if self.tracked and denominator else None


def _xywh(objects: Sequence[LavaObject]) -> npt.NDArray[np.float64]:
    rows = [(o.box.left, o.box.top, o.box.width, o.box.height) for o in objects if o.box]
    return np.asarray(rows, dtype=np.float64).reshape(-1, 4)


def _distances(
    truth: npt.NDArray[np.float64], labeled: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    if truth.size == 0 or labeled.size == 0:
        return np.empty((len(truth), len(labeled)))
    distance = 1 - mm.distances.boxiou(truth[:, None], labeled[None, :])
    return np.asarray(np.where(distance > 1 - GOLD_IOU, np.nan, distance), dtype=np.float64)


def _tracking(category: str, labeled: Frames, truth: Frames) -> GoldCounts:
    """motmetrics over one tracked class's boxes, frame by frame."""
    acc = mm.MOTAccumulator(auto_id=False)
    # motmetrics stores ids as numbers: number the tracks (UUIDs, sidecar names) per side
    truth_ids: dict[str, int] = {}
    label_ids: dict[str, int] = {}

    def boxes(objects: Sequence[LavaObject]) -> list[LavaObject]:
        return [o for o in objects if o.category == category and o.box is not None]

    for frame_no in sorted(set(truth) | set(labeled)):
        expected = boxes(truth.get(frame_no, ()))
        got = boxes(labeled.get(frame_no, ()))
        acc.update(
            [
                truth_ids.setdefault(o.track_id or f"#{i}", len(truth_ids) + 1)
                for i, o in enumerate(expected)
            ],
            [
                label_ids.setdefault(o.track_id or f"#{i}", len(label_ids) + 1)
                for i, o in enumerate(got)
            ],
            _distances(_xywh(expected), _xywh(got)),
            frameid=frame_no,
        )
    row = mm.metrics.create().compute(acc, metrics=METRICS, name="clip").loc["clip"]
    return GoldCounts(
        tracked=True,
        misses=int(row["num_misses"]),
        false_positives=int(row["num_false_positives"]),
        switches=int(row["num_switches"]),
        idtp=int(row["idtp"]),
        idfp=int(row["idfp"]),
        idfn=int(row["idfn"]),
    )


def score(labeled: Frames, truth: Frames, tracked_classes: set[str]) -> dict[str, GoldCounts]:
    """Per class: the labels of a gold clip against its truth."""
    per_class: dict[str, GoldCounts] = {}

    def add(category: str, counts: GoldCounts) -> None:
        per_class[category] = per_class.get(category, GoldCounts()).plus(counts)

    for frame_no in sorted(set(truth) | set(labeled)):
        found = match_frame(truth.get(frame_no, ()), labeled.get(frame_no, ()), GOLD_IOU)
        for obj in found.only_left:
            add(obj.category, GoldCounts(truth=1))
        for obj in found.only_right:
            add(obj.category, GoldCounts(labeled=1))
        for expected, got in found.pairs:
            same = expected.category == got.category
            iou = expected.box.iou(got.box) if expected.box and got.box else 1.0
            right = same and iou >= GOLD_IOU
            compared, wrong = flipped_attributes(expected, got)
            add(
                expected.category,
                GoldCounts(
                    truth=1,
                    matched=int(right),
                    attributes=compared,
                    attributes_right=compared - wrong,
                ),
            )
            add(got.category, GoldCounts(labeled=1))
    classes = {o.category for frames in (truth, labeled) for objs in frames.values() for o in objs}
    for category in sorted(classes & tracked_classes):
        add(category, _tracking(category, labeled, truth))
    return dict(sorted(per_class.items()))
