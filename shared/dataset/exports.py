"""Exports of LAVA labels in the formats other tools read: BDD100K/Scalabel, COCO with the
video extension, MOT Challenge. The mapping of LAVA classes and attributes to each format's
vocabulary is the one table in docs/services/postproc.md ("Dataset exports"); this module
implements it.

Frames are named ``<clip>/<frame:06d>.jpg`` as in S3 (``clips/<clip>/fps-<fps>/frames/``).
"""

from __future__ import annotations

import configparser
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from shared.layout import ClipLayout
from shared.taxonomy.records import (
    Box,
    ClipLabels,
    FrameRecord,
    IgnoreRegion,
    Lane,
    LavaObject,
    Pedestrian,
    TrafficLight,
    TrafficSign,
    Vehicle,
)
from shared.taxonomy.vocabulary import LightState, Occlusion, VehicleType

BDD_SCENES = {"highway", "tunnel", "residential", "parking lot", "city street"}
VEHICLE_CATEGORY = {
    VehicleType.CAR: "car",
    VehicleType.VAN: "car",
    VehicleType.TRUCK: "truck",
    VehicleType.BUS: "bus",
    VehicleType.MOTORBIKE: "motorcycle",
    VehicleType.BICYCLE: "bicycle",
    VehicleType.UNDEFINED: "other vehicle",
}
COCO_CATEGORIES = [
    "pedestrian",
    "car",
    "truck",
    "bus",
    "motorcycle",
    "bicycle",
    "other vehicle",
    "traffic light",
    "traffic sign",
    "ignore",
]
MOT_CLASS = {
    "pedestrian": 1,
    "car": 3,
    "truck": 3,
    "bus": 3,
    "other vehicle": 3,
    "motorcycle": 5,
    "bicycle": 4,
    "ignore": 13,
}
VISIBILITY = {
    Occlusion.NOT_OCCLUDED: 1.0,
    Occlusion.PARTIALLY_OCCLUDED: 0.5,
    Occlusion.MAJOR_OCCLUSION: 0.2,
}


def frame_name(clip_id: str, frame_no: int) -> str:
    return f"{clip_id}/{ClipLayout.frame_name(frame_no)}"


def _value(member: StrEnum | None) -> str | None:
    """An attribute's value; None where no worker gave it (written as null)."""
    return None if member is None else member.value


def _occluded(occlusion: Occlusion | None) -> bool | None:
    return None if occlusion is None else occlusion is not Occlusion.NOT_OCCLUDED


def category(obj: LavaObject) -> str:
    if isinstance(obj, Vehicle):
        return VEHICLE_CATEGORY[obj.attributes.type or VehicleType.UNDEFINED]
    if isinstance(obj, Pedestrian):
        return "pedestrian"
    if isinstance(obj, TrafficLight):
        return "traffic light"
    if isinstance(obj, TrafficSign):
        return "traffic sign"
    if isinstance(obj, Lane):
        kind = obj.attributes.lane_type
        return "lane" if kind is None else f"lane/{kind.value}"
    return "ignore"


def _box2d(box: Box) -> dict[str, float]:
    return {"x1": box.left, "y1": box.top, "x2": box.right, "y2": box.bottom}


def _bdd_attributes(obj: LavaObject) -> dict[str, Any]:
    if isinstance(obj, Vehicle):
        return {
            "occluded": _occluded(obj.attributes.occlusion),
            "truncated": False,
            "lavaType": _value(obj.attributes.type),
            "lavaOcclusion": _value(obj.attributes.occlusion),
        }
    if isinstance(obj, Pedestrian):
        return {
            "occluded": _occluded(obj.attributes.occlusion),
            "truncated": False,
            "lavaOcclusion": _value(obj.attributes.occlusion),
        }
    if isinstance(obj, TrafficLight):
        state = obj.attributes.state
        return {
            "trafficLightColor": "none"
            if state is None or state is LightState.UNDEFINED
            else state.value,
            "occluded": _occluded(obj.attributes.occlusion),
            "isFront": obj.attributes.is_front,
        }
    if isinstance(obj, TrafficSign):
        return {
            "lavaSignType": _value(obj.attributes.type),
            "occluded": _occluded(obj.attributes.occlusion),
            "isFront": obj.attributes.is_front,
        }
    if isinstance(obj, Lane):
        return {
            "laneStyle": _value(obj.attributes.lane_style),
            "laneDirection": None
            if obj.attributes.lane_direction is None
            else "parallel"
            if obj.attributes.lane_direction.value == "vertical"
            else "vertical",
        }
    return {}


def _bdd_label(
    ident: str,
    name: str,
    attributes: dict[str, Any],
    *,
    box: Box | None = None,
    points: Sequence[tuple[float, float]] | None = None,
) -> dict[str, Any]:
    return {
        "id": ident,
        "category": name,
        "attributes": attributes,
        "manualShape": True,
        "manualAttributes": True,
        "box2d": _box2d(box) if box is not None else None,
        "poly2d": (
            [{"vertices": [list(p) for p in points], "types": "L" * len(points), "closed": False}]
            if points is not None
            else None
        ),
        "box3d": None,
        "rle": None,
        "graph": None,
    }


def to_bdd100k(clips: Sequence[ClipLabels], bucket: str | None = None) -> list[dict[str, Any]]:
    """Scalabel/BDD100K frame list (one JSON file). Optional fields are written as null so
    the reference loader, whatever pydantic it runs on, reads every frame."""
    frames: list[dict[str, Any]] = []
    for clip in clips:
        attributes = _bdd_frame_attributes(clip)
        layout = ClipLayout(bucket, clip.clip_id, clip.fps) if bucket else None
        for record in clip.frames:
            frames.append(
                {
                    "name": frame_name(clip.clip_id, record.frame_no),
                    "url": layout.uri(layout.frame_key(record.frame_no)) if layout else None,
                    "videoName": clip.clip_id,
                    "frameIndex": record.frame_no,
                    "timestamp": round(record.timestamp * 1000),
                    "size": {"width": clip.width, "height": clip.height},
                    "attributes": attributes,
                    "labels": _bdd_labels(record),
                }
            )
    return frames


def _bdd_frame_attributes(clip: ClipLabels) -> dict[str, Any]:
    """A clip's drive and clip attributes, as every one of its frames carries them."""
    scene = clip.clip.scene.value
    bdd_scene = (
        "gas stations"
        if scene == "gas station"
        else (scene if scene in BDD_SCENES else "city street")
    )
    return {
        "weather": clip.drive.weather.value,
        "timeofday": clip.drive.time_of_day.value,
        "scene": bdd_scene,
        "lavaScene": scene,
        "traffic": clip.clip.traffic.value,
        "trafficDensity": clip.clip.traffic_density.value,
        "route": clip.drive.route,
        "driveId": clip.drive.drive_id,
    }


def _bdd_labels(record: FrameRecord) -> list[dict[str, Any]]:
    """A frame's labels; a vehicle's parts are labels of their own, tied to it by id."""
    labels = []
    for index, obj in enumerate(record.objects):
        ident = obj.track_id or f"{record.frame_no}-{index}"
        labels.append(
            _bdd_label(
                ident,
                category(obj),
                _bdd_attributes(obj),
                box=obj.box,
                points=obj.points if isinstance(obj, Lane) else None,
            )
        )
        if not isinstance(obj, Vehicle):
            continue
        if obj.license_plate is not None:
            plate = _bdd_label(
                f"{ident}/plate", "license plate", {"vehicle": ident}, box=obj.license_plate
            )
            labels.append(plate)
        for n, light in enumerate(obj.lights):
            labels.append(
                _bdd_label(
                    f"{ident}/{light.kind}-light/{n}",
                    f"{light.kind} light",
                    {"vehicle": ident, "state": _value(light.state)},
                    box=light.box,
                )
            )
    return labels


class CocoBuilder:
    """COCO's parts a clip at a time, numbering videos, images, annotations and instances
    across the clips added."""

    categories = [{"id": i + 1, "name": name} for i, name in enumerate(COCO_CATEGORIES)]
    category_id = {c["name"]: c["id"] for c in categories}

    def __init__(self) -> None:
        self.video_id = self.image_id = self.annotation_id = self.instance_id = 0

    def clip(
        self, clip: ClipLabels
    ) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
        """The clip's video, its images and its annotations."""
        self.video_id += 1
        video = {
            "id": self.video_id,
            "name": clip.clip_id,
            "weather": clip.drive.weather.value,
            "timeofday": clip.drive.time_of_day.value,
            "scene": clip.clip.scene.value,
            "fps": clip.fps,
        }
        images, annotations = [], []
        instances: dict[str, int] = {}
        for record in clip.frames:
            self.image_id += 1
            images.append(
                {
                    "id": self.image_id,
                    "video_id": self.video_id,
                    "frame_id": record.frame_no,
                    "file_name": frame_name(clip.clip_id, record.frame_no),
                    "width": clip.width,
                    "height": clip.height,
                }
            )
            for obj in record.objects:
                if obj.box is None:
                    continue  # lanes are polylines: not a COCO box
                name = category(obj)
                if obj.track_id is not None:
                    key = obj.track_id
                    if key not in instances:
                        self.instance_id += 1
                        instances[key] = self.instance_id
                    instance = instances[key]
                else:
                    self.instance_id += 1
                    instance = self.instance_id
                self.annotation_id += 1
                box = obj.box
                annotations.append(
                    {
                        "id": self.annotation_id,
                        "image_id": self.image_id,
                        "category_id": self.category_id[name],
                        "instance_id": instance,
                        "bbox": [box.left, box.top, box.width, box.height],
                        "area": box.area,
                        "iscrowd": 1 if isinstance(obj, IgnoreRegion) else 0,
                        "attributes": obj.attributes.model_dump(mode="json"),
                    }
                )
        return video, images, annotations


COCO_INFO = {"description": "LAVA dataset export"}


def to_coco(clips: Sequence[ClipLabels]) -> dict[str, Any]:
    """COCO with the video extension (videos, images with video_id/frame_id, instance_id)."""
    builder = CocoBuilder()
    videos, images, annotations = [], [], []
    for clip in clips:
        video, clip_images, clip_annotations = builder.clip(clip)
        videos.append(video)
        images += clip_images
        annotations += clip_annotations
    return {
        "info": COCO_INFO,
        "videos": videos,
        "images": images,
        "annotations": annotations,
        "categories": CocoBuilder.categories,
    }


def mot_files(clips: Sequence[ClipLabels]) -> dict[str, str]:
    """One MOT Challenge sequence per clip: ``<clip>/gt/gt.txt`` and ``<clip>/seqinfo.ini``
    (relative path -> text)."""
    files: dict[str, str] = {}
    for clip in clips:
        ids: dict[str, int] = {}
        lines = []
        for record in clip.frames:
            for index, obj in enumerate(record.objects):
                name = category(obj)
                if name not in MOT_CLASS or obj.box is None:
                    continue
                key = obj.track_id or f"ignore-{record.frame_no}-{index}"
                track = ids.setdefault(key, len(ids) + 1)
                # not given counts as visible: MOT has no "unknown" visibility
                occlusion = getattr(obj.attributes, "occlusion", None) or Occlusion.NOT_OCCLUDED
                ignored = isinstance(obj, IgnoreRegion)
                box = obj.box
                # MOT frames and pixel coordinates are 1-based
                lines.append(
                    f"{record.frame_no + 1},{track},{box.left + 1:g},{box.top + 1:g},{box.width:g},"
                    f"{box.height:g},{0 if ignored else 1},{MOT_CLASS[name]},"
                    f"{VISIBILITY[occlusion]:g}"
                )
        files[f"{clip.clip_id}/gt/gt.txt"] = "\n".join(lines) + ("\n" if lines else "")
        info = configparser.ConfigParser()
        info.optionxform = str  # type: ignore[assignment,method-assign]  # MOT keys are camelCase
        info["Sequence"] = {
            "name": clip.clip_id,
            "imDir": "img1",
            "frameRate": f"{clip.fps:g}",
            "seqLength": str(len(clip.frames)),
            "imWidth": str(clip.width),
            "imHeight": str(clip.height),
            "imExt": ".jpg",
        }
        text = io.StringIO()
        info.write(text, space_around_delimiters=False)
        files[f"{clip.clip_id}/seqinfo.ini"] = text.getvalue()
    return files


def write_mot(clips: Sequence[ClipLabels], out: Path) -> list[Path]:
    """The MOT sequences of ``mot_files`` under ``out``; the sequence folders written."""
    for name, text in mot_files(clips).items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text)
    return [out / clip.clip_id for clip in clips]


class ExportFormat(StrEnum):
    BDD100K = "bdd100k"
    COCO = "coco"
    MOT = "mot"


@dataclass(frozen=True)
class Rendered:
    """An export's files (path relative to the export's folder -> bytes) and what they hold."""

    files: dict[str, bytes | bytearray]
    clips: int
    frames: int
    annotations: int  # BDD100K labels, COCO annotations, MOT rows


class _JsonArray:
    """A JSON array serialized an item at a time (``bytearray``: appending is amortized)."""

    def __init__(self) -> None:
        self.body = bytearray(b"[")

    def add(self, item: Any) -> None:
        if len(self.body) > 1:
            self.body += b", "
        self.body += json.dumps(item).encode()

    def close(self) -> bytearray:
        self.body += b"]"
        return self.body


class ExportBuilder:
    """An export made a clip at a time, keeping only the serialized files: its memory follows
    the files' size, not the parsed labels' (``bench/export_memory_bench.py``: a clip's parsed
    labels take ~5x its BDD100K frames and ~13x its COCO part). The files are those of
    ``to_bdd100k``, ``to_coco`` and ``mot_files``, named as ``lava dataset export`` names them."""

    def __init__(self, fmt: ExportFormat, bucket: str | None) -> None:
        self.format, self.bucket = fmt, bucket
        self.clips = self.frames = self.annotations = 0
        self._bdd = _JsonArray()
        self._coco = CocoBuilder()
        self._videos, self._images, self._boxes = _JsonArray(), _JsonArray(), _JsonArray()
        self._mot: dict[str, bytes | bytearray] = {}

    def add(self, clip: ClipLabels) -> None:
        self.clips += 1
        self.frames += len(clip.frames)
        if self.format is ExportFormat.BDD100K:
            for frame in to_bdd100k([clip], self.bucket):
                self.annotations += len(frame["labels"])
                self._bdd.add(frame)
        elif self.format is ExportFormat.COCO:
            video, images, annotations = self._coco.clip(clip)
            self._videos.add(video)
            for image in images:
                self._images.add(image)
            for annotation in annotations:
                self._boxes.add(annotation)
            self.annotations += len(annotations)
        else:
            for name, text in mot_files([clip]).items():
                if name.endswith("gt.txt"):
                    self.annotations += text.count("\n")
                self._mot[name] = text.encode()

    def finish(self) -> Rendered:
        files: dict[str, bytes | bytearray]
        if self.format is ExportFormat.BDD100K:
            files = {"labels.json": self._bdd.close()}
        elif self.format is ExportFormat.COCO:
            body = bytearray(b'{"info": ' + json.dumps(COCO_INFO).encode() + b', "videos": ')
            body += self._videos.close()
            body += b', "images": '
            body += self._images.close()
            self._images = _JsonArray()  # let go of the copied part before the next
            body += b', "annotations": '
            body += self._boxes.close()
            self._boxes = _JsonArray()
            body += b', "categories": ' + json.dumps(CocoBuilder.categories).encode() + b"}"
            files = {"annotations.json": body}
        else:
            files = self._mot
        return Rendered(files, self.clips, self.frames, self.annotations)


def render(fmt: ExportFormat, clips: Sequence[ClipLabels], bucket: str | None) -> Rendered:
    """The files of one export of these clips."""
    builder = ExportBuilder(fmt, bucket)
    for clip in clips:
        builder.add(clip)
    return builder.finish()
