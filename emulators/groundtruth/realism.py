"""The realistic profile: Ground Truth's outputs as the AWS developer guide shows them.

What it changes against the idealised emulator (``LAVA_EMULATOR__PROFILE=ideal``):
- object ids are UUIDs (``object-id``), the same for one object across frames and across the
  adjustment level that starts from these labels; vehicle parts get UUIDs of their own, so
  nothing names a part's vehicle (sms-data-output);
- ``label-category-attributes`` per annotation per frame may be partial or ``{}``: a share of a
  tracked object's later frames carry fewer attributes (sms-data-output's own examples);
- the ``class-map`` lists only classes present in the sequence (sms-data-output);
- an expired object's line carries only ``retry-count``, ``failure-reason`` and
  ``human-annotated: "true"`` (the handbook's source: aws-samples test data);
- ``adjustment-status: adjusted`` only when something changed (sms-data-output).
The job lifecycle (Initializing, the idle stop) lives in ``service.py`` and ``simulator.py``.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from emulators.groundtruth.labels import Frames
from shared.groundtruth.annotations import GtBox, GtFrame, GtPolyline, SeqLabel

# Fixed, so the same object gets the same UUID in every run and in both levels.
_NAMESPACE = uuid.UUID("6f0f4b52-4c3e-4a36-9f36-3c0c1a7f2a11")


def object_ids(source_ref: str) -> Callable[[str], str]:
    """Identity (a sidecar track id, or ``<track>/<part>``) -> a UUID for one clip; an
    identity that is a UUID already (labels read back from a previous level) stays."""

    def of(identity: str) -> str:
        try:
            return str(uuid.UUID(identity))
        except ValueError:
            return str(uuid.uuid5(_NAMESPACE, f"{source_ref}|{identity}"))

    return of


def with_object_ids(frames: Frames, ids: Callable[[str], str]) -> Frames:
    """The same objects with their track ids as Ground Truth would write them."""
    return [
        (
            frame_no,
            file,
            [o.model_copy(update={"track_id": ids(o.track_id)}) if o.track_id else o for o in objs],
        )
        for frame_no, file, objs in frames
    ]


def partial_attributes(seq: SeqLabel, share: float, rng: random.Random) -> SeqLabel:
    """A share of a tracked object's later frames carry a partial or empty attribute set.

    The first frame of each object keeps everything (a worker sets attributes when drawing)
    and a value that changes is always given where it changes, so every gap can be carried
    from the track's previous frame; detection outputs have no object ids and stay whole.
    """
    if seq.kind != "tracking" or share <= 0:
        return seq
    previous: dict[str, dict[str, Any]] = {}

    def thin(attributes: dict[str, Any], object_id: str | None) -> dict[str, Any]:
        if object_id is None:
            return attributes
        before = previous.get(object_id)
        previous[object_id] = attributes
        if before is None or not attributes or rng.random() >= share:
            return attributes
        # A worker re-states what changed; what stayed the same may be left out.
        same = sorted(k for k, v in attributes.items() if before.get(k) == v)
        dropped = set(rng.sample(same, rng.randint(1, len(same)))) if same else set()
        return {k: v for k, v in attributes.items() if k not in dropped}

    frames: list[GtFrame] = []
    for frame in seq.frames:
        boxes: list[GtBox] = [
            replace(b, attributes=thin(b.attributes, b.object_id)) for b in frame.boxes
        ]
        lines: list[GtPolyline] = [
            replace(p, attributes=thin(p.attributes, p.object_id)) for p in frame.polylines
        ]
        frames.append(replace(frame, boxes=tuple(boxes), polylines=tuple(lines)))
    return replace(seq, frames=tuple(frames))


def expired_metadata(reason: str) -> dict[str, Any]:
    """An expired (or failed) object's metadata, and nothing else: no job-name, type, date."""
    return {"retry-count": 1, "failure-reason": reason, "human-annotated": "true"}
