"""Per-clip summary metadata, and what the adjustment level changed (the QA signal).

Everything here is pure: LAVA records in, a :class:`ClipSummary` out.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.quality.matching import match_frame
from shared.taxonomy.records import ClipLabels, LavaObject, Vehicle
from shared.taxonomy.validation import LabelProblem

# Untracked boxes are the same object when they overlap at all.
MIN_OVERLAP = 1e-9


class AdjustmentDiff(BaseModel):
    """Level 1 against the final level, for one adjusted job chain."""

    model_config = ConfigDict(extra="forbid")

    job: str
    adjusted_by: str
    adjustment_status: str | None = None
    compared: int = 0  # objects present in both
    added: int = 0  # in the final labels only
    removed: int = 0  # in level 1 only
    moved: int = 0  # boxes whose IoU with level 1 fell below the threshold
    attributes_changed: int = 0


class ClipSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    clip_id: str
    drive: dict[str, Any]
    clip: dict[str, Any]
    workflows: list[str]
    frames: int
    width: int
    height: int
    fps: float
    objects_per_class: dict[str, int]
    tracks_per_class: dict[str, int]
    objects_per_frame: dict[str, float]
    attributes: dict[str, dict[str, int]] = Field(
        description="Distribution of every attribute, keyed '<class>.<attribute>'."
    )
    adjustment: list[AdjustmentDiff] = Field(default_factory=list)
    problems: list[dict[str, Any]] = Field(default_factory=list)
    problem_counts: dict[str, int] = Field(default_factory=dict)
    attribute_gaps: dict[str, int] = Field(
        default_factory=dict,
        description="Attribute values a frame did not give: 'carried' from the nearest frame "
        "of the same track, 'missing' where no frame gave one (null in the labels).",
    )
    sources: list[dict[str, Any]] = Field(default_factory=list)


# How a value no worker gave is counted in the distributions.
NOT_GIVEN = "(not given)"


def _value(value: Any) -> str:
    if value is None:
        return NOT_GIVEN
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def attribute_distributions(objects: Iterable[LavaObject]) -> dict[str, dict[str, int]]:
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for obj in objects:
        for name, value in obj.attributes.model_dump(mode="json").items():
            counts[f"{obj.category}.{name}"][_value(value)] += 1
        if isinstance(obj, Vehicle):
            counts["vehicle.license_plate"]["present" if obj.license_plate else "absent"] += 1
            for light in obj.lights:
                state = NOT_GIVEN if light.state is None else light.state.value
                counts[f"vehicle.{light.kind}_light.state"][state] += 1
    return {key: dict(sorted(c.items())) for key, c in sorted(counts.items())}


def summarize(
    labels: ClipLabels,
    problems: Sequence[LabelProblem],
    adjustment: Sequence[AdjustmentDiff] = (),
    workflows: Sequence[str] = (),
    sources: Sequence[dict[str, Any]] = (),
    carried_attributes: int = 0,
) -> ClipSummary:
    objects = [o for f in labels.frames for o in f.objects]
    per_class = Counter(o.category for o in objects)
    tracks: dict[str, set[str]] = defaultdict(set)
    for obj in objects:
        if obj.track_id is not None:
            tracks[obj.category].add(obj.track_id)
    per_frame = [len(f.objects) for f in labels.frames]
    severities = Counter(p.severity for p in problems)
    return ClipSummary(
        clip_id=labels.clip_id,
        drive=labels.drive.model_dump(mode="json"),
        clip=labels.clip.model_dump(mode="json"),
        workflows=list(workflows),
        frames=len(labels.frames),
        width=labels.width,
        height=labels.height,
        fps=labels.fps,
        objects_per_class=dict(sorted(per_class.items())),
        tracks_per_class={k: len(v) for k, v in sorted(tracks.items())},
        objects_per_frame={
            "mean": round(sum(per_frame) / len(per_frame), 3) if per_frame else 0.0,
            "max": float(max(per_frame, default=0)),
        },
        attributes=attribute_distributions(objects),
        adjustment=list(adjustment),
        problems=[p.to_dict() for p in problems],
        problem_counts={
            "error": severities.get("error", 0),
            "warning": severities.get("warning", 0),
        },
        sources=list(sources),
        attribute_gaps={
            "carried": carried_attributes,
            "missing": sum(1 for p in problems if p.rule == "attribute-missing"),
        },
    )


def adjustment_diff(
    job: str,
    adjusted_by: str,
    level1: Mapping[int, Sequence[LavaObject]],
    final: Mapping[int, Sequence[LavaObject]],
    moved_iou: float,
    adjustment_status: str | None = None,
) -> AdjustmentDiff:
    diff = AdjustmentDiff(job=job, adjusted_by=adjusted_by, adjustment_status=adjustment_status)
    for frame_no in sorted(set(level1) | set(final)):
        # a tracked object is only ever its own track, and a pair keeps its class: a class
        # change is a removal and an addition here (the quality agreement counts it apart)
        found = match_frame(
            level1.get(frame_no, ()), final.get(frame_no, ()), MIN_OVERLAP, same_class=True
        )
        pairs, removed, added = found.pairs, found.only_left, found.only_right
        diff.compared += len(pairs)
        diff.removed += len(removed)
        diff.added += len(added)
        for before, after in pairs:
            if before.box is not None and after.box is not None:
                if before.box.iou(after.box) < moved_iou:
                    diff.moved += 1
            elif before.points != after.points:
                diff.moved += 1
            if before.attributes != after.attributes:
                diff.attributes_changed += 1
    return diff
