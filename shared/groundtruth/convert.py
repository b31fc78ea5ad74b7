"""LAVA frame objects <-> Ground Truth per-frame annotations, through the short-code mapping.

Writing (``to_seq_label``) is what a labeling backend's output looks like for given objects;
reading (``from_seq_label``) turns a job's output back into LAVA objects. Vehicle parts
(license plates, head/tail lights) are separate Ground Truth labels with object ids of their
own; reading attaches each to the vehicle that contains it (``_PartOwners``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
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
from shared.taxonomy.validation import LabelProblem

_PART_OF_LIGHT = {"head": PART_HEAD_LIGHT, "tail": PART_TAIL_LIGHT}
_LIGHT_OF_PART = {v: k for k, v in _PART_OF_LIGHT.items()}


@dataclass(frozen=True)
class LabeledFrame:
    frame_no: int
    objects: tuple[LavaObject, ...]
    frame: str = ""  # the frame file name: outputs are matched to sequences by it


# --- LAVA -> Ground Truth ---------------------------------------------------------------------


def class_map(job: JobType) -> dict[str, str]:
    """Every class of a job: class id (the label's position in the label category file) ->
    label name."""
    return {str(i): label.label for i, label in enumerate(job.labels)}


def present_class_map(job: JobType, seq: SeqLabel) -> dict[str, str]:
    """The ``class-map`` Ground Truth writes: only the classes with at least one label in the
    sequence (sms-data-output); empty when nothing was drawn."""
    used = {b.class_id for f in seq.frames for b in f.boxes}
    used |= {line.class_id for f in seq.frames for line in f.polylines}
    return {k: v for k, v in class_map(job).items() if k in used}


def _gt_attributes(label: GtLabel, values: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for attr in label.attributes:
        value = values.get(attr.lava_name)
        if value is None:  # not given: Ground Truth leaves the key out
            continue
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


def to_seq_label(
    job: JobType,
    frames: Iterable[tuple[int, str, Sequence[LavaObject]]],
    object_id: Callable[[str], str] | None = None,
) -> SeqLabel:
    """The annotation file a job of this type produces for these objects.

    ``frames`` yields (frame number, frame file name, objects); objects of classes the job does
    not label are ignored. Detection jobs have no object ids, so track ids are not written.
    ``object_id`` maps an identity (a track id, or ``<track>/<part>`` for a vehicle part) to
    the ``object-id`` written - Ground Truth writes UUIDs; by default the identity itself.
    """
    tracking = job.task_type is TaskType.VIDEO_OBJECT_TRACKING
    writer = _GtWriter(job, tracking, object_id or (lambda identity: identity))
    out = [
        GtFrame(frame_no, frame_file, *writer.frame(objects))
        for frame_no, frame_file, objects in frames
    ]
    return SeqLabel(kind="tracking" if tracking else "detection", frames=tuple(out))


class _GtWriter:
    """Ground Truth annotations of one job for LAVA objects, numbering object names per label
    in order of appearance (``<label>:<n>``, tracking jobs only)."""

    def __init__(self, job: JobType, tracking: bool, written: Callable[[str], str]) -> None:
        self.ids = {label.label: str(i) for i, label in enumerate(job.labels)}
        self.by_lava = {label.lava: label for label in job.labels}
        self.tracking = tracking
        self.written = written
        self.numbers: dict[str, int] = {}

    def name_of(self, label: str, track: str | None) -> str | None:
        if not self.tracking or track is None:
            return None
        key = f"{label}\x00{track}"
        if key not in self.numbers:
            self.numbers[key] = 1 + sum(1 for k in self.numbers if k.startswith(f"{label}\x00"))
        return f"{label}:{self.numbers[key]}"

    def frame(
        self, objects: Sequence[LavaObject]
    ) -> tuple[tuple[GtBox, ...], tuple[GtPolyline, ...]]:
        boxes: list[GtBox] = []
        lines: list[GtPolyline] = []
        for obj in objects:
            label = self.by_lava.get(obj.category)
            if label is None:
                continue
            cid = self.ids[label.label]
            attrs = _gt_attributes(label, obj.attributes.model_dump())
            track = self.written(obj.track_id) if self.tracking and obj.track_id else None
            name = self.name_of(label.label, track)
            if isinstance(obj, Lane):
                lines.append(
                    GtPolyline(
                        points=tuple(obj.points),
                        class_id=cid,
                        object_id=track,
                        object_name=name,
                        attributes=attrs,
                    )
                )
                continue
            boxes.append(_gt_box(obj.box, cid, track, name, attrs))
            if isinstance(obj, Vehicle):
                boxes.extend(self.parts(obj))
        return tuple(boxes), tuple(lines)

    def parts(self, vehicle: Vehicle) -> Iterator[GtBox]:
        """A vehicle's plate and lights, as boxes of their own part classes."""
        if vehicle.license_plate is not None:
            plate = self.by_lava[PART_LICENSE_PLATE]
            part_id = self.written(f"{vehicle.track_id}/{PART_LICENSE_PLATE}")
            cid = self.ids[plate.label]
            yield _gt_box(
                vehicle.license_plate, cid, part_id, self.name_of(plate.label, part_id), {}
            )
        for i, light in enumerate(vehicle.lights):
            part = self.by_lava[_PART_OF_LIGHT[light.kind]]
            part_id = self.written(f"{vehicle.track_id}/{part.lava}/{i}")
            yield _gt_box(
                light.box,
                self.ids[part.label],
                part_id,
                self.name_of(part.label, part_id),
                _gt_attributes(part, {"state": light.state}),
            )


# --- Ground Truth -> LAVA ---------------------------------------------------------------------


@dataclass
class AttributeStats:
    """What conversion did with attribute gaps (counted in the clip summary)."""

    carried: int = 0  # values taken from the nearest frame of the same track
    missing: int = 0  # values no frame of the track gave: left null (``attribute-missing``)


class _Skip(Exception):  # internal control flow: drop one annotation, keep its problem
    def __init__(self, problem: LabelProblem) -> None:
        self.problem = problem


@dataclass
class _Drawn:
    """One annotation of one frame, before attribute gaps are filled."""

    position: int  # the frame's position in the file (nearness is measured in it)
    frame_no: int
    index: int
    label: GtLabel
    ann: GtBox | GtPolyline
    values: dict[str, Any]  # LAVA field -> value, only what this frame gave

    @property
    def where(self) -> dict[str, Any]:
        return {"frame_no": self.frame_no, "object_index": self.index, "track_id": _track(self.ann)}


def _given(
    label: GtLabel, raw: dict[str, Any], where: dict[str, Any]
) -> tuple[dict[str, Any], list[LabelProblem]]:
    """The attribute values one annotation carries; a value outside the vocabulary is a
    problem and counts as not given (another frame of the track may give it)."""
    values: dict[str, Any] = {}
    problems: list[LabelProblem] = []
    for attr in label.attributes:
        # The Ground Truth name, or the LAVA one (files from before names had to be unique).
        code = raw.get(attr.name, raw.get(attr.lava_name))
        if code is None or code == "":
            continue
        try:
            values[attr.lava_name] = (
                bool_from_gt(code) if attr.enum is None else from_gt(attr.enum, str(code))
            )
        except UnknownCode as exc:
            problems.append(
                LabelProblem(
                    "gt-attribute", str(exc), field=f"attributes.{attr.lava_name}", **where
                )
            )
    return values, problems


def _box(ann: GtBox) -> Box:
    return Box(left=ann.left, top=ann.top, right=ann.left + ann.width, bottom=ann.top + ann.height)


def _track(ann: GtBox | GtPolyline) -> str | None:
    return ann.object_id or ann.object_name


def _resolve(cmap: dict[str, str], ann: GtBox | GtPolyline, where: dict[str, Any]) -> GtLabel:
    name = cmap.get(ann.class_id)
    if name is None:
        raise _Skip(
            LabelProblem("gt-class", f"class-id {ann.class_id!r} is not in the class map", **where)
        )
    found = LABELS_BY_NAME.get(name)
    if found is None:
        raise _Skip(LabelProblem("gt-class", f"label {name!r} is not a LAVA label", **where))
    return found[1]


def _fill_gaps(drawn: list[_Drawn], stats: AttributeStats) -> None:
    """Carry each tracked object's attribute from the nearest frame of the same track that
    gives it - the nearest earlier one (a value a worker set holds until they change it),
    else the nearest later one; what no frame gives stays None."""
    tracks: dict[tuple[str, str], list[_Drawn]] = defaultdict(list)
    for d in drawn:
        track = _track(d.ann)
        if track is not None:
            tracks[(d.label.label, track)].append(d)
    filled: list[tuple[_Drawn, str, Any]] = []
    for d in drawn:
        track = _track(d.ann)
        same = tracks.get((d.label.label, track), []) if track is not None else []
        for attr in d.label.attributes:
            name = attr.lava_name
            if name in d.values:
                continue
            donors = [o for o in same if name in o.values]
            if donors:
                earlier = [o for o in donors if o.position < d.position]
                nearest = (
                    max(earlier, key=lambda o: o.position)
                    if earlier
                    else min(donors, key=lambda o: o.position)
                )
                filled.append((d, name, nearest.values[name]))
                stats.carried += 1
            else:
                filled.append((d, name, None))
                stats.missing += 1
    # Written afterwards, so only values a worker gave are ever carried.
    for d, name, value in filled:
        d.values[name] = value


def _object(d: _Drawn) -> LavaObject:
    label, ann, attrs = d.label, d.ann, d.values
    where = {**d.where, "category": label.lava}
    track = _track(ann)
    try:
        if isinstance(ann, GtPolyline):
            if label.lava != "lane":
                raise _Skip(
                    LabelProblem("gt-class", f"a polyline labeled {label.label!r}", **where)
                )
            return Lane(track_id=track, points=ann.points, attributes=attrs)
        box = _box(ann)
        match label.lava:
            case "vehicle":
                if track is None:
                    raise _Skip(LabelProblem("gt-track", "vehicle without object-id", **where))
                return Vehicle(track_id=track, box=box, attributes=attrs)
            case "pedestrian":
                if track is None:
                    raise _Skip(LabelProblem("gt-track", "pedestrian without object-id", **where))
                return Pedestrian(track_id=track, box=box, attributes=attrs)
            case "traffic_light":
                return TrafficLight(track_id=ann.object_id, box=box, attributes=attrs)
            case "traffic_sign":
                return TrafficSign(track_id=ann.object_id, box=box, attributes=attrs)
            case "ignore":
                return IgnoreRegion(track_id=ann.object_id, box=box)
            case "lane":
                raise _Skip(LabelProblem("gt-class", "a lane drawn as a box", **where))
    except ValidationError as exc:
        raise _Skip(LabelProblem("gt-format", str(exc.errors()[0]["msg"]), **where)) from None
    raise _Skip(LabelProblem("gt-class", f"unexpected label {label.label!r}", **where))


class _PartOwners:
    """Which vehicle each part belongs to, by geometry, consistently along the part's track.

    Real outputs give every part its own UUID (nothing names its vehicle), so a part belongs
    to a vehicle whose box contains it. Where several do (overlapping vehicles), the vehicle
    this part's track belongs to in the frames where the choice is clear wins, then the
    smallest box. Ids of the ``<vehicle>/<part>`` form (older emulator outputs) are honoured.
    """

    def __init__(self) -> None:
        self.votes: dict[str, Counter[str]] = defaultdict(Counter)

    @staticmethod
    def candidates(vehicles: Sequence[Vehicle], ann: GtBox) -> list[int]:
        box = _box(ann)
        return [i for i, v in enumerate(vehicles) if v.box.contains(box, tolerance=0.5)]

    def vote(self, vehicles: Sequence[Vehicle], ann: GtBox) -> None:
        found = self.candidates(vehicles, ann)
        track = _track(ann)
        if track is not None and len(found) == 1:
            self.votes[track][vehicles[found[0]].track_id] += 1

    def owner(self, vehicles: Sequence[Vehicle], ann: GtBox) -> int | None:
        if ann.object_id and "/" in ann.object_id:
            named = ann.object_id.split("/", 1)[0]
            for i, vehicle in enumerate(vehicles):
                if vehicle.track_id == named:
                    return i
        found = self.candidates(vehicles, ann)
        if not found:
            return None
        votes = self.votes.get(_track(ann) or "", Counter())
        return min(found, key=lambda i: (-votes[vehicles[i].track_id], vehicles[i].box.area))


def from_seq_label(
    seq: SeqLabel, cmap: dict[str, str], stats: AttributeStats | None = None
) -> tuple[list[LabeledFrame], list[LabelProblem]]:
    """LAVA objects per frame, and a problem for every annotation that could not be used.

    Attribute gaps are filled from the same track's nearest frame (``stats`` counts what was
    carried and what stayed missing); a gap no frame fills stays None, which validation
    reports as ``attribute-missing``.
    """
    stats = stats if stats is not None else AttributeStats()
    problems: list[LabelProblem] = []
    drawn = _read_annotations(seq, cmap, problems)
    _fill_gaps(drawn, stats)
    by_position: dict[int, list[_Drawn]] = defaultdict(list)
    for d in drawn:
        by_position[d.position].append(d)
    objects_of: dict[int, list[LavaObject]] = {}
    parts_of: dict[int, list[_Drawn]] = {}
    owners = _PartOwners()
    # Every frame's vehicles vote for the parts inside them before any part is attached: a
    # part's owner is the vehicle it was inside most often over the clip.
    for position in range(len(seq.frames)):
        objects, parts = _objects_and_parts(by_position.get(position, []), problems)
        objects_of[position], parts_of[position] = objects, parts
        vehicles = [o for o in objects if isinstance(o, Vehicle)]
        for d in parts:
            assert isinstance(d.ann, GtBox)
            owners.vote(vehicles, d.ann)
    frames = [
        _with_parts(frame, objects_of[position], parts_of[position], owners, problems)
        for position, frame in enumerate(seq.frames)
    ]
    return frames, problems


def _read_annotations(
    seq: SeqLabel, cmap: dict[str, str], problems: list[LabelProblem]
) -> list[_Drawn]:
    """Every usable annotation with its label and given attributes; a problem for the rest."""
    drawn: list[_Drawn] = []
    for position, frame in enumerate(seq.frames):
        annotations: list[GtBox | GtPolyline] = [*frame.boxes, *frame.polylines]
        for index, ann in enumerate(annotations):
            where: dict[str, Any] = {
                "frame_no": frame.frame_no,
                "object_index": index,
                "track_id": _track(ann),
            }
            try:
                label = _resolve(cmap, ann, where)
            except _Skip as skip:
                problems.append(skip.problem)
                continue
            if label.lava in VEHICLE_PARTS and not isinstance(ann, GtBox):
                problems.append(LabelProblem("gt-class", "a vehicle part drawn as a line", **where))
                continue
            values, found = _given(label, ann.attributes, {**where, "category": label.lava})
            problems.extend(found)
            drawn.append(_Drawn(position, frame.frame_no, index, label, ann, values))
    return drawn


def _objects_and_parts(
    drawn: list[_Drawn], problems: list[LabelProblem]
) -> tuple[list[LavaObject], list[_Drawn]]:
    """One frame's LAVA objects, and its vehicle parts (attached to vehicles later)."""
    objects: list[LavaObject] = []
    parts: list[_Drawn] = []
    for d in drawn:
        if d.label.lava in VEHICLE_PARTS:
            parts.append(d)
            continue
        try:
            objects.append(_object(d))
        except _Skip as skip:
            problems.append(skip.problem)
    return objects, parts


def _with_parts(
    frame: GtFrame,
    objects: list[LavaObject],
    parts: list[_Drawn],
    owners: _PartOwners,
    problems: list[LabelProblem],
) -> LabeledFrame:
    """The frame with each part (plate, light) attached to the vehicle that owns it."""
    vehicles = [o for o in objects if isinstance(o, Vehicle)]
    updates: dict[int, dict[str, Any]] = {}
    for d in parts:
        assert isinstance(d.ann, GtBox)
        owner = owners.owner(vehicles, d.ann)
        if owner is None:
            problems.append(
                LabelProblem(
                    "part-inside-vehicle",
                    f"{d.label.label} belongs to no vehicle in this frame",
                    frame_no=frame.frame_no,
                    object_index=d.index,
                    category="vehicle",
                    track_id=_track(d.ann),
                )
            )
            continue
        change = updates.setdefault(owner, {"lights": []})
        if d.label.lava == PART_LICENSE_PLATE:
            change["license_plate"] = _box(d.ann)
        else:
            change["lights"].append(
                VehicleLight(
                    kind=_LIGHT_OF_PART[d.label.lava],
                    state=d.values.get("state"),
                    box=_box(d.ann),
                )
            )
    for i, change in updates.items():
        vehicles[i] = vehicles[i].model_copy(update={**change, "lights": tuple(change["lights"])})
    vi = iter(vehicles)
    merged = tuple(next(vi) if isinstance(o, Vehicle) else o for o in objects)
    return LabeledFrame(frame.frame_no, merged, frame.frame)
