"""LAVA frame records: what one labeled frame of a clip holds.

Geometry is stored as given (a box with left >= right is representable) so that a bad label can
be carried to the validator and reported with its location instead of vanishing at parse time;
:mod:`shared.taxonomy.validation` applies the taxonomy's rules. Enum values are exact.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.taxonomy.attributes import ClipAttributes, DriveAttributes, SafeId
from shared.taxonomy.vocabulary import (
    LampState,
    LaneDirection,
    LaneStyle,
    LaneType,
    LightState,
    Occlusion,
    SignType,
    VehicleType,
)


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Box(_Frozen):
    """An axis-aligned box in pixels: left/top inclusive, right/bottom exclusive."""

    left: float
    top: float
    right: float
    bottom: float

    @property
    def width(self) -> float:
        return self.right - self.left

    @property
    def height(self) -> float:
        return self.bottom - self.top

    @property
    def area(self) -> float:
        return max(0.0, self.width) * max(0.0, self.height)

    def contains(self, other: Box, tolerance: float = 0.0) -> bool:
        return (
            other.left >= self.left - tolerance
            and other.top >= self.top - tolerance
            and other.right <= self.right + tolerance
            and other.bottom <= self.bottom + tolerance
        )

    def iou(self, other: Box) -> float:
        ix = max(0.0, min(self.right, other.right) - max(self.left, other.left))
        iy = max(0.0, min(self.bottom, other.bottom) - max(self.top, other.top))
        inter = ix * iy
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0


Point = tuple[float, float]


class NoAttributes(_Frozen):
    pass


# Attribute values are required keys, but a value may be ``null``: "not given". Ground Truth
# returns attributes per annotation per frame, possibly partial or empty (sms-data-output);
# conversion carries a track's value from its nearest frame that has one, and only what no
# frame gives stays null - never a guess - with an ``attribute-missing`` problem naming it.


class VehicleAttributes(_Frozen):
    type: VehicleType | None
    occlusion: Occlusion | None


class VehicleLight(_Frozen):
    """A head or tail light: an internal part of its vehicle."""

    kind: Literal["head", "tail"]
    state: LampState | None = LampState.UNDEFINED  # None: not given
    box: Box


class PedestrianAttributes(_Frozen):
    occlusion: Occlusion | None


class LaneAttributes(_Frozen):
    lane_style: LaneStyle | None
    lane_type: LaneType | None
    lane_direction: LaneDirection | None


class TrafficLightAttributes(_Frozen):
    state: LightState | None
    is_front: bool | None
    occlusion: Occlusion | None


class TrafficSignAttributes(_Frozen):
    type: SignType | None
    is_front: bool | None
    occlusion: Occlusion | None


class IgnoreRegion(_Frozen):
    category: Literal["ignore"] = "ignore"
    track_id: str | None = None
    box: Box
    points: None = None
    attributes: NoAttributes = NoAttributes()


class Vehicle(_Frozen):
    category: Literal["vehicle"] = "vehicle"
    track_id: str
    box: Box
    points: None = None
    attributes: VehicleAttributes
    license_plate: Box | None = None
    lights: tuple[VehicleLight, ...] = ()


class Pedestrian(_Frozen):
    category: Literal["pedestrian"] = "pedestrian"
    track_id: str
    box: Box
    points: None = None
    attributes: PedestrianAttributes


class Lane(_Frozen):
    category: Literal["lane"] = "lane"
    track_id: str | None = None
    box: None = None
    points: tuple[Point, ...]
    attributes: LaneAttributes


class TrafficLight(_Frozen):
    category: Literal["traffic_light"] = "traffic_light"
    track_id: str | None = None
    box: Box
    points: None = None
    attributes: TrafficLightAttributes


class TrafficSign(_Frozen):
    category: Literal["traffic_sign"] = "traffic_sign"
    track_id: str | None = None
    box: Box
    points: None = None
    attributes: TrafficSignAttributes


LavaObject = Annotated[
    IgnoreRegion | Vehicle | Pedestrian | Lane | TrafficLight | TrafficSign,
    Field(discriminator="category"),
]


class ClipInfo(ClipAttributes):
    """The clip's own attributes plus its id, as every frame record carries them."""

    clip_id: SafeId

    def attributes(self) -> ClipAttributes:
        return ClipAttributes(
            scene=self.scene, traffic=self.traffic, traffic_density=self.traffic_density
        )


class FrameRecord(_Frozen):
    """One frame: its number and time, the inherited drive and clip attributes, its objects."""

    frame_no: int = Field(ge=0)
    timestamp: float = Field(ge=0, description="Seconds from the start of the clip.")
    drive: DriveAttributes
    clip: ClipInfo
    objects: tuple[LavaObject, ...] = ()


class ClipLabels(_Frozen):
    """The LAVA records of one clip: the content of ``labels/<clip>.json``."""

    schema_version: Literal[1] = 1
    clip_id: SafeId
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    fps: float = Field(gt=0)
    drive: DriveAttributes
    clip: ClipInfo
    frames: tuple[FrameRecord, ...]
