"""Which object of one labeling is which object of another, frame by frame.

Tracked objects (a track id on both sides) are the same object when their track ids are equal,
whatever class each side gave it - that is how a relabelling shows. Untracked objects are paired
greedily by box IoU (highest first, at least ``min_iou``), across classes for the same reason;
polylines without a box pair in order within their class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shared.taxonomy.records import LavaObject


@dataclass(frozen=True)
class FrameMatch:
    pairs: list[tuple[LavaObject, LavaObject]]
    only_left: list[LavaObject]
    only_right: list[LavaObject]


def match_frame(
    left: Sequence[LavaObject], right: Sequence[LavaObject], min_iou: float
) -> FrameMatch:
    pairs: list[tuple[LavaObject, LavaObject]] = []
    rest_left = list(left)
    rest_right = list(right)
    by_track = {o.track_id: o for o in rest_right if o.track_id}
    for obj in list(rest_left):
        twin = by_track.pop(obj.track_id, None) if obj.track_id else None
        if twin is not None:
            pairs.append((obj, twin))
            rest_left.remove(obj)
            rest_right.remove(twin)
    candidates = sorted(
        (
            (a.box.iou(b.box), i, j)
            for i, a in enumerate(rest_left)
            for j, b in enumerate(rest_right)
            if a.box is not None and b.box is not None
        ),
        key=lambda c: (-c[0], c[1], c[2]),
    )
    used_left: set[int] = set()
    used_right: set[int] = set()
    for iou, i, j in candidates:
        if iou < min_iou or i in used_left or j in used_right:
            continue
        pairs.append((rest_left[i], rest_right[j]))
        used_left.add(i)
        used_right.add(j)
    rest_left = [o for i, o in enumerate(rest_left) if i not in used_left]
    rest_right = [o for j, o in enumerate(rest_right) if j not in used_right]
    for obj in list(rest_left):
        if obj.box is not None:
            continue
        twin = next((r for r in rest_right if r.box is None and r.category == obj.category), None)
        if twin is not None:
            pairs.append((obj, twin))
            rest_left.remove(obj)
            rest_right.remove(twin)
    return FrameMatch(pairs, rest_left, rest_right)


def attribute_values(obj: LavaObject) -> dict[str, object]:
    """An object's attributes by name (``None``: not given)."""
    return dict(obj.attributes.model_dump(mode="json"))


def flipped_attributes(before: LavaObject, after: LavaObject) -> tuple[int, int]:
    """(attributes compared, attributes that differ) of two objects of the same class; a value
    one side did not give is not compared."""
    if before.category != after.category:
        return 0, 0
    a, b = attribute_values(before), attribute_values(after)
    shared = [k for k in a if k in b and a[k] is not None and b[k] is not None]
    return len(shared), sum(1 for k in shared if a[k] != b[k])
