"""The labeling job types and how each presents the LAVA taxonomy to Ground Truth workers.

One job type per modality. Each names its Ground Truth task type (video object tracking keeps
object ids across frames; detection does not), its annotation tool, and its labels with their
attributes in Ground Truth spelling (``vocabulary.py``). Drive- and clip-level attributes are
not labeled here: they come from the capture rig (13 scenes would not fit a 10-value enum).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from shared.groundtruth.vocabulary import NO, YES, gt_values
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


class TaskType(StrEnum):
    VIDEO_OBJECT_TRACKING = "VideoObjectTracking"
    VIDEO_OBJECT_DETECTION = "VideoObjectDetection"

    @property
    def output_type(self) -> str:
        """The ``type`` Ground Truth writes in the output metadata."""
        if self is TaskType.VIDEO_OBJECT_TRACKING:
            return "groundtruth/video-object-tracking"
        return "groundtruth/video-object-detection"


class AnnotationType(StrEnum):
    BOUNDING_BOX = "BoundingBox"
    POLYLINE = "Polyline"


@dataclass(frozen=True)
class GtAttribute:
    """A label category attribute: its Ground Truth name, the LAVA field it fills, its values."""

    name: str
    description: str
    values: tuple[str, ...]
    enum: type[StrEnum] | None = None  # None: a yes/no boolean
    # The LAVA field it fills when that differs from the Ground Truth name (attribute names
    # must be unique within a label category file, sms-label-cat-config-attributes).
    field: str | None = None

    @property
    def lava_name(self) -> str:
        return self.field or self.name

    @staticmethod
    def of(
        name: str, description: str, enum: type[StrEnum], field: str | None = None
    ) -> GtAttribute:
        return GtAttribute(name, description, tuple(gt_values(enum)), enum, field)

    @staticmethod
    def boolean(name: str, description: str) -> GtAttribute:
        return GtAttribute(name, description, (YES, NO), None)


# What a Ground Truth label becomes in LAVA: an object class, or a part of a vehicle.
PART_LICENSE_PLATE = "license_plate"
PART_HEAD_LIGHT = "head_light"
PART_TAIL_LIGHT = "tail_light"
VEHICLE_PARTS = (PART_LICENSE_PLATE, PART_HEAD_LIGHT, PART_TAIL_LIGHT)


@dataclass(frozen=True)
class GtLabel:
    label: str
    lava: str  # an ObjectClass value or a vehicle part
    attributes: tuple[GtAttribute, ...] = ()


OCCLUSION = GtAttribute.of("occlusion", "How much of the object is hidden.", Occlusion)
IS_FRONT = GtAttribute.boolean("is_front", "Does it face the ego vehicle?")
# Both lamps fill VehicleLight.state, but one file may not name two attributes "state".
HEAD_LIGHT_STATE = GtAttribute.of("head_light_state", "Is the lamp lit?", LampState, "state")
TAIL_LIGHT_STATE = GtAttribute.of("tail_light_state", "Is the lamp lit?", LampState, "state")


@dataclass(frozen=True)
class JobType:
    name: str
    task_type: TaskType
    annotation_type: AnnotationType
    labels: tuple[GtLabel, ...]
    short_instruction: str
    # Prefix of generated job names and label attributes (e.g. VOTVehicle, AdjVOTVehicle).
    job_stem: str

    def label(self, name: str) -> GtLabel:
        for label in self.labels:
            if label.label == name:
                return label
        raise KeyError(name)

    @property
    def lava_classes(self) -> tuple[str, ...]:
        return tuple(label.lava for label in self.labels if label.lava not in VEHICLE_PARTS)


JOB_TYPES: dict[str, JobType] = {
    job.name: job
    for job in (
        JobType(
            name="vehicle",
            task_type=TaskType.VIDEO_OBJECT_TRACKING,
            annotation_type=AnnotationType.BOUNDING_BOX,
            labels=(
                GtLabel(
                    "vehicle",
                    "vehicle",
                    (GtAttribute.of("type", "Kind of vehicle.", VehicleType), OCCLUSION),
                ),
                GtLabel("license plate", PART_LICENSE_PLATE),
                GtLabel("head light", PART_HEAD_LIGHT, (HEAD_LIGHT_STATE,)),
                GtLabel("tail light", PART_TAIL_LIGHT, (TAIL_LIGHT_STATE,)),
            ),
            short_instruction=(
                "Box every vehicle and keep its id across frames; box license plates and "
                "head/tail lights inside their vehicle."
            ),
            job_stem="VOTVehicle",
        ),
        JobType(
            name="pedestrian",
            task_type=TaskType.VIDEO_OBJECT_TRACKING,
            annotation_type=AnnotationType.BOUNDING_BOX,
            labels=(GtLabel("pedestrian", "pedestrian", (OCCLUSION,)),),
            short_instruction="Box every pedestrian and keep their id across frames.",
            job_stem="VOTPedestrian",
        ),
        JobType(
            name="lane",
            task_type=TaskType.VIDEO_OBJECT_TRACKING,
            annotation_type=AnnotationType.POLYLINE,
            labels=(
                GtLabel(
                    "lane",
                    "lane",
                    (
                        GtAttribute.of("lane_style", "Solid or dashed marking.", LaneStyle),
                        GtAttribute.of("lane_type", "Kind of marking.", LaneType),
                        GtAttribute.of(
                            "lane_direction", "Along or across the road.", LaneDirection
                        ),
                    ),
                ),
            ),
            short_instruction="Trace every lane marking and curb with a polyline.",
            job_stem="VOTLane",
        ),
        JobType(
            name="traffic_light",
            task_type=TaskType.VIDEO_OBJECT_DETECTION,
            annotation_type=AnnotationType.BOUNDING_BOX,
            labels=(
                GtLabel(
                    "traffic light",
                    "traffic_light",
                    (
                        GtAttribute.of("state", "Which light is lit.", LightState),
                        IS_FRONT,
                        OCCLUSION,
                    ),
                ),
            ),
            short_instruction="Box every traffic light; say which is lit and if it faces us.",
            job_stem="VODTrafficLight",
        ),
        JobType(
            name="traffic_sign",
            task_type=TaskType.VIDEO_OBJECT_DETECTION,
            annotation_type=AnnotationType.BOUNDING_BOX,
            labels=(
                GtLabel(
                    "traffic sign",
                    "traffic_sign",
                    (GtAttribute.of("type", "Kind of sign.", SignType), IS_FRONT, OCCLUSION),
                ),
            ),
            short_instruction="Box every traffic sign; say its kind and if it faces us.",
            job_stem="VODTrafficSign",
        ),
        JobType(
            name="ignore",
            task_type=TaskType.VIDEO_OBJECT_DETECTION,
            annotation_type=AnnotationType.BOUNDING_BOX,
            labels=(GtLabel("ignore", "ignore"),),
            short_instruction="Box regions to ignore (too far, too blurred, reflections).",
            job_stem="VODIgnore",
        ),
    )
}

# Ground Truth label name -> (job type, label), for reading outputs without knowing the job.
LABELS_BY_NAME: dict[str, tuple[JobType, GtLabel]] = {
    label.label: (job, label) for job in JOB_TYPES.values() for label in job.labels
}


def job_type(name: str) -> JobType:
    try:
        return JOB_TYPES[name]
    except KeyError:
        known = ", ".join(JOB_TYPES)
        raise ValueError(f"unknown job type {name!r} (known: {known})") from None
