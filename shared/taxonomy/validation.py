"""The taxonomy's rules, reported as problems that name the frame, the object and the field.

Rules:
- boxes lie inside the image, with left < right and top < bottom;
- a license plate (and a head/tail light) lies inside its vehicle;
- a polyline has at least two points, all inside the image;
- a track id denotes one object of one class across the clip's frames (never two objects in
  one frame, never two classes);
- enum values are exact (checked when raw data is parsed: :func:`parse_clip_labels`);
- every attribute has a value: ``null`` means no worker gave one in any frame of the track
  (``attribute-missing``, a warning: the object stands, the gap is shown where it is).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from shared.taxonomy.records import Box, ClipLabels, FrameRecord, Lane, LavaObject, Vehicle

Severity = Literal["error", "warning"]

# How bad each broken rule is. Errors make the labels unusable as they are (an object that is
# not one, an impossible box, a track that changes class); warnings are worth a look but the
# labels stand (a box a few pixels past the edge, a plate poking out of its vehicle).
RULE_SEVERITY: dict[str, Severity] = {
    "schema": "error",
    "box-order": "error",
    "polyline-points": "error",
    "track-unique-in-frame": "error",
    "track-one-class": "error",
    "gt-format": "error",
    "gt-class": "error",
    "gt-attribute": "error",
    "gt-track": "error",
    "box-inside-image": "warning",
    "polyline-inside-image": "warning",
    "plate-inside-vehicle": "warning",
    "part-inside-vehicle": "warning",
    "attribute-missing": "warning",
}


@dataclass(frozen=True)
class LabelProblem:
    """One broken rule: where (frame, object, field) and what."""

    rule: str
    message: str
    frame_no: int | None = None
    object_index: int | None = None
    category: str | None = None
    track_id: str | None = None
    field: str | None = None

    @property
    def severity(self) -> Severity:
        return RULE_SEVERITY.get(self.rule, "error")

    @property
    def location(self) -> str:
        parts = []
        if self.frame_no is not None:
            parts.append(f"frame {self.frame_no}")
        if self.object_index is not None:
            what = self.category or "object"
            track = f" {self.track_id}" if self.track_id else ""
            parts.append(f"{what}{track} (#{self.object_index})")
        if self.field:
            parts.append(self.field)
        return ", ".join(parts) or "clip"

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "severity": self.severity,
            "message": self.message,
            "frame_no": self.frame_no,
            "object_index": self.object_index,
            "category": self.category,
            "track_id": self.track_id,
            "field": self.field,
            "location": self.location,
        }


def _box_problems(
    box: Box, width: float, height: float, where: dict[str, Any], field: str
) -> Iterable[LabelProblem]:
    if not box.left < box.right:
        yield LabelProblem(
            "box-order", f"left ({box.left}) must be < right ({box.right})", field=field, **where
        )
    if not box.top < box.bottom:
        yield LabelProblem(
            "box-order", f"top ({box.top}) must be < bottom ({box.bottom})", field=field, **where
        )
    if box.left < 0 or box.top < 0 or box.right > width or box.bottom > height:
        yield LabelProblem(
            "box-inside-image",
            f"box ({box.left}, {box.top}, {box.right}, {box.bottom}) is outside the "
            f"{width:g}x{height:g} image",
            field=field,
            **where,
        )


def missing_attributes(obj: LavaObject, where: dict[str, Any]) -> list[LabelProblem]:
    """An ``attribute-missing`` problem for every attribute of the object that is null."""
    problems = [
        LabelProblem(
            "attribute-missing",
            f"{name} was given in no frame of this object",
            field=f"attributes.{name}",
            **where,
        )
        for name, value in obj.attributes
        if value is None
    ]
    if isinstance(obj, Vehicle):
        problems.extend(
            LabelProblem(
                "attribute-missing",
                f"{light.kind} light state was given in no frame",
                field=f"lights[{li}].state",
                **where,
            )
            for li, light in enumerate(obj.lights)
            if light.state is None
        )
    return problems


def validate_frame(frame: FrameRecord, width: float, height: float) -> list[LabelProblem]:
    problems: list[LabelProblem] = []
    seen_tracks: dict[str, int] = {}
    for index, obj in enumerate(frame.objects):
        where: dict[str, Any] = {
            "frame_no": frame.frame_no,
            "object_index": index,
            "category": obj.category,
            "track_id": obj.track_id,
        }
        if obj.box is not None:
            problems.extend(_box_problems(obj.box, width, height, where, "box"))
        problems.extend(missing_attributes(obj, where))
        if obj.category == "vehicle":
            problems.extend(_part_problems(obj, width, height, where))
        if obj.category == "lane":
            problems.extend(_lane_problems(obj, width, height, where))
        if obj.track_id is not None:
            if obj.track_id in seen_tracks:
                problems.append(
                    LabelProblem(
                        "track-unique-in-frame",
                        f"track {obj.track_id} also labels object #{seen_tracks[obj.track_id]} "
                        "in this frame",
                        field="track_id",
                        **where,
                    )
                )
            else:
                seen_tracks[obj.track_id] = index
    return problems


def _part_problems(
    vehicle: Vehicle, width: float, height: float, where: dict[str, Any]
) -> Iterator[LabelProblem]:
    """A vehicle's plate and lights: each a valid box inside the image and inside the vehicle."""
    if vehicle.license_plate is not None:
        yield from _box_problems(vehicle.license_plate, width, height, where, "license_plate")
        if not vehicle.box.contains(vehicle.license_plate):
            yield LabelProblem(
                "plate-inside-vehicle",
                "license plate is not inside its vehicle",
                field="license_plate",
                **where,
            )
    for li, light in enumerate(vehicle.lights):
        field = f"lights[{li}]"
        yield from _box_problems(light.box, width, height, where, field)
        if not vehicle.box.contains(light.box):
            yield LabelProblem(
                "part-inside-vehicle",
                f"{light.kind} light is not inside its vehicle",
                field=field,
                **where,
            )


def _lane_problems(
    lane: Lane, width: float, height: float, where: dict[str, Any]
) -> Iterator[LabelProblem]:
    """A lane: a polyline of at least two points, all inside the image."""
    if len(lane.points) < 2:
        yield LabelProblem(
            "polyline-points",
            f"a lane needs at least 2 points, got {len(lane.points)}",
            field="points",
            **where,
        )
    for pi, (x, y) in enumerate(lane.points):
        if not (0 <= x <= width and 0 <= y <= height):
            yield LabelProblem(
                "polyline-inside-image",
                f"point ({x}, {y}) is outside the {width:g}x{height:g} image",
                field=f"points[{pi}]",
                **where,
            )


def validate_tracks(frames: Iterable[FrameRecord]) -> list[LabelProblem]:
    """A track id keeps one class across the clip."""
    problems: list[LabelProblem] = []
    first_class: dict[str, tuple[str, int]] = {}
    for frame in frames:
        for index, obj in enumerate(frame.objects):
            if obj.track_id is None:
                continue
            known = first_class.get(obj.track_id)
            if known is None:
                first_class[obj.track_id] = (obj.category, frame.frame_no)
            elif known[0] != obj.category:
                problems.append(
                    LabelProblem(
                        "track-one-class",
                        f"track {obj.track_id} is a {known[0]} in frame {known[1]} "
                        f"but a {obj.category} here",
                        frame_no=frame.frame_no,
                        object_index=index,
                        category=obj.category,
                        track_id=obj.track_id,
                        field="track_id",
                    )
                )
    return problems


def validate_clip(labels: ClipLabels) -> list[LabelProblem]:
    problems: list[LabelProblem] = []
    for frame in labels.frames:
        problems.extend(validate_frame(frame, labels.width, labels.height))
    problems.extend(validate_tracks(labels.frames))
    return problems


def problems_from_validation_error(exc: ValidationError, raw: Any = None) -> list[LabelProblem]:
    """Pydantic errors (wrong enum values, missing fields) as located problems.

    With the raw data at hand, a frame is named by its ``frame_no`` rather than its position.
    """
    raw_frames = raw.get("frames") if isinstance(raw, dict) else None
    problems = []
    for err in exc.errors():
        loc = list(err["loc"])
        frame_no = object_index = None
        if len(loc) >= 2 and loc[0] == "frames" and isinstance(loc[1], int):
            frame_no = loc[1]
            if isinstance(raw_frames, list) and frame_no < len(raw_frames):
                named = raw_frames[frame_no]
                if isinstance(named, dict) and isinstance(named.get("frame_no"), int):
                    frame_no = named["frame_no"]
            loc = loc[2:]
            if len(loc) >= 2 and loc[0] == "objects" and isinstance(loc[1], int):
                object_index = loc[1]
                loc = loc[2:]
                # discriminated unions add the category as a location step
                if loc and isinstance(loc[0], str) and loc[0] in _CATEGORIES:
                    loc = loc[1:]
        field = ".".join(str(p) for p in loc) or None
        problems.append(
            LabelProblem(
                "schema",
                err["msg"],
                frame_no=frame_no,
                object_index=object_index,
                field=field,
            )
        )
    return problems


_CATEGORIES = {"ignore", "vehicle", "pedestrian", "lane", "traffic_light", "traffic_sign"}


def parse_clip_labels(data: Any) -> tuple[ClipLabels | None, list[LabelProblem]]:
    """Parse raw LAVA records and apply every rule; the labels (if parseable) and problems."""
    try:
        labels = ClipLabels.model_validate(data)
    except ValidationError as exc:
        return None, problems_from_validation_error(exc, data)
    return labels, validate_clip(labels)
