"""Sample driving clips: real H.264 MP4s of drawn objects on known paths, plus their truth.

Every clip shows a road scene - lane markings, vehicles with license plates and lights,
pedestrians, traffic lights that change state, traffic signs - moving along deterministic
paths chosen by a seed. Beside the MP4 goes a sidecar (``<name>.lava.json``): the LAVA records
(:class:`~shared.taxonomy.records.ClipLabels`) of those objects at *every source frame*, which
the Ground Truth emulator labels from and the end-to-end tests check against.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from lava.rig import upload_clip
from shared.aws import AwsClients
from shared.bus import Bus
from shared.events import ClipIngested
from shared.settings import Settings
from shared.taxonomy.attributes import DriveAttributes
from shared.taxonomy.records import (
    Box,
    ClipInfo,
    ClipLabels,
    FrameRecord,
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
    VehicleLight,
)
from shared.taxonomy.vocabulary import (
    LampState,
    LaneDirection,
    LaneStyle,
    LaneType,
    LightState,
    Occlusion,
    Scene,
    SignType,
    TimeOfDay,
    Traffic,
    TrafficDensity,
    VehicleType,
    Weather,
)

SIDECAR_SUFFIX = ".lava.json"

RGB = tuple[int, int, int]
_VEHICLE_COLORS: list[RGB] = [(200, 30, 30), (30, 80, 200), (230, 200, 40), (240, 240, 240)]
_LIGHT_RGB = {
    LightState.RED: (255, 30, 30),
    LightState.GREEN: (30, 230, 60),
    LightState.YELLOW: (250, 200, 0),
}


@dataclass(frozen=True)
class SampleSpec:
    seconds: float = 10.0
    fps: int = 30
    width: int = 1920
    height: int = 1080
    gop: int = 30
    seed: int = 0
    crf: int = 23


@dataclass(frozen=True)
class SampleClip:
    video: Path
    sidecar: Path
    labels: ClipLabels


def sidecar_path(video: Path) -> Path:
    return video.with_name(video.stem + SIDECAR_SUFFIX)


@dataclass
class _Mover:
    """An object moving with constant velocity, bouncing inside a region."""

    x: float
    y: float
    w: float
    h: float
    vx: float
    vy: float

    def at(self, t: float, width: float, height: float) -> Box:
        def bounce(start: float, speed: float, size: float, limit: float) -> float:
            span = max(1.0, limit - size)
            pos = (start + speed * t) % (2 * span)
            return pos if pos <= span else 2 * span - pos

        left = bounce(self.x, self.vx, self.w, width)
        top = bounce(self.y, self.vy, self.h, height)
        return Box(
            left=round(left),
            top=round(top),
            right=round(left) + round(self.w),
            bottom=round(top) + round(self.h),
        )


@dataclass
class _Scene:
    vehicles: list[tuple[str, _Mover, VehicleType, RGB]]
    pedestrians: list[tuple[str, _Mover]]
    lanes: list[tuple[str, tuple[float, float], tuple[float, float], LaneStyle, LaneType]]
    light_box: Box
    sign_box: Box
    sign_type: SignType
    ignore_box: Box
    horizon: int
    light_period: float
    texture: np.ndarray


def _scene(rng: random.Random, spec: SampleSpec) -> _Scene:
    w, h = spec.width, spec.height
    s = w / 1920  # objects scale with the frame
    horizon = int(h * 0.45)
    # The draws keep their order (vehicles, pedestrians, sign, light): a seed makes one clip.
    vehicles = _vehicles(rng, w, h, s, horizon)
    pedestrians = _pedestrians(rng, w, h, s, horizon)
    lanes = [
        (
            f"lane-{i + 1}",
            (w * (0.1 + 0.4 * i), h - 1.0),
            (w * (0.45 + 0.05 * i), float(horizon + 10)),
            LaneStyle.DASHED if i == 1 else LaneStyle.SOLID,
            LaneType.SINGLE_WHITE if i == 1 else LaneType.ROAD_CURB,
        )
        for i in range(3)
    ]
    light_box = Box(
        left=round(w * 0.8),
        top=round(h * 0.08),
        right=round(w * 0.8 + 36 * s),
        bottom=round(h * 0.08 + 96 * s),
    )
    sign_box = Box(
        left=round(w * 0.08),
        top=round(h * 0.15),
        right=round(w * 0.08 + 70 * s),
        bottom=round(h * 0.15 + 70 * s),
    )
    ignore_box = Box(left=0, top=0, right=round(w * 0.12), bottom=round(h * 0.06))
    return _Scene(
        vehicles=vehicles,
        pedestrians=pedestrians,
        lanes=lanes,
        light_box=light_box,
        sign_box=sign_box,
        sign_type=rng.choice(list(SignType)),
        ignore_box=ignore_box,
        horizon=horizon,
        light_period=rng.uniform(2.0, 4.0),
        texture=_texture(spec),
    )


def _vehicles(
    rng: random.Random, w: int, h: int, s: float, horizon: int
) -> list[tuple[str, _Mover, VehicleType, RGB]]:
    vehicles = []
    for i in range(rng.randint(2, 3)):
        vw, vh = rng.uniform(220, 360) * s, rng.uniform(110, 170) * s
        vehicles.append(
            (
                f"veh-{i + 1}",
                _Mover(
                    rng.uniform(0, w - vw),
                    rng.uniform(horizon, h - vh),
                    vw,
                    vh,
                    rng.choice([-1, 1]) * rng.uniform(60, 160) * s,
                    rng.uniform(-15, 15) * s,
                ),
                rng.choice([VehicleType.CAR, VehicleType.VAN, VehicleType.TRUCK, VehicleType.BUS]),
                rng.choice(_VEHICLE_COLORS),
            )
        )
    return vehicles


def _pedestrians(
    rng: random.Random, w: int, h: int, s: float, horizon: int
) -> list[tuple[str, _Mover]]:
    return [
        (
            f"ped-{i + 1}",
            _Mover(
                rng.uniform(0, w - 40 * s),
                rng.uniform(horizon - 40 * s, h - 130 * s),
                44 * s,
                120 * s,
                rng.choice([-1, 1]) * rng.uniform(20, 50) * s,
                0.0,
            ),
        )
        for i in range(rng.randint(1, 2))
    ]


def _light_state(t: float, period: float) -> LightState:
    phase = int(t / period) % 3
    return (LightState.RED, LightState.GREEN, LightState.YELLOW)[phase]


def _objects_at(scene: _Scene, t: float, spec: SampleSpec) -> list[LavaObject]:
    w, h = spec.width, spec.height
    out: list[LavaObject] = [
        _vehicle_at(track, mover.at(t, w, h), vtype, t) for track, mover, vtype, _ in scene.vehicles
    ]
    for track, mover in scene.pedestrians:
        out.append(
            Pedestrian(
                track_id=track,
                box=mover.at(t, w, h),
                attributes=PedestrianAttributes(occlusion=Occlusion.NOT_OCCLUDED),
            )
        )
    for track, start, end, style, ltype in scene.lanes:
        out.append(
            Lane(
                track_id=track,
                points=(
                    (round(start[0]), round(start[1])),
                    (round((start[0] + end[0]) / 2), round((start[1] + end[1]) / 2)),
                    (round(end[0]), round(end[1])),
                ),
                attributes=LaneAttributes(
                    lane_style=style, lane_type=ltype, lane_direction=LaneDirection.VERTICAL
                ),
            )
        )
    out.append(
        TrafficLight(
            box=scene.light_box,
            attributes=TrafficLightAttributes(
                state=_light_state(t, scene.light_period),
                is_front=True,
                occlusion=Occlusion.NOT_OCCLUDED,
            ),
        )
    )
    out.append(
        TrafficSign(
            box=scene.sign_box,
            attributes=TrafficSignAttributes(
                type=scene.sign_type,
                is_front=True,
                occlusion=Occlusion.NOT_OCCLUDED,
            ),
        )
    )
    out.append(IgnoreRegion(box=scene.ignore_box))
    return out


def _vehicle_at(track: str, box: Box, vtype: VehicleType, t: float) -> Vehicle:
    """A vehicle at ``box`` with its plate and a tail light blinking once a second."""
    plate = Box(
        left=round(box.left + box.width * 0.4),
        top=round(box.bottom - box.height * 0.25),
        right=round(box.left + box.width * 0.6),
        bottom=round(box.bottom - box.height * 0.1),
    )
    tail = VehicleLight(
        kind="tail",
        state=LampState.ON if int(t) % 2 else LampState.OFF,
        box=Box(
            left=round(box.left + box.width * 0.05),
            top=round(box.top + box.height * 0.4),
            right=round(box.left + box.width * 0.15),
            bottom=round(box.top + box.height * 0.55),
        ),
    )
    return Vehicle(
        track_id=track,
        box=box,
        attributes=VehicleAttributes(type=vtype, occlusion=Occlusion.NOT_OCCLUDED),
        license_plate=plate,
        lights=(tail,),
    )


def _fill(img: np.ndarray, box: Box, color: RGB) -> None:
    img[int(box.top) : int(box.bottom), int(box.left) : int(box.right)] = color


def _line(
    img: np.ndarray,
    p0: tuple[float, float],
    p1: tuple[float, float],
    width: int,
    color: RGB,
    dashed: bool,
) -> None:
    steps = int(max(abs(p1[0] - p0[0]), abs(p1[1] - p0[1]))) + 1
    xs = np.linspace(p0[0], p1[0], steps).astype(int)
    ys = np.linspace(p0[1], p1[1], steps).astype(int)
    if dashed:
        keep = (np.arange(steps) // 40) % 2 == 0
        xs, ys = xs[keep], ys[keep]
    for dx in range(-(width // 2), width // 2 + 1):
        img[np.clip(ys, 0, img.shape[0] - 1), np.clip(xs + dx, 0, img.shape[1] - 1)] = color


def _texture(spec: SampleSpec) -> np.ndarray:
    """Asphalt- and foliage-like noise, taller than the frame so it can scroll.

    Real driving footage is full of fine texture moving with the camera; without it a sample
    decodes unrealistically fast and the ingest benchmark would measure nothing.
    """
    rng = np.random.default_rng(spec.seed)
    coarse = rng.integers(0, 48, size=(spec.height // 4 + 2, spec.width // 4 + 1), dtype=np.uint8)
    fine = rng.integers(0, 24, size=(spec.height * 2, spec.width), dtype=np.uint8)
    tiled = np.repeat(np.repeat(coarse, 4, axis=0), 4, axis=1)[: spec.height, : spec.width]
    return fine + np.vstack([tiled, tiled])[: spec.height * 2]


def _render(scene: _Scene, objects: list[LavaObject], spec: SampleSpec, t: float) -> np.ndarray:
    h, w = spec.height, spec.width
    img = np.empty((h, w, 3), dtype=np.uint8)
    horizon = scene.horizon
    texture = scene.texture
    shift = int(t * 240 * w / 1920) % h  # the road moves towards the camera
    noise = texture[shift : shift + h]
    img[:horizon] = (110, 160, 205)  # sky
    img[:horizon] += noise[:horizon, :, None] // 2
    img[horizon:] = (50, 50, 55)  # road
    img[horizon:] += noise[horizon:, :, None]
    colors = {track: color for track, _, _, color in scene.vehicles}
    for obj in objects:
        _draw(img, obj, colors)
    return img


def _draw(img: np.ndarray, obj: LavaObject, colors: dict[str, RGB]) -> None:
    """One object in flat colours: what the sidecar says is there is what the frame shows."""
    if isinstance(obj, Lane):
        for a, b in zip(obj.points, obj.points[1:], strict=False):
            _line(
                img,
                a,
                b,
                max(3, img.shape[1] // 300),
                (235, 235, 235),
                obj.attributes.lane_style is LaneStyle.DASHED,
            )
    elif isinstance(obj, Vehicle):
        _fill(img, obj.box, colors[obj.track_id])
        if obj.license_plate is not None:
            _fill(img, obj.license_plate, (250, 250, 210))
        for light in obj.lights:
            _fill(img, light.box, (255, 60, 40) if light.state is LampState.ON else (90, 20, 20))
    elif isinstance(obj, Pedestrian):
        _fill(img, obj.box, (40, 160, 90))
    elif isinstance(obj, TrafficLight):
        _draw_traffic_light(img, obj)
    elif isinstance(obj, TrafficSign):
        _fill(img, obj.box, (210, 40, 40))
        inner = obj.box
        _fill(
            img,
            Box(
                left=inner.left + 8,
                top=inner.top + 8,
                right=inner.right - 8,
                bottom=inner.bottom - 8,
            ),
            (245, 245, 245),
        )
    elif isinstance(obj, IgnoreRegion):
        _fill(img, obj.box, (20, 20, 20))


def _draw_traffic_light(img: np.ndarray, light: TrafficLight) -> None:
    """A dark housing with the lamp of its state lit (red top, yellow middle, green bottom)."""
    _fill(img, light.box, (25, 25, 25))
    lamp = light.box
    third = lamp.height / 3
    state = light.attributes.state or LightState.UNDEFINED
    slot = {LightState.RED: 0, LightState.YELLOW: 1, LightState.GREEN: 2}.get(state, 0)
    _fill(
        img,
        Box(
            left=lamp.left + 4,
            top=lamp.top + slot * third + 4,
            right=lamp.right - 4,
            bottom=lamp.top + (slot + 1) * third - 4,
        ),
        _LIGHT_RGB.get(state, (80, 80, 80)),
    )


def make_sample(
    out_dir: Path,
    spec: SampleSpec = SampleSpec(),
    name: str | None = None,
    drive: DriveAttributes | None = None,
    clip: ClipInfo | None = None,
) -> SampleClip:
    """Encode a sample clip with PyAV and write its sidecar; deterministic for a seed."""
    rng = random.Random(spec.seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = name or f"sample-{spec.seed:04d}"
    video = out_dir / f"{stem}.mp4"
    drive = drive or DriveAttributes(
        drive_id=f"drive-{spec.seed % 7:02d}",
        weather=rng.choice(list(Weather)),
        time_of_day=rng.choice(list(TimeOfDay)),
        route=rng.choice(["I-280 N", "US-101 S", "CA-1", "Market St"]),
    )
    clip = clip or ClipInfo(
        clip_id=stem,
        scene=rng.choice(list(Scene)),
        traffic=rng.choice(list(Traffic)),
        traffic_density=rng.choice(list(TrafficDensity)),
    )
    records = _encode(video, _scene(rng, spec), spec, drive, clip)
    labels = ClipLabels(
        clip_id=clip.clip_id,
        width=spec.width,
        height=spec.height,
        fps=spec.fps,
        drive=drive,
        clip=clip,
        frames=tuple(records),
    )
    sidecar = sidecar_path(video)
    sidecar.write_text(labels.model_dump_json())
    return SampleClip(video=video, sidecar=sidecar, labels=labels)


def _encode(
    video: Path, scene: _Scene, spec: SampleSpec, drive: DriveAttributes, clip: ClipInfo
) -> list[FrameRecord]:
    """Render and encode every frame of the scene (H.264 with PyAV); the frames' labels."""
    records: list[FrameRecord] = []
    with av.open(str(video), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(spec.fps))
        stream.width, stream.height = spec.width, spec.height
        stream.pix_fmt = "yuv420p"
        stream.codec_context.gop_size = spec.gop
        # Fixed GOP (no scene-cut keyframes) so the GOP the caller asked for is the GOP we get.
        stream.codec_context.options = {
            "preset": "veryfast",
            "crf": str(spec.crf),
            "sc_threshold": "0",
            "keyint_min": str(spec.gop),
        }
        for i in range(round(spec.seconds * spec.fps)):
            t = i / spec.fps
            objects = _objects_at(scene, t, spec)
            records.append(
                FrameRecord(frame_no=i, timestamp=t, drive=drive, clip=clip, objects=tuple(objects))
            )
            frame = av.VideoFrame.from_ndarray(_render(scene, objects, spec, t), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return records


async def upload_sample(
    settings: Settings,
    clip: SampleClip,
    *,
    fps: float,
    workflows: list[str],
    aws: AwsClients | None = None,
    bus: Bus | None = None,
) -> ClipIngested:
    """Upload a generated sample clip with the attributes and sidecar it was made with."""
    return await upload_clip(
        settings,
        clip.video,
        clip.labels.drive,
        clip.labels.clip.attributes(),
        fps=fps,
        workflows=workflows,
        sidecar=clip.sidecar,
        aws=aws,
        bus=bus,
    )
