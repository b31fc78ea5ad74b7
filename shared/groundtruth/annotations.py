"""The per-frame annotation file a video job writes (``SeqLabel.json``), read defensively.

``{"tracking-annotations"|"detection-annotations": [{"frame-no", "frame", "frame-attributes",
"annotations": [{"top","left","width","height","class-id","object-id","object-name",
"label-category-attributes"}], "polylines": [{..., "vertices": [{"x","y"}]}]}]}``
(sms-data-output). ``object-id`` is a UUID and ``object-name`` ``<label>:<n>`` in tracking jobs;
detection jobs have neither. ``label-category-attributes`` is per annotation per frame and may
be partial or ``{}`` (the guide's own examples).

Ground Truth is loose about types (``frame-no`` and ``class-id`` arrive as strings or numbers,
optional keys go missing); the parser accepts that and names the field when it cannot. Older
exports named polyline vertices ``points``; both are read, ``vertices`` is written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from shared.groundtruth.errors import GtFormatError

Kind = Literal["tracking", "detection"]


@dataclass(frozen=True)
class GtBox:
    left: float
    top: float
    width: float
    height: float
    class_id: str
    object_id: str | None = None
    object_name: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GtPolyline:
    points: tuple[tuple[float, float], ...]
    class_id: str
    object_id: str | None = None
    object_name: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GtFrame:
    frame_no: int
    frame: str
    boxes: tuple[GtBox, ...] = ()
    polylines: tuple[GtPolyline, ...] = ()
    frame_attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SeqLabel:
    kind: Kind
    frames: tuple[GtFrame, ...]

    @property
    def key(self) -> str:
        return f"{self.kind}-annotations"

    def to_dict(self) -> dict[str, Any]:
        return {self.key: [_frame_to_dict(f) for f in self.frames]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


def _frame_to_dict(frame: GtFrame) -> dict[str, Any]:
    out: dict[str, Any] = {
        "frame-no": frame.frame_no,
        "frame": frame.frame,
        "frame-attributes": frame.frame_attributes,
        "annotations": [_box_to_dict(b) for b in frame.boxes],
    }
    if frame.polylines:
        out["polylines"] = [_polyline_to_dict(p) for p in frame.polylines]
    return out


def _identity(class_id: str, object_id: str | None, object_name: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"class-id": class_id}
    if object_id is not None:
        out["object-id"] = object_id
    if object_name is not None:
        out["object-name"] = object_name
    return out


def _box_to_dict(box: GtBox) -> dict[str, Any]:
    return {
        "top": box.top,
        "left": box.left,
        "width": box.width,
        "height": box.height,
        **_identity(box.class_id, box.object_id, box.object_name),
        "label-category-attributes": box.attributes,
    }


def _polyline_to_dict(line: GtPolyline) -> dict[str, Any]:
    return {
        **_identity(line.class_id, line.object_id, line.object_name),
        "label-category-attributes": line.attributes,
        "vertices": [{"x": x, "y": y} for x, y in line.points],
    }


# --- parsing ----------------------------------------------------------------------------------


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool):
        raise GtFormatError(where, f"expected a number, got {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            pass
    raise GtFormatError(where, f"expected a number, got {value!r}")


def _integer(value: Any, where: str) -> int:
    number = _number(value, where)
    if number != int(number) or number < 0:
        raise GtFormatError(where, f"expected a non-negative integer, got {value!r}")
    return int(number)


def _optional_str(value: Any) -> str | None:
    if value is None:
        return None
    return str(value)


def _attributes(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise GtFormatError(where, "label-category-attributes is not an object")
    return dict(value)


def _point(value: Any, where: str) -> tuple[float, float]:
    if isinstance(value, dict):
        return (_number(value.get("x"), f"{where}.x"), _number(value.get("y"), f"{where}.y"))
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return (_number(value[0], f"{where}[0]"), _number(value[1], f"{where}[1]"))
    raise GtFormatError(where, f"expected a point {{x, y}}, got {value!r}")


def _parse_box(raw: Any, where: str) -> GtBox:
    if not isinstance(raw, dict):
        raise GtFormatError(where, "annotation is not an object")
    if "class-id" not in raw:
        raise GtFormatError(f"{where}.class-id", "missing")
    return GtBox(
        left=_number(raw.get("left"), f"{where}.left"),
        top=_number(raw.get("top"), f"{where}.top"),
        width=_number(raw.get("width"), f"{where}.width"),
        height=_number(raw.get("height"), f"{where}.height"),
        class_id=str(raw["class-id"]).strip(),
        object_id=_optional_str(raw.get("object-id")),
        object_name=_optional_str(raw.get("object-name")),
        attributes=_attributes(raw.get("label-category-attributes"), where),
    )


def _parse_polyline(raw: Any, where: str) -> GtPolyline:
    if not isinstance(raw, dict):
        raise GtFormatError(where, "polyline is not an object")
    if "class-id" not in raw:
        raise GtFormatError(f"{where}.class-id", "missing")
    name = "vertices" if "vertices" in raw else "points"
    points_raw = raw.get(name)
    if not isinstance(points_raw, list):
        raise GtFormatError(f"{where}.vertices", "missing or not a list")
    return GtPolyline(
        points=tuple(_point(p, f"{where}.{name}[{i}]") for i, p in enumerate(points_raw)),
        class_id=str(raw["class-id"]).strip(),
        object_id=_optional_str(raw.get("object-id")),
        object_name=_optional_str(raw.get("object-name")),
        attributes=_attributes(raw.get("label-category-attributes"), where),
    )


def parse_seq_label(data: str | bytes | dict[str, Any]) -> SeqLabel:
    try:
        raw = json.loads(data) if isinstance(data, (str, bytes)) else data
    except ValueError as exc:
        raise GtFormatError("annotation file", f"not JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise GtFormatError("annotation file", "not a JSON object")
    kind: Kind
    if "tracking-annotations" in raw:
        kind, frames_raw = "tracking", raw["tracking-annotations"]
    elif "detection-annotations" in raw:
        kind, frames_raw = "detection", raw["detection-annotations"]
    else:
        raise GtFormatError(
            "tracking-annotations", "missing (neither tracking- nor detection-annotations)"
        )
    key = f"{kind}-annotations"
    if not isinstance(frames_raw, list):
        raise GtFormatError(key, "not a list")
    frames = []
    for i, fr in enumerate(frames_raw):
        where = f"{key}[{i}]"
        if not isinstance(fr, dict):
            raise GtFormatError(where, "frame is not an object")
        if "frame-no" not in fr:
            raise GtFormatError(f"{where}.frame-no", "missing")
        boxes_raw = fr.get("annotations") or []
        lines_raw = fr.get("polylines") or []
        if not isinstance(boxes_raw, list):
            raise GtFormatError(f"{where}.annotations", "not a list")
        if not isinstance(lines_raw, list):
            raise GtFormatError(f"{where}.polylines", "not a list")
        boxes, lines = [], []
        for j, ann in enumerate(boxes_raw):
            # Some exports put polylines in the annotations list; recognize them by points.
            if isinstance(ann, dict) and ("points" in ann or "vertices" in ann):
                lines.append(_parse_polyline(ann, f"{where}.annotations[{j}]"))
            else:
                boxes.append(_parse_box(ann, f"{where}.annotations[{j}]"))
        lines.extend(_parse_polyline(p, f"{where}.polylines[{j}]") for j, p in enumerate(lines_raw))
        attrs = fr.get("frame-attributes")
        frames.append(
            GtFrame(
                frame_no=_integer(fr["frame-no"], f"{where}.frame-no"),
                frame=str(fr.get("frame", "")),
                boxes=tuple(boxes),
                polylines=tuple(lines),
                frame_attributes=dict(attrs) if isinstance(attrs, dict) else {},
            )
        )
    return SeqLabel(kind=kind, frames=tuple(frames))
