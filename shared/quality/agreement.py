"""Level-to-level agreement: what the adjustment level changed in a first level's labels.

Counted per object instance (one object in one frame), per level-1 class (the final class for
an added object): ``kept`` (same class, box IoU >= ``moved_iou``, same attributes), ``moved``
(same class, IoU below it; its IoU shift ``1 - IoU`` summed for the mean), ``relabelled``
(another class), ``attributes_flipped`` (attribute values that changed, of ``attributes``
compared), ``added`` (in the final level only), ``deleted`` (in level 1 only).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field

from shared.quality.matching import flipped_attributes, match_frame
from shared.taxonomy.records import LavaObject

Frames = Mapping[int, Sequence[LavaObject]]


class Agreement(BaseModel):
    """Counts for one class (or a total); adding two is adding their counts."""

    model_config = ConfigDict(extra="forbid")

    objects: int = 0  # level-1 instances
    kept: int = 0
    moved: int = 0
    iou_shift_sum: float = 0.0  # sum of 1 - IoU over matched boxes of the same class
    boxes_compared: int = 0
    relabelled: int = 0
    attributes: int = 0
    attributes_flipped: int = 0
    added: int = 0
    deleted: int = 0

    def plus(self, other: Agreement) -> Agreement:
        merged = {k: getattr(self, k) + getattr(other, k) for k in type(self).model_fields}
        return Agreement(**merged)

    @property
    def changed(self) -> int:
        """Level-1 instances the adjustment touched in any way."""
        return self.objects - self.kept


class ClipAgreement(BaseModel):
    """One clip's level-1 job against the job that adjusted it."""

    model_config = ConfigDict(extra="forbid")

    job: str
    adjusted_by: str
    per_class: dict[str, Agreement] = Field(default_factory=dict)

    def total(self) -> Agreement:
        out = Agreement()
        for counts in self.per_class.values():
            out = out.plus(counts)
        return out


def agreement(
    job: str, adjusted_by: str, level1: Frames, final: Frames, moved_iou: float = 0.5
) -> ClipAgreement:
    """Level 1 against the final level, frame by frame (pairs need IoU > 0 untracked)."""
    per_class: dict[str, Agreement] = {}

    def add(category: str, **counts: float) -> None:
        before = per_class.get(category, Agreement())
        per_class[category] = before.plus(Agreement(**counts))

    for frame_no in sorted(set(level1) | set(final)):
        found = match_frame(level1.get(frame_no, ()), final.get(frame_no, ()), 1e-9)
        for obj in found.only_left:
            add(obj.category, objects=1, deleted=1)
        for obj in found.only_right:
            add(obj.category, added=1)
        for before, after in found.pairs:
            if before.category != after.category:
                add(before.category, objects=1, relabelled=1)
                continue
            compared, flipped = flipped_attributes(before, after)
            shift = 0.0
            moved = False
            if before.box is not None and after.box is not None:
                iou = before.box.iou(after.box)
                shift, moved = 1.0 - iou, iou < moved_iou
            elif before.points != after.points:
                moved = True
            kept = not moved and flipped == 0
            add(
                before.category,
                objects=1,
                kept=int(kept),
                moved=int(moved),
                iou_shift_sum=shift,
                boxes_compared=int(before.box is not None and after.box is not None),
                attributes=compared,
                attributes_flipped=flipped,
            )
    return ClipAgreement(
        job=job, adjusted_by=adjusted_by, per_class=dict(sorted(per_class.items()))
    )
