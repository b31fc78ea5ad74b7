"""MOTA / IDF1 of labeled tracks against a clip's ground truth, with motmetrics.

motmetrics 1.4's ``distances.iou_matrix`` calls ``np.asfarray``, which NumPy 2 removed; the
IoU distances are computed here instead (1 - IoU, NaN below the match threshold - the same
convention), so the accumulator and metrics of motmetrics are used unchanged, without a shim.
Track ids are passed as integers: with current pandas, motmetrics 1.4 cannot take strings.
"""

from __future__ import annotations

import math

from shared.layout import FrameIndex
from shared.taxonomy.records import ClipLabels


def mot_scores(
    labels: ClipLabels,
    truth: ClipLabels,
    index: FrameIndex,
    category: str,
    min_iou: float = 0.5,
) -> tuple[float, float]:
    """(MOTA, IDF1) of ``category`` tracks over the labeled frames."""
    import motmetrics as mm

    acc = mm.MOTAccumulator(auto_id=True)
    ids: dict[str | None, int] = {}

    def number(track: str | None) -> int:
        # motmetrics 1.4 builds float columns from the ids: give it integers
        return ids.setdefault(track, len(ids) + 1)

    by_source = {f.frame_no: f for f in truth.frames}
    source_of = {f.frame_no: f.source_frame for f in index.frames}
    for record in labels.frames:
        expected = [
            o
            for o in by_source[source_of[record.frame_no]].objects
            if o.category == category and o.box is not None
        ]
        got = [o for o in record.objects if o.category == category and o.box is not None]
        distances = []
        for t in expected:
            row = []
            for h in got:
                assert t.box is not None and h.box is not None
                iou = t.box.iou(h.box)
                row.append(1 - iou if iou >= min_iou else math.nan)
            distances.append(row)
        acc.update(
            [number(o.track_id) for o in expected], [number(o.track_id) for o in got], distances
        )
    summary = mm.metrics.create().compute(acc, metrics=["mota", "idf1"], name="clip")
    return float(summary["mota"]["clip"]), float(summary["idf1"]["clip"])
