"""Property: LAVA frame records -> Ground Truth annotation file -> parsed back -> equal."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.groundtruth.annotations import parse_seq_label
from shared.groundtruth.convert import class_map, from_seq_label, to_seq_label
from shared.groundtruth.job_types import JOB_TYPES, TaskType
from shared.taxonomy.records import (
    Box,
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
    SignType,
    VehicleType,
)

# Ground Truth boxes are whole pixels.
coord = st.integers(min_value=0, max_value=1800).map(float)


@st.composite
def boxes(draw: st.DrawFn, min_size: int = 4) -> Box:
    left, top = draw(coord), draw(coord)
    w = draw(st.integers(min_size, 300))
    h = draw(st.integers(min_size, 300))
    return Box(left=left, top=top, right=left + w, bottom=top + h)


@st.composite
def inner_box(draw: st.DrawFn, outer: Box) -> Box:
    left = draw(st.integers(int(outer.left), int(outer.right) - 2))
    top = draw(st.integers(int(outer.top), int(outer.bottom) - 2))
    right = draw(st.integers(left + 1, int(outer.right)))
    bottom = draw(st.integers(top + 1, int(outer.bottom)))
    return Box(left=left, top=top, right=right, bottom=bottom)


@st.composite
def vehicles(draw: st.DrawFn, track: str) -> Vehicle:
    box = draw(boxes(min_size=10))
    plate = draw(st.none() | inner_box(box))
    lights = draw(
        st.lists(
            st.builds(
                VehicleLight,
                kind=st.sampled_from(["head", "tail"]),
                state=st.sampled_from(list(LampState)),
                box=inner_box(box),
            ),
            max_size=2,
        )
    )
    return Vehicle(
        track_id=track,
        box=box,
        attributes=VehicleAttributes(
            type=draw(st.sampled_from(list(VehicleType))),
            occlusion=draw(st.sampled_from(list(Occlusion))),
        ),
        license_plate=plate,
        lights=tuple(lights),
    )


def objects_of(job: str, track_prefix: str) -> st.SearchStrategy[list[LavaObject]]:
    occlusion = st.sampled_from(list(Occlusion))
    if job == "vehicle":
        return st.lists(
            st.integers(0, 50).flatmap(lambda n: vehicles(f"{track_prefix}{n}")),
            max_size=4,
            unique_by=lambda v: v.track_id,
        )
    if job == "pedestrian":
        return st.lists(
            st.builds(
                Pedestrian,
                track_id=st.integers(0, 50).map(lambda n: f"{track_prefix}{n}"),
                box=boxes(),
                attributes=st.builds(PedestrianAttributes, occlusion=occlusion),
            ),
            max_size=4,
            unique_by=lambda p: p.track_id,
        )
    if job == "lane":
        return st.lists(
            st.builds(
                Lane,
                track_id=st.integers(0, 50).map(lambda n: f"{track_prefix}{n}"),
                points=st.lists(st.tuples(coord, coord), min_size=2, max_size=5).map(tuple),
                attributes=st.builds(
                    LaneAttributes,
                    lane_style=st.sampled_from(list(LaneStyle)),
                    lane_type=st.sampled_from(list(LaneType)),
                    lane_direction=st.sampled_from(list(LaneDirection)),
                ),
            ),
            max_size=3,
            unique_by=lambda ln: ln.track_id,
        )
    if job == "traffic_light":
        return st.lists(
            st.builds(
                TrafficLight,
                box=boxes(),
                attributes=st.builds(
                    TrafficLightAttributes,
                    state=st.sampled_from(list(LightState)),
                    is_front=st.booleans(),
                    occlusion=occlusion,
                ),
            ),
            max_size=3,
        )
    if job == "traffic_sign":
        return st.lists(
            st.builds(
                TrafficSign,
                box=boxes(),
                attributes=st.builds(
                    TrafficSignAttributes,
                    type=st.sampled_from(list(SignType)),
                    is_front=st.booleans(),
                    occlusion=occlusion,
                ),
            ),
            max_size=3,
        )
    return st.lists(st.builds(IgnoreRegion, box=boxes()), max_size=3)


@settings(max_examples=60, deadline=None)
@given(
    job=st.sampled_from(sorted(JOB_TYPES)),
    data=st.data(),
)
def test_lava_to_ground_truth_and_back_is_identity(job: str, data: st.DataObject) -> None:
    spec = JOB_TYPES[job]
    frame_count = data.draw(st.integers(1, 4))
    frames = [(n * 3, f"{n:06d}.jpg", data.draw(objects_of(job, "t"))) for n in range(frame_count)]
    seq = to_seq_label(spec, frames)
    # Through JSON, as it travels through S3.
    parsed = parse_seq_label(json.loads(seq.to_json()))
    back, problems = from_seq_label(parsed, class_map(spec))
    assert problems == []
    assert [f.frame_no for f in back] == [n for n, _, _ in frames]
    for got, (_, _, objects) in zip(back, frames, strict=True):
        assert list(got.objects) == objects
    if spec.task_type is TaskType.VIDEO_OBJECT_DETECTION:
        assert all(o.track_id is None for f in back for o in f.objects)
