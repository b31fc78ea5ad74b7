"""What the simulated workers draw.

First level: the clip's ground-truth sidecar at each sampled frame (when the capture rig
uploaded one), with configurable noise - box jitter, a missed object, a wrong attribute -
otherwise plausible synthetic objects. Adjustment level: the audited job's labels, with part of
the noise corrected against the sidecar.

Every choice comes from a random generator seeded by (seed, job, dedup key), so the same task
is labeled the same way whatever order tasks arrive in.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from shared.groundtruth.job_types import JobType
from shared.taxonomy.records import (
    Box,
    ClipLabels,
    IgnoreRegion,
    Lane,
    LaneAttributes,
    LavaObject,
    Pedestrian,
    PedestrianAttributes,
    TrafficLight,
    TrafficLightAttributes,
    TrafficSign,
    TrafficSignAttributes,
    Vehicle,
    VehicleAttributes,
)
from shared.taxonomy.vocabulary import (
    LaneDirection,
    LaneStyle,
    LaneType,
    LightState,
    Occlusion,
    SignType,
    VehicleType,
)

Frames = list[tuple[int, str, list[LavaObject]]]  # (frame no, frame file, objects)


@dataclass(frozen=True)
class Noise:
    box_jitter: float = 0.0
    miss_share: float = 0.0
    wrong_attribute_share: float = 0.0


@dataclass(frozen=True)
class SampledFrame:
    frame_no: int
    file: str
    source_frame: int


def _identity(obj: LavaObject, frame_no: int, index: int) -> str:
    """What makes an object the same object across frames (its track, else its slot)."""
    return obj.track_id or f"{obj.category}#{index}"


def truth_frames(job: JobType, frames: Sequence[SampledFrame], sidecar: ClipLabels) -> Frames:
    by_source = {f.frame_no: f for f in sidecar.frames}
    classes = set(job.lava_classes)
    out: Frames = []
    for frame in frames:
        record = by_source.get(frame.source_frame)
        objects = [o for o in record.objects if o.category in classes] if record else []
        out.append((frame.frame_no, frame.file, objects))
    return out


def _clip(value: float, high: float) -> float:
    return float(round(min(max(value, 0.0), high)))


def _jitter_box(box: Box, amount: float, rng: random.Random, width: int, height: int) -> Box:
    def move(value: float) -> float:
        return value + rng.uniform(-amount, amount)

    left, right = sorted((_clip(move(box.left), width), _clip(move(box.right), width)))
    top, bottom = sorted((_clip(move(box.top), height), _clip(move(box.bottom), height)))
    if right - left < 1:
        right = min(width, left + 1)
    if bottom - top < 1:
        bottom = min(height, top + 1)
    return Box(left=left, top=top, right=right, bottom=bottom)


def _wrong(obj: LavaObject, rng: random.Random) -> LavaObject:
    """The same object with one attribute changed to another valid value."""
    attrs = obj.attributes.model_dump()
    fields = [k for k, v in attrs.items() if not isinstance(v, bool)] or list(attrs)
    if not fields:
        return obj
    field = rng.choice(fields)
    current = attrs[field]
    if isinstance(current, bool):
        attrs[field] = not current
    else:
        options = [m for m in type(getattr(obj.attributes, field)) if m != current]
        attrs[field] = rng.choice(options)
    return obj.model_copy(update={"attributes": type(obj.attributes)(**attrs)})


def add_noise(frames: Frames, noise: Noise, rng: random.Random, width: int, height: int) -> Frames:
    """Level-1 mistakes, decided once per object identity so a missed track stays missed."""
    missed: dict[str, bool] = {}
    wrong: dict[str, bool] = {}
    out: Frames = []
    for frame_no, file, objects in frames:
        kept: list[LavaObject] = []
        for index, obj in enumerate(objects):
            ident = _identity(obj, frame_no, index)
            if ident not in missed:
                missed[ident] = rng.random() < noise.miss_share
                wrong[ident] = rng.random() < noise.wrong_attribute_share
            if missed[ident]:
                continue
            if wrong[ident]:
                obj = _wrong(obj, random.Random(f"{ident}"))  # same wrong value in every frame
            if noise.box_jitter > 0:
                obj = _jittered(obj, noise.box_jitter, rng, width, height)
            kept.append(obj)
        out.append((frame_no, file, kept))
    return out


def _jittered(
    obj: LavaObject, amount: float, rng: random.Random, width: int, height: int
) -> LavaObject:
    if isinstance(obj, Lane):
        points = tuple(
            (
                _clip(x + rng.uniform(-amount, amount), width),
                _clip(y + rng.uniform(-amount, amount), height),
            )
            for x, y in obj.points
        )
        return obj.model_copy(update={"points": points})
    if obj.box is None:
        return obj
    box = _jitter_box(obj.box, amount, rng, width, height)
    update: dict[str, object] = {"box": box}
    if isinstance(obj, Vehicle):
        # parts stay inside their (moved) vehicle
        if obj.license_plate is not None and not box.contains(obj.license_plate):
            update["license_plate"] = None
        update["lights"] = tuple(light for light in obj.lights if box.contains(light.box))
    return obj.model_copy(update=update)


def adjust(
    previous: Frames, truth: Frames | None, fix_share: float, rng: random.Random
) -> tuple[Frames, bool]:
    """An adjustment worker's result: part of level 1's mistakes corrected.

    Returns the frames and whether anything changed (Ground Truth's adjustment-status).
    """
    if truth is None:
        return previous, False
    truth_by_frame = {frame_no: objects for frame_no, _, objects in truth}
    fixes: dict[str, bool] = {}

    def fixing(ident: str) -> bool:
        if ident not in fixes:
            fixes[ident] = rng.random() < fix_share
        return fixes[ident]

    changed = False
    out: Frames = []
    for frame_no, file, objects in previous:
        true_objects = truth_by_frame.get(frame_no, [])
        true_by_ident = {_identity(o, frame_no, i): o for i, o in enumerate(true_objects)}
        result: list[LavaObject] = []
        matched: set[str] = set()
        for index, obj in enumerate(objects):
            ident = _identity(obj, frame_no, index)
            if obj.track_id is None:
                ident = _match_untracked(obj, true_by_ident) or ident
            true = true_by_ident.get(ident)
            matched.add(ident)
            if true is not None and true != obj and fixing(ident):
                result.append(true)
                changed = True
            else:
                result.append(obj)
        for ident, true in true_by_ident.items():
            if ident not in matched and fixing(ident):  # a missed object, added back
                result.append(true)
                changed = True
        out.append((frame_no, file, result))
    return out, changed


def _match_untracked(obj: LavaObject, truths: dict[str, LavaObject]) -> str | None:
    if obj.box is None:
        return None
    best, best_iou = None, 0.3
    for ident, true in truths.items():
        if true.category == obj.category and true.box is not None:
            iou = obj.box.iou(true.box)
            if iou > best_iou:
                best, best_iou = ident, iou
    return best


def synthetic(
    job: JobType, frames: Sequence[SampledFrame], width: int, height: int, rng: random.Random
) -> Frames:
    """Plausible labels for a clip without a sidecar: a few objects moving steadily."""
    out: Frames = [(f.frame_no, f.file, []) for f in frames]
    for cls in job.lava_classes:
        for t in range(rng.randint(1, 3)):
            track = _synthetic_track(cls, f"{cls}-{t + 1}", len(frames), width, height, rng)
            for i, obj in enumerate(track):
                out[i][2].append(obj)
            if cls not in _MOVING:
                break  # one static object of these classes is plenty
    return out


# Classes synthetic labels draw as tracks (a few each); the others get one static object.
_MOVING = ("vehicle", "pedestrian", "lane")


def _synthetic_track(
    cls: str, track: str, n: int, width: int, height: int, rng: random.Random
) -> list[LavaObject]:
    """One object of ``cls`` in each of ``n`` frames (the draws from ``rng`` keep their order:
    a seed gives the same labels)."""

    def path(w: float, h: float) -> list[Box]:
        x0, y0 = rng.uniform(0, width - w), rng.uniform(height * 0.45, height - h)
        dx = rng.uniform(-width / 4, width / 4) / max(n, 1)
        boxes = []
        for i in range(n):
            x = min(max(x0 + dx * i, 0), width - w)
            boxes.append(
                Box(left=round(x), top=round(y0), right=round(x + w), bottom=round(y0 + h))
            )
        return boxes

    if cls == "vehicle":
        boxes = path(width * 0.15, height * 0.12)
        attrs = VehicleAttributes(
            type=rng.choice(list(VehicleType)), occlusion=rng.choice(list(Occlusion))
        )
        return [Vehicle(track_id=track, box=box, attributes=attrs) for box in boxes]
    if cls == "pedestrian":
        ped = PedestrianAttributes(occlusion=rng.choice(list(Occlusion)))
        return [
            Pedestrian(track_id=track, box=box, attributes=ped)
            for box in path(width * 0.03, height * 0.12)
        ]
    if cls == "lane":
        x = rng.uniform(0, width)
        lane = Lane(
            track_id=track,
            points=((round(x), height - 1), (round(width / 2), round(height * 0.5))),
            attributes=LaneAttributes(
                lane_style=rng.choice(list(LaneStyle)),
                lane_type=rng.choice(list(LaneType)),
                lane_direction=LaneDirection.VERTICAL,
            ),
        )
        return [lane] * n
    return [_static_object(cls, path(width * 0.02, height * 0.05)[0], rng)] * n


def _static_object(cls: str, box: Box, rng: random.Random) -> LavaObject:
    if cls == "traffic_light":
        return TrafficLight(
            box=box,
            attributes=TrafficLightAttributes(
                state=rng.choice(list(LightState)), is_front=True, occlusion=Occlusion.NOT_OCCLUDED
            ),
        )
    if cls == "traffic_sign":
        return TrafficSign(
            box=box,
            attributes=TrafficSignAttributes(
                type=rng.choice(list(SignType)), is_front=True, occlusion=Occlusion.NOT_OCCLUDED
            ),
        )
    return IgnoreRegion(box=box)
