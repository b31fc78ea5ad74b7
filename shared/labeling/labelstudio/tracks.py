"""Label Studio results <-> per-frame labels (pure).

Label Studio keeps a video object as one region (its id is the track id) with a ``sequence``
of keyframes ``{frame (from 1), x, y, width, height (percent of the frame), rotation,
enabled}``. The editor (label-studio 1.23.2, ``regions/VideoRectangleRegion.js`` and
``VideoRegion.js``) draws a region at frame f when the last keyframe at or before f exists and
is ``enabled`` - or sits exactly on f; its shape is that keyframe's on f, else linearly
interpolated towards the next keyframe, else (no next keyframe) the last keyframe's, held.
``enabled: false`` ends the lifespan after that keyframe until the next one. This module
applies the same rules at the frames the pipeline extracted.

Reading goes Label Studio -> Ground Truth ``SeqLabel`` (the file written for the rest of the
pipeline, so nothing downstream can tell which backend labeled a clip) -> LAVA objects through
the shared converter (one conversion layer: parts are attached to their vehicle, values are
checked there). Writing (predictions for the review level, the simulated annotator) goes the
other way from LAVA objects.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.groundtruth.annotations import GtBox, GtFrame, GtPolyline, SeqLabel
from shared.groundtruth.convert import LabeledFrame, class_map, from_seq_label
from shared.groundtruth.convert import to_seq_label as lava_to_seq_label
from shared.groundtruth.job_types import GtLabel, JobType, TaskType
from shared.groundtruth.vocabulary import NO, YES, UnknownCode, from_gt, to_gt
from shared.labeling.labelstudio.config import (
    BOX,
    FRAMES,
    LINE,
    VIDEO,
    Surface,
    attribute_control,
    surface_of,
)
from shared.taxonomy.records import LavaObject
from shared.taxonomy.validation import LabelProblem


@dataclass(frozen=True)
class Keyframe:
    frame: int  # Label Studio counts video frames from 1
    x: float
    y: float
    width: float
    height: float
    enabled: bool
    rotation: float = 0.0


@dataclass(frozen=True)
class PercentBox:
    x: float
    y: float
    width: float
    height: float
    rotation: float = 0.0


def shape_at(sequence: Sequence[Keyframe], frame: int) -> PercentBox | None:
    """The region's box at ``frame`` (percent), or None outside its lifespan."""
    ordered = sorted(sequence, key=lambda k: k.frame)
    prev: Keyframe | None = None
    nxt: Keyframe | None = None
    for key in ordered:
        if key.frame == frame:
            return PercentBox(key.x, key.y, key.width, key.height, key.rotation)
        if key.frame > frame:
            nxt = key
            break
        prev = key
    if prev is None or not prev.enabled:
        return None
    if nxt is None:
        return PercentBox(prev.x, prev.y, prev.width, prev.height, prev.rotation)
    t = (frame - prev.frame) / (nxt.frame - prev.frame)

    def lerp(a: float, b: float) -> float:
        return a + (b - a) * t

    return PercentBox(
        lerp(prev.x, nxt.x),
        lerp(prev.y, nxt.y),
        lerp(prev.width, nxt.width),
        lerp(prev.height, nxt.height),
        lerp(prev.rotation, nxt.rotation),
    )


# Region id of a track's later segment: ``<track id>~<n>`` (see ``seq_label_to_results``).
SEGMENT_MARK = "~"


def track_of(region_id: str) -> str:
    """The track a region belongs to (a segment suffix removed)."""
    head, mark, tail = region_id.rpartition(SEGMENT_MARK)
    return head if mark and tail.isdigit() and head else region_id


@dataclass(frozen=True)
class FrameRef:
    """One extracted frame: its number in the sequence, its file, its video frame (from 1)."""

    frame_no: int
    file: str
    video_frame: int


@dataclass(frozen=True)
class VideoFrames:
    width: int
    height: int
    fps: float  # of the video the worker sees
    frames_count: int  # frames of that video
    frames: tuple[FrameRef, ...]


def pixel_box(box: PercentBox, clip: VideoFrames) -> tuple[float, float, float, float]:
    """(left, top, width, height) in pixels; a rotated box becomes its axis-aligned hull
    (Label Studio rotates around the box's top-left corner)."""
    w = box.width / 100 * clip.width
    h = box.height / 100 * clip.height
    left = box.x / 100 * clip.width
    top = box.y / 100 * clip.height
    if not box.rotation:
        return left, top, w, h
    a = math.radians(box.rotation)
    xs = [left + dx * math.cos(a) - dy * math.sin(a) for dx, dy in ((0, 0), (w, 0), (0, h), (w, h))]
    ys = [top + dx * math.sin(a) + dy * math.cos(a) for dx, dy in ((0, 0), (w, 0), (0, h), (w, h))]
    return min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)


@dataclass
class Region:
    """One Label Studio region assembled from its result items (they share the region id)."""

    id: str
    labels: list[str] = field(default_factory=list)
    sequence: list[Keyframe] = field(default_factory=list)
    vertices: list[tuple[float, float]] = field(default_factory=list)
    item_index: int | None = None
    choices: dict[str, str] = field(default_factory=dict)
    kind: str | None = None  # "video" | "vector"


def _keyframe(raw: Any) -> Keyframe:
    return Keyframe(
        frame=int(raw["frame"]),
        x=float(raw["x"]),
        y=float(raw["y"]),
        width=float(raw["width"]),
        height=float(raw["height"]),
        enabled=bool(raw.get("enabled", True)),
        rotation=float(raw.get("rotation") or 0.0),
    )


def regions_of(result: Iterable[Any]) -> tuple[list[Region], list[LabelProblem]]:
    """Group an annotation's result items by region id (shape, labels and per-region choices
    arrive as separate items or in one, depending on the config)."""
    regions: dict[str, Region] = {}
    problems: list[LabelProblem] = []
    for index, item in enumerate(result):
        if not isinstance(item, dict) or not isinstance(item.get("value"), dict):
            problems.append(LabelProblem("ls-format", f"result item {index} is not an object"))
            continue
        rid = str(item.get("id") or f"item-{index}")
        region = regions.setdefault(rid, Region(rid))
        value = item["value"]
        try:
            if "sequence" in value:
                region.kind = "video"
                region.sequence = [_keyframe(k) for k in value["sequence"]]
            if "vertices" in value or "points" in value:
                region.kind = "vector"
                raw_points = value.get("vertices") or value.get("points") or []
                region.vertices = [
                    (float(p["x"]), float(p["y"]))
                    if isinstance(p, dict)
                    else (float(p[0]), float(p[1]))
                    for p in raw_points
                ]
                if item.get("item_index") is not None:
                    region.item_index = int(item["item_index"])
        except (KeyError, TypeError, ValueError) as exc:
            problems.append(
                LabelProblem("ls-format", f"region {rid}: bad geometry ({exc!r})", track_id=rid)
            )
            regions.pop(rid, None)
            continue
        for key in ("labels", "vectorlabels"):
            if isinstance(value.get(key), list):
                region.labels = [str(v) for v in value[key]]
        if isinstance(value.get("choices"), list) and value["choices"]:
            region.choices[str(item.get("from_name"))] = str(value["choices"][0])
    return list(regions.values()), problems


def _gt_attributes(label: GtLabel, region: Region, problems: list[LabelProblem]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for attr in label.attributes:
        raw = region.choices.get(attribute_control(label, attr))
        if raw is None:
            continue  # the shared converter reports it missing, with the frame
        if attr.enum is None:
            out[attr.name] = YES if raw == YES else NO if raw == NO else raw
            continue
        try:
            out[attr.name] = to_gt(attr.enum(raw))
        except ValueError:
            problems.append(
                LabelProblem(
                    "ls-attribute",
                    f"{raw!r} is not a {attr.name} value",
                    field=f"attributes.{attr.name}",
                    track_id=region.id,
                )
            )
    return out


def to_seq_label(
    job: JobType, result: Iterable[Any], clip: VideoFrames
) -> tuple[SeqLabel, list[LabelProblem]]:
    """The Ground Truth annotation file equivalent to a Label Studio annotation."""
    regions, problems = regions_of(result)
    ids = {label.label: str(i) for i, label in enumerate(job.labels)}
    labels = {label.label: label for label in job.labels}
    tracking = job.task_type is TaskType.VIDEO_OBJECT_TRACKING
    boxes: dict[int, list[GtBox]] = {f.frame_no: [] for f in clip.frames}
    lines: dict[int, list[GtPolyline]] = {f.frame_no: [] for f in clip.frames}
    by_position = {i: f for i, f in enumerate(clip.frames)}
    for region in regions:
        label = _label_of(region, labels, problems)
        if label is None:
            continue
        attrs = _gt_attributes(label, region, problems)
        if region.kind == "vector":
            frame = by_position.get(region.item_index or 0)
            if frame is None or len(region.vertices) < 2:
                problems.append(
                    LabelProblem("ls-format", "polyline on no extracted frame", track_id=region.id)
                )
                continue
            points = tuple(
                (x / 100 * clip.width, y / 100 * clip.height) for x, y in region.vertices
            )
            lines[frame.frame_no].append(
                GtPolyline(points=points, class_id=ids[label.label], attributes=attrs)
            )
            continue
        object_id = track_of(region.id) if tracking else None
        for frame in clip.frames:
            shape = shape_at(region.sequence, frame.video_frame)
            if shape is None:
                continue
            left, top, width, height = pixel_box(shape, clip)
            boxes[frame.frame_no].append(
                GtBox(
                    left=left,
                    top=top,
                    width=width,
                    height=height,
                    class_id=ids[label.label],
                    object_id=object_id,
                    object_name=f"{label.label}:{object_id}" if tracking else None,
                    attributes=attrs,
                )
            )
    frames = tuple(
        GtFrame(f.frame_no, f.file, tuple(boxes[f.frame_no]), tuple(lines[f.frame_no]))
        for f in clip.frames
    )
    return SeqLabel(kind="tracking" if tracking else "detection", frames=frames), problems


def _label_of(
    region: Region, labels: dict[str, GtLabel], problems: list[LabelProblem]
) -> GtLabel | None:
    """The job's label a region is drawn with; None (a problem) when it has none of them."""
    if not region.labels:
        problems.append(LabelProblem("ls-label", "region without a label", track_id=region.id))
        return None
    label = labels.get(region.labels[0])
    if label is None:
        problems.append(
            LabelProblem(
                "ls-label", f"label {region.labels[0]!r} is not in this job", track_id=region.id
            )
        )
    return label


def lava_frames(
    job: JobType, result: Iterable[Any], clip: VideoFrames
) -> tuple[list[LabeledFrame], list[LabelProblem]]:
    """Per-frame LAVA objects of a Label Studio annotation, with every problem found."""
    seq, problems = to_seq_label(job, result, clip)
    frames, more = from_seq_label(seq, class_map(job))
    return frames, [*problems, *more]


# --- LAVA -> Label Studio ---------------------------------------------------------------------


def _ls_value(label: GtLabel, name: str, code: Any) -> str:
    attr = next(a for a in label.attributes if a.name == name)
    if attr.enum is None:
        return str(code)
    try:
        return from_gt(attr.enum, str(code)).value
    except UnknownCode:
        return str(code)


def _choice_items(
    label: GtLabel, region_id: str, attrs: dict[str, Any], to_name: str
) -> list[dict[str, Any]]:
    names = {a.name for a in label.attributes}
    return [
        {
            "id": region_id,
            "type": "choices",
            "from_name": attribute_control(
                label, next(a for a in label.attributes if a.name == name)
            ),
            "to_name": to_name,
            "origin": "manual",
            "value": {"choices": [_ls_value(label, name, code)]},
        }
        for name, code in attrs.items()
        if name in names
    ]


def seq_label_to_results(
    job: JobType, seq: SeqLabel, clip: VideoFrames, region_prefix: str = ""
) -> list[dict[str, Any]]:
    """Label Studio result items drawing the objects of a Ground Truth annotation file:
    one video region per track (ids kept; keyframes at the extracted frames, a lifespan
    that ends where the object leaves), one single-keyframe region per detected object per
    frame, one vector per polyline per frame."""
    labels = {str(i): label for i, label in enumerate(job.labels)}
    position = {f.frame_no: i for i, f in enumerate(clip.frames)}
    by_no = {f.frame_no: f for f in clip.frames}
    surface = surface_of(job)
    out: list[dict[str, Any]] = []
    tracks: dict[str, tuple[GtLabel, list[tuple[int, GtBox]]]] = {}
    counter = 0
    for frame in seq.frames:
        ref = by_no.get(frame.frame_no)
        if ref is None:
            continue
        for line in frame.polylines:
            label = labels.get(line.class_id)
            if label is None or surface is not Surface.FRAME_SEQUENCE:
                continue
            counter += 1
            rid = f"{region_prefix}l{counter}"
            out.append(_vector_item(rid, label, line, position[frame.frame_no], clip))
            out.extend(_choice_items(label, rid, line.attributes, FRAMES))
        for box in frame.boxes:
            label = labels.get(box.class_id)
            if label is None:
                continue
            track = box.object_id or box.object_name
            if track is None:
                counter += 1
                track = f"{region_prefix}d{counter}"
            tracks.setdefault(track, (label, []))[1].append((ref.video_frame, box))
    for track, (label, seen) in tracks.items():
        out.extend(_track_items(track, label, seen, clip))
    return out


def _vector_item(
    rid: str, label: GtLabel, line: GtPolyline, item_index: int, clip: VideoFrames
) -> dict[str, Any]:
    """A polyline as a vector region on the frame at ``item_index`` (percent coordinates)."""
    return {
        "id": rid,
        "type": "vectorlabels",
        "from_name": LINE,
        "to_name": FRAMES,
        "origin": "manual",
        "item_index": item_index,
        "value": {
            "vertices": [
                {"id": f"{rid}p{i}", "x": x / clip.width * 100, "y": y / clip.height * 100}
                for i, (x, y) in enumerate(line.points)
            ],
            "closed": False,
            "vectorlabels": [label.label],
        },
    }


def _track_items(
    track: str, label: GtLabel, seen: list[tuple[int, GtBox]], clip: VideoFrames
) -> list[dict[str, Any]]:
    """One track's video regions with their attribute choices.

    A region has one set of attributes; where they change along a track, the track continues
    in a new region with the same id plus a segment suffix.
    """
    seen.sort(key=lambda s: s[0])
    segments: list[list[tuple[int, GtBox]]] = []
    for video_frame, box in seen:
        if segments and segments[-1][-1][1].attributes == box.attributes:
            segments[-1].append((video_frame, box))
        else:
            segments.append([(video_frame, box)])
    frames_order = [f.video_frame for f in clip.frames]
    out: list[dict[str, Any]] = []
    for n, segment in enumerate(segments):
        rid = track if n == 0 else f"{track}{SEGMENT_MARK}{n}"
        present = {v for v, _ in segment}
        sequence = []
        for video_frame, box in segment:
            later = [f for f in frames_order if f > video_frame]
            sequence.append(
                {
                    "frame": video_frame,
                    "time": (video_frame - 1) / clip.fps,
                    "x": box.left / clip.width * 100,
                    "y": box.top / clip.height * 100,
                    "width": box.width / clip.width * 100,
                    "height": box.height / clip.height * 100,
                    "rotation": 0,
                    "enabled": bool(later) and later[0] in present,
                }
            )
        out.append(
            {
                "id": rid,
                "type": "videorectangle",
                "from_name": BOX,
                "to_name": VIDEO,
                "origin": "manual",
                "value": {
                    "framesCount": clip.frames_count,
                    "duration": clip.frames_count / clip.fps,
                    "sequence": sequence,
                    "labels": [label.label],
                },
            }
        )
        out.extend(_choice_items(label, rid, segment[0][1].attributes, VIDEO))
    return out


def lava_to_results(
    job: JobType, frames: Iterable[tuple[FrameRef, Sequence[LavaObject]]], clip: VideoFrames
) -> list[dict[str, Any]]:
    """Label Studio result items drawing LAVA objects (what a worker would draw)."""
    seq = lava_to_seq_label(job, ((ref.frame_no, ref.file, objs) for ref, objs in frames))
    return seq_label_to_results(job, seq, clip)


__all__ = [
    "FrameRef",
    "Keyframe",
    "PercentBox",
    "VideoFrames",
    "lava_frames",
    "lava_to_results",
    "regions_of",
    "seq_label_to_results",
    "shape_at",
    "to_seq_label",
]
