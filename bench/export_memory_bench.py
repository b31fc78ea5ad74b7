"""Dataset export memory: what one clip costs while an export is rendered (no AWS involved).

Builds clips of ``--frames`` frames with ``--objects`` tracked objects each (vehicles with a
plate, pedestrians, a lane), then measures with tracemalloc the peak held while an export of
``--clips`` clips is made: every clip's labels parsed first, then rendered (the CLI's way), or
a clip at a time keeping only the serialized files (the control service's ``ExportBuilder``).
The control service's ``LAVA_CONTROL__EXPORT_MAX_CLIPS`` and memory limit come from this.

python -m bench.export_memory_bench [--clips 50] [--frames 50] [--objects 25]
"""

from __future__ import annotations

import argparse
import gc
import sys
import tracemalloc

from shared.dataset.exports import ExportBuilder, ExportFormat, render
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
    Vehicle,
    VehicleAttributes,
)

MB = 1024 * 1024


def clip_json(clip_id: str, frames: int, objects: int) -> bytes:
    drive = DriveAttributes(drive_id="d1", weather="rainy", time_of_day="night", route="A1")
    info = ClipInfo(
        clip_id=clip_id, scene="intersection", traffic="stop-and-go", traffic_density="high"
    )
    records = []
    for f in range(frames):
        found: list[LavaObject] = []
        for n in range(objects):
            box = Box(left=10 + n * 30 + f, top=200, right=40 + n * 30 + f, bottom=260)
            if n % 3 == 2:
                found.append(
                    Pedestrian(
                        track_id=f"p{n}",
                        box=box,
                        attributes=PedestrianAttributes(occlusion="not occluded"),
                    )
                )
            else:
                plate = Box(left=box.left + 2, top=250, right=box.left + 12, bottom=258)
                found.append(
                    Vehicle(
                        track_id=f"v{n}",
                        box=box,
                        attributes=VehicleAttributes(type="car", occlusion="partially occluded"),
                        license_plate=plate,
                    )
                )
        found.append(
            Lane(
                track_id="l1",
                points=((10, 1000), (500, 600), (900, 400)),
                attributes=LaneAttributes(
                    lane_style="dashed", lane_type="single white", lane_direction="vertical"
                ),
            )
        )
        records.append(
            FrameRecord(frame_no=f, timestamp=f / 5, drive=drive, clip=info, objects=tuple(found))
        )
    labels = ClipLabels(
        clip_id=clip_id,
        width=1920,
        height=1080,
        fps=5,
        drive=drive,
        clip=info,
        frames=tuple(records),
    )
    return labels.model_dump_json().encode()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=50)
    parser.add_argument("--frames", type=int, default=50)
    parser.add_argument("--objects", type=int, default=25)
    args = parser.parse_args()
    raw = [clip_json(f"clip-{i}", args.frames, args.objects) for i in range(args.clips)]
    size = sum(len(r) for r in raw) / len(raw)
    print(
        f"{args.clips} clips of {args.frames} frames x {args.objects + 1} objects; "
        f"labels file {size / MB:.2f} MB a clip"
    )
    for fmt in ExportFormat:
        for how in ("all labels parsed, then rendered (the CLI)", "a clip at a time (control)"):
            gc.collect()
            tracemalloc.start()
            if how.startswith("all"):
                rendered = render(fmt, [ClipLabels.model_validate_json(r) for r in raw], "b")
            else:
                builder = ExportBuilder(fmt, "b")
                for r in raw:
                    builder.add(ClipLabels.model_validate_json(r))
                rendered = builder.finish()
            out = sum(len(b) for b in rendered.files.values())
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            del rendered
            print(
                f"{fmt.value:8} {how:44} files {out / MB / args.clips:5.2f} MB a clip, peak "
                f"{peak / MB / args.clips:5.2f} MB a clip ({peak / MB:.0f} MB for {args.clips})"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
