"""Small builders of LAVA records for tests."""

from __future__ import annotations

from shared.taxonomy.attributes import DriveAttributes
from shared.taxonomy.records import (
    Box,
    ClipInfo,
    ClipLabels,
    FrameRecord,
    Lane,
    LaneAttributes,
    LavaObject,
    Pedestrian,
    PedestrianAttributes,
    TrafficSign,
    TrafficSignAttributes,
    Vehicle,
    VehicleAttributes,
    VehicleLight,
)

DRIVE = DriveAttributes(drive_id="d1", weather="rainy", time_of_day="night", route="A1")
CLIP = ClipInfo(
    clip_id="clip-1", scene="intersection", traffic="stop-and-go", traffic_density="high"
)


def vehicle(
    track: str,
    box: Box | None = None,
    plate: bool = False,
    plate_box: Box | None = None,
    lights: bool = False,
) -> Vehicle:
    box = box or Box(left=100, top=100, right=300, bottom=200)
    plate_at = plate_box or (
        Box(left=box.left + 50, top=box.bottom - 30, right=box.left + 100, bottom=box.bottom - 10)
        if plate
        else None
    )
    parts = (
        (light(Box(left=box.left + 5, top=box.top + 5, right=box.left + 25, bottom=box.top + 15)),)
        if lights
        else ()
    )
    return Vehicle(
        track_id=track,
        box=box,
        attributes=VehicleAttributes(type="car", occlusion="partially occluded"),
        license_plate=plate_at,
        lights=parts,
    )


def light(box: Box) -> VehicleLight:
    return VehicleLight(kind="head", state="on", box=box)


def pedestrian(track: str, box: Box | None = None) -> Pedestrian:
    return Pedestrian(
        track_id=track,
        box=box or Box(left=400, top=300, right=440, bottom=400),
        attributes=PedestrianAttributes(occlusion="not occluded"),
    )


def lane(points: tuple[tuple[float, float], ...] = ((10, 1000), (500, 600))) -> Lane:
    return Lane(
        track_id="l1",
        points=points,
        attributes=LaneAttributes(
            lane_style="dashed", lane_type="single white", lane_direction="vertical"
        ),
    )


def sign(box: Box | None = None) -> TrafficSign:
    return TrafficSign(
        box=box or Box(left=900, top=100, right=950, bottom=150),
        attributes=TrafficSignAttributes(
            type="highway construction and maintenance", is_front=True, occlusion="not occluded"
        ),
    )


def frame(frame_no: int, objects: list[LavaObject]) -> FrameRecord:
    return FrameRecord(
        frame_no=frame_no, timestamp=frame_no / 5, drive=DRIVE, clip=CLIP, objects=tuple(objects)
    )


def clip_labels(frames: list[FrameRecord]) -> ClipLabels:
    return ClipLabels(
        clip_id=CLIP.clip_id,
        width=1920,
        height=1080,
        fps=5,
        drive=DRIVE,
        clip=CLIP,
        frames=tuple(frames),
    )
