"""LAVA frame objects <-> Ground Truth per-frame annotations, through the short-code mapping.

Writing (``to_seq_label``) is what a labeling backend's output looks like for given objects;
reading (``from_seq_label``) turns a job's output back into LAVA objects. Vehicle parts
(license plates, head/tail lights) are separate Ground Truth labels; reading attaches each to
its vehicle - by the ``<vehicle object-id>/<part>`` id this module writes, else by geometry
(the smallest vehicle box that contains the part).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from shared.groundtruth.annotations import GtBox, GtFrame, GtPolyline, SeqLabel
from shared.groundtruth.job_types import (
    LABELS_BY_NAME,
    PART_HEAD_LIGHT,
    PART_LICENSE_PLATE,
    PART_TAIL_LIGHT,
    VEHICLE_PARTS,
    GtLabel,
    JobType,
    TaskType,
)
from shared.groundtruth.vocabulary import UnknownCode, bool_from_gt, bool_to_gt, from_gt, to_gt
from shared.taxonomy.records import (
    Box,
    IgnoreRegion,
    Lane,
    LavaObject,
    Pedestrian,
    TrafficLight,
    TrafficSign,
    Vehicle,
    VehicleLight,
)
from shared.taxonomy.validation import Problem

_PART_OF_LIGHT = {"head": PART_HEAD_LIGHT, "tail": PART_TAIL_LIGHT}
_LIGHT_OF_PART = {v: k for k, v in _PART_OF_LIGHT.items()}


@dataclass(frozen=True)
class LabeledFrame:
    frame_no: int
    objects: tuple[LavaObject, ...]


# --- LAVA -> Ground Truth ---------------------------------------------------------------------


def class_map(job: JobType) -> dict[str, str]:
    """Ground Truth's ``class-map`` of a job: class id -> label name."""
    return {str(i): label.label for i, label in enumerate(job.labels)}


def _gt_attributes(label: GtLabel, values: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for attr in label.attributes:
        value = values[attr.name]
        out[attr.name] = bool_to_gt(value) if attr.enum is None else to_gt(value)
    return out


def _gt_box(
    box: Box, class_id: str, object_id: str | None, name: str | None, attrs: dict[str, Any]
) -> GtBox:
    return GtBox(
        left=box.left,
        top=box.top,
        width=box.right - box.left,
        height=box.bottom - box.top,
        class_id=class_id,
        object_id=object_id,
        object_name=name,
        attributes=attrs,
    )


def to_seq_label(job: JobType, frames: Iterable[tuple[int, str, Sequence[LavaObject]]]) -> SeqLabel:
    """The annotation file a job of this type produces for these objects.

    ``frames`` yields (frame number, frame file name, objects); objects of classes the job does
    not label are ignored. Detection jobs have no object ids, so track ids are not written.
    """
    ids = {label.label: str(i) for i, label in enumerate(job.labels)}
    by_lava = {label.lava: label for label in job.labels}
    tracking = job.task_type is TaskType.VIDEO_OBJECT_TRACKING
    numbers: dict[str, int] = {}  # object-name numbering, per label, in order of appearance
    out: list[GtFrame] = []

    def name_of(label: str, track: str | None) -> str | None:
        if not tracking or track is None:
            return None
        key = f"{label}\x00{track}"
        if key not in numbers:
            numbers[key] = 1 + sum(1 for k in numbers if k.startswith(f"{label}\x00"))
        return f"{label}:{numbers[key]}"

    for frame_no, frame_file, objects in frames:
        boxes: list[GtBox] = []
        lines: list[GtPolyline] = []
        for obj in objects:
            label = by_lava.get(obj.category)
            if label is None:
                continue
            cid = ids[label.label]
            attrs = _gt_attributes(label, obj.attributes.model_dump())
            track = obj.track_id if tracking else None
            if isinstance(obj, Lane):
                lines.append(
                    GtPolyline(
                        points=tuple(obj.points),
                        class_id=cid,
                        object_id=track,
                        object_name=name_of(label.label, track),
                        attributes=attrs,
                    )
                )
                continue
            boxes.append(_gt_box(obj.box, cid, track, name_of(label.label, track), attrs))
            if isinstance(obj, Vehicle):
                if obj.license_plate is not None:
                    plate = by_lava[PART_LICENSE_PLATE]
                    part_id = f"{obj.track_id}/{PART_LICENSE_PLATE}"
                    boxes.append(
                        _gt_box(
                            obj.license_plate,
                            ids[plate.label],
                            part_id,
                            name_of(plate.label, part_id),
                            {},
                        )
                    )
                for i, light in enumerate(obj.lights):
                    part = by_lava[_PART_OF_LIGHT[light.kind]]
                    part_id = f"{obj.track_id}/{part.lava}/{i}"
                    boxes.append(
                        _gt_box(
                            light.box,
                            ids[part.label],
                            part_id,
                            name_of(part.label, part_id),
                            {"state": to_gt(light.state)},
                        )
                    )
        out.append(GtFrame(frame_no, frame_file, tuple(boxes), tuple(lines)))
    return SeqLabel(kind="tracking" if tracking else "detection", frames=tuple(out))


# --- Ground Truth -> LAVA ---------------------------------------------------------------------


class _Skip(Exception):  # internal control flow: drop one annotation, keep its problem
    def __init__(self, problem: Problem) -> None:
        self.problem = problem


def _lava_attributes(label: GtLabel, raw: dict[str, Any], where: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for attr in label.attributes:
        if attr.name not in raw or raw[attr.name] in (None, ""):
            raise _Skip(
                Problem(
                    "gt-attribute",
                    f"attribute {attr.name!r} is missing",
                    field=f"attributes.{attr.name}",
                    **where,
                )
            )
        try:
            values[attr.name] = (
                bool_from_gt(raw[attr.name])
                if attr.enum is None
                else from_gt(attr.enum, str(raw[attr.name]))
            )
        except UnknownCode as exc:
            raise _Skip(
                Problem("gt-attribute", str(exc), field=f"attributes.{attr.name}", **where)
            ) from None
    return values


def _box(ann: GtBox) -> Box:
    return Box(left=ann.left, top=ann.top, right=ann.left + ann.width, bottom=ann.top + ann.height)


def _track(ann: GtBox | GtPolyline) -> str | None:
    return ann.object_id or ann.object_name


def _resolve(cmap: dict[str, str], ann: GtBox | GtPolyline, where: dict[str, Any]) -> GtLabel:
    name = cmap.get(ann.class_id)
    if name is None:
        raise _Skip(
            Problem("gt-class", f"class-id {ann.class_id!r} is not in the class map", **where)
        )
    found = LABELS_BY_NAME.get(name)
    if found is None:
        raise _Skip(Problem("gt-class", f"label {name!r} is not a LAVA label", **where))
    return found[1]


def _object(label: GtLabel, ann: GtBox | GtPolyline, where: dict[str, Any]) -> LavaObject:
    attrs = _lava_attributes(label, ann.attributes, where)
    track = _track(ann)
    try:
        if isinstance(ann, GtPolyline):
            if label.lava != "lane":
                raise _Skip(Problem("gt-class", f"a polyline labeled {label.label!r}", **where))
            return Lane(track_id=ann.object_id, points=ann.points, attributes=attrs)
        box = _box(ann)
        match label.lava:
            case "vehicle":
                if track is None:
                    raise _Skip(Problem("gt-track", "vehicle without object-id", **where))
                return Vehicle(track_id=track, box=box, attributes=attrs)
            case "pedestrian":
                if track is None:
                    raise _Skip(Problem("gt-track", "pedestrian without object-id", **where))
                return Pedestrian(track_id=track, box=box, attributes=attrs)
            case "traffic_light":
                return TrafficLight(track_id=ann.object_id, box=box, attributes=attrs)
            case "traffic_sign":
                return TrafficSign(track_id=ann.object_id, box=box, attributes=attrs)
            case "ignore":
                return IgnoreRegion(track_id=ann.object_id, box=box)
            case "lane":
                raise _Skip(Problem("gt-class", "a lane drawn as a box", **where))
    except ValidationError as exc:
        raise _Skip(Problem("gt-format", str(exc.errors()[0]["msg"]), **where)) from None
    raise _Skip(Problem("gt-class", f"unexpected label {label.label!r}", **where))


def _attach_part(vehicles: list[Vehicle], ann: GtBox) -> int | None:
    """Index of the vehicle a part belongs to, or None."""
    box = _box(ann)
    if ann.object_id and "/" in ann.object_id:
        owner = ann.object_id.split("/", 1)[0]
        for i, vehicle in enumerate(vehicles):
            if vehicle.track_id == owner:
                return i
    containing = [
        (v.box.area, i) for i, v in enumerate(vehicles) if v.box.contains(box, tolerance=0.5)
    ]
    return min(containing)[1] if containing else None


def from_seq_label(seq: SeqLabel, cmap: dict[str, str]) -> tuple[list[LabeledFrame], list[Problem]]:
    """LAVA objects per frame, and a problem for every annotation that could not be used."""
    frames: list[LabeledFrame] = []
    problems: list[Problem] = []
    for frame in seq.frames:
        objects: list[LavaObject] = []
        parts: list[tuple[GtLabel, GtBox, dict[str, Any]]] = []
        annotations: list[GtBox | GtPolyline] = [*frame.boxes, *frame.polylines]
        for index, ann in enumerate(annotations):
            where: dict[str, Any] = {
                "frame_no": frame.frame_no,
                "object_index": index,
                "track_id": _track(ann),
            }
            try:
                label = _resolve(cmap, ann, where)
                if label.lava in VEHICLE_PARTS:
                    if not isinstance(ann, GtBox):
                        raise _Skip(Problem("gt-class", "a vehicle part drawn as a line", **where))
                    parts.append((label, ann, _lava_attributes(label, ann.attributes, where)))
                    continue
                objects.append(_object(label, ann, {**where, "category": label.lava}))
            except _Skip as skip:
                problems.append(skip.problem)
        vehicles = [o for o in objects if isinstance(o, Vehicle)]
        updates: dict[int, dict[str, Any]] = {}
        for label, ann, attrs in parts:
            owner = _attach_part(vehicles, ann)
            if owner is None:
                problems.append(
                    Problem(
                        "part-inside-vehicle",
                        f"{label.label} belongs to no vehicle in this frame",
                        frame_no=frame.frame_no,
                        category="vehicle",
                        track_id=_track(ann),
                    )
                )
                continue
            change = updates.setdefault(owner, {"lights": []})
            if label.lava == PART_LICENSE_PLATE:
                change["license_plate"] = _box(ann)
            else:
                change["lights"].append(
                    VehicleLight(
                        kind=_LIGHT_OF_PART[label.lava],
                        state=attrs["state"],
                        box=_box(ann),
                    )
                )
        for i, change in updates.items():
            vehicles[i] = vehicles[i].model_copy(
                update={**change, "lights": tuple(change["lights"])}
            )
        vi = iter(vehicles)
        merged = tuple(next(vi) if isinstance(o, Vehicle) else o for o in objects)
        frames.append(LabeledFrame(frame.frame_no, merged))
    return frames, problems
