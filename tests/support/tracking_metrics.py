"""MOTA and IDF1 of final labels against a clip's sidecar, computed with motmetrics.

motmetrics 1.4.0 (its latest release) builds IoU distances with ``np.asfarray``, which NumPy 2
removed; its accumulator and metrics do not need it. So the distance matrix is made here from
motmetrics' own ``boxiou`` on float arrays - the same formula, the same do-not-pair rule (NaN
beyond ``1 - min_iou``) - and everything else is motmetrics as published.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import motmetrics as mm
import numpy as np
import numpy.typing as npt

from shared.layout import FrameIndex
from shared.taxonomy.records import ClipLabels, LavaObject


@dataclass(frozen=True)
class TrackingScores:
    mota: float
    idf1: float
    truth_boxes: int
    matches: int


def _xywh(objects: Sequence[LavaObject]) -> npt.NDArray[np.float64]:
    rows = [(o.box.left, o.box.top, o.box.width, o.box.height) for o in objects if o.box]
    return np.asarray(rows, dtype=np.float64).reshape(-1, 4)


def iou_distances(
    truth: npt.NDArray[np.float64], hypotheses: npt.NDArray[np.float64], min_iou: float
) -> npt.NDArray[np.float64]:
    if truth.size == 0 or hypotheses.size == 0:
        return np.empty((len(truth), len(hypotheses)))
    distance = 1 - mm.distances.boxiou(truth[:, None], hypotheses[None, :])
    return np.where(distance > 1 - min_iou, np.nan, distance)


def tracking_scores(
    labels: ClipLabels,
    truth: ClipLabels,
    index: FrameIndex,
    classes: set[str],
    min_iou: float = 0.5,
) -> TrackingScores:
    """Boxes of the tracked ``classes`` (each object with a track id), frame by frame: the
    labels' sampled frames against the sidecar's source frames they were taken from."""
    by_source = {f.frame_no: f for f in truth.frames}
    source_of = {f.frame_no: f.source_frame for f in index.frames}
    acc = mm.MOTAccumulator(auto_id=False)
    # motmetrics 1.4 stores ids as floats: number the tracks (UUIDs, sidecar names) per side
    truth_ids: dict[str, int] = {}
    label_ids: dict[str, int] = {}

    def number(ids: dict[str, int], obj: LavaObject) -> int:
        return ids.setdefault(f"{obj.category}:{obj.track_id}", len(ids) + 1)

    boxes = 0
    for record in labels.frames:
        expected = [
            o
            for o in by_source[source_of[record.frame_no]].objects
            if o.category in classes and o.box is not None and o.track_id
        ]
        got = [o for o in record.objects if o.category in classes and o.box is not None]
        boxes += len(expected)
        acc.update(
            [number(truth_ids, o) for o in expected],
            [number(label_ids, o) for o in got],
            iou_distances(_xywh(expected), _xywh(got), min_iou),
            frameid=record.frame_no,
        )
    summary = mm.metrics.create().compute(acc, metrics=["mota", "idf1", "num_matches"], name="clip")
    row = summary.loc["clip"]
    return TrackingScores(
        mota=float(row["mota"]),
        idf1=float(row["idf1"]),
        truth_boxes=boxes,
        matches=int(row["num_matches"]),
    )
