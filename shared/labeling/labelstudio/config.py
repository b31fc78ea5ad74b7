"""Label Studio labeling configs generated from the LAVA job types.

One config per job type, from the same labels and attributes the Ground Truth label category
files use (``shared.groundtruth.job_types``), so the two backends offer workers the same
taxonomy. Label Studio has no 16-character limit: labels and values are the LAVA spellings
(no short codes); booleans are offered as ``yes``/``no``.

Measured with label-studio 1.23.2 (its editor bundle registers only ``VideoRectangle`` as a
video region; ``Vector`` - open polylines - exists for images only):
- boxes (tracking and detection) are ``VideoRectangle`` regions on the clip itself; detection
  workers draw one single-keyframe region per frame (lifespan off);
- lanes are ``Vector`` polylines on the frame sequence (one ``Image`` per extracted frame).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from xml.sax.saxutils import quoteattr

from shared.groundtruth.job_types import AnnotationType, GtAttribute, GtLabel, JobType

# Names of the config's tags; the track conversion reads results by them.
VIDEO = "video"
FRAMES = "frames"
LABELS = "label"
BOX = "box"
LINE = "lane_line"

YES, NO = "yes", "no"


class Surface(Enum):
    """What the worker labels on: the clip (video regions) or its extracted frames."""

    VIDEO = "video"
    FRAME_SEQUENCE = "frames"


def surface_of(job: JobType) -> Surface:
    if job.annotation_type is AnnotationType.POLYLINE:
        return Surface.FRAME_SEQUENCE
    return Surface.VIDEO


def attribute_control(label: GtLabel, attribute: GtAttribute) -> str:
    """The per-region ``Choices`` name of one label's attribute (unique in the config)."""
    return f"{label.lava}.{attribute.name}"


def attribute_values(attribute: GtAttribute) -> tuple[str, ...]:
    """The LAVA values a worker picks from (no short codes here)."""
    if attribute.enum is None:
        return (YES, NO)
    return tuple(member.value for member in attribute.enum)


@dataclass(frozen=True)
class AttributeControl:
    label: GtLabel
    attribute: GtAttribute

    @property
    def name(self) -> str:
        return attribute_control(self.label, self.attribute)


def attribute_controls(job: JobType) -> dict[str, AttributeControl]:
    """Control name -> the (label, attribute) it fills."""
    return {
        attribute_control(label, attr): AttributeControl(label, attr)
        for label in job.labels
        for attr in label.attributes
    }


def _choices(control: AttributeControl, to_name: str) -> str:
    options = "".join(
        f"<Choice value={quoteattr(v)}/>" for v in attribute_values(control.attribute)
    )
    return (
        f"<Choices name={quoteattr(control.name)} toName={quoteattr(to_name)} "
        'perRegion="true" choice="single" required="true" '
        f'visibleWhen="region-selected" whenLabelValue={quoteattr(control.label.label)}>'
        f"<Header value={quoteattr(control.label.label + ': ' + control.attribute.description)}/>"
        f"{options}</Choices>"
    )


def labeling_config(job: JobType, *, review: bool = False) -> str:
    """The labeling config (XML) of a job type; ``review`` for the adjustment level, whose
    tasks arrive with the previous level's labels as predictions."""
    surface = surface_of(job)
    verb = "Check and correct the pre-drawn labels." if review else "Label the clip."
    tracking = job.task_type.value == "VideoObjectTracking"
    if surface is Surface.VIDEO:
        how = (
            "Keep one region per object for as long as it is in view (one id per object)."
            if tracking
            else "Draw one region per object per frame and switch its lifespan off."
        )
        to_name = VIDEO
        media = f'<Video name="{VIDEO}" value="$video" framerate="$fps"/>'
        labels = "".join(f"<Label value={quoteattr(label.label)}/>" for label in job.labels)
        tools = (
            f'<Labels name="{LABELS}" toName="{VIDEO}">{labels}</Labels>'
            f'<VideoRectangle name="{BOX}" toName="{VIDEO}"/>'
        )
    else:
        how = "Trace each marking on every frame with an open polyline."
        to_name = FRAMES
        media = f'<Image name="{FRAMES}" valueList="$frames"/>'
        labels = "".join(f"<Label value={quoteattr(label.label)}/>" for label in job.labels)
        tools = f'<VectorLabels name="{LINE}" toName="{FRAMES}">{labels}</VectorLabels>'
    controls = "".join(_choices(c, to_name) for c in attribute_controls(job).values())
    header = f"{verb} {job.short_instruction} {how}"
    return f"<View><Header value={quoteattr(header)}/>{media}{tools}{controls}</View>"
