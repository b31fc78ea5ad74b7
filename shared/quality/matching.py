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


@dataclass(frozen=True)
class _Rule:
    same_class: bool

    def may_pair(self, a: LavaObject, b: LavaObject) -> bool:
        return not self.same_class or a.category == b.category

    def by_overlap(self, a: LavaObject) -> bool:
        """May be paired other than by its track id."""
        return not self.same_class or a.track_id is None


def match_frame(
    left: Sequence[LavaObject],
    right: Sequence[LavaObject],
    min_iou: float,
    *,
    same_class: bool = False,
) -> FrameMatch:
    """Pair the objects of one frame. ``same_class``: a pair must keep its class, and a tracked
    object is only ever its own track (post-processing's adjustment summary); without it,
    pairs may cross classes so that a relabelling shows (the quality agreement)."""
    rule = _Rule(same_class)
    rest_left, rest_right = list(left), list(right)
    pairs = _by_track(rule, rest_left, rest_right)
    pairs += _by_box(rule, rest_left, rest_right, min_iou)
    pairs += _polylines(rule, rest_left, rest_right)
    return FrameMatch(pairs, rest_left, rest_right)


Pairs = list[tuple[LavaObject, LavaObject]]


def _by_track(rule: _Rule, left: list[LavaObject], right: list[LavaObject]) -> Pairs:
    """Tracked objects by track id; the pairs leave ``left`` and ``right``."""
    pairs: Pairs = []
    by_track = {o.track_id: o for o in right if o.track_id}
    for obj in list(left):
        twin = by_track.pop(obj.track_id, None) if obj.track_id else None
        if twin is not None and rule.may_pair(obj, twin):
            pairs.append((obj, twin))
            left.remove(obj)
            right.remove(twin)
    return pairs


def _by_box(rule: _Rule, left: list[LavaObject], right: list[LavaObject], min_iou: float) -> Pairs:
    """Boxes greedily by IoU, highest first; the pairs leave ``left`` and ``right``."""
    candidates = sorted(
        (
            (a.box.iou(b.box), i, j)
            for i, a in enumerate(left)
            for j, b in enumerate(right)
            if a.box is not None
            and b.box is not None
            and rule.may_pair(a, b)
            and rule.by_overlap(a)
            and rule.by_overlap(b)
        ),
        key=lambda c: (-c[0], c[1], c[2]),
    )
    pairs: Pairs = []
    used_left: set[int] = set()
    used_right: set[int] = set()
    for iou, i, j in candidates:
        if iou < min_iou or i in used_left or j in used_right:
            continue
        pairs.append((left[i], right[j]))
        used_left.add(i)
        used_right.add(j)
    left[:] = [o for i, o in enumerate(left) if i not in used_left]
    right[:] = [o for j, o in enumerate(right) if j not in used_right]
    return pairs


def _polylines(rule: _Rule, left: list[LavaObject], right: list[LavaObject]) -> Pairs:
    """Polylines without a box, in order within their class; the pairs leave both lists."""
    pairs: Pairs = []
    for obj in list(left):
        if obj.box is not None or not rule.by_overlap(obj):
            continue
        twin = next(
            (
                r
                for r in right
                if r.box is None and r.category == obj.category and rule.by_overlap(r)
            ),
            None,
        )
        if twin is not None:
            pairs.append((obj, twin))
            left.remove(obj)
            right.remove(twin)
    return pairs


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
