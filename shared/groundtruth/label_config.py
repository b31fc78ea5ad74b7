"""Label category configuration files (``documentVersion`` 2020-03-01), generated per job type.

An adjustment variant carries the same labels, allows edits, and names the audited job's label
attribute in ``auditLabelAttributeName``. Every generated file is checked against Ground
Truth's quotas (``limits.py``) before it is returned.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.groundtruth import limits
from shared.groundtruth.job_types import AnnotationType, JobType


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CategoryAttribute(_Model):
    name: str
    description: str | None = None
    type: Literal["string", "number"] = "string"
    enum: list[str] | None = None
    isRequired: bool | None = None
    editsAllowed: Literal["any", "none"] | None = None


class LabelCategory(_Model):
    label: str
    categoryAttributes: list[CategoryAttribute] = Field(default_factory=list)
    editsAllowed: Literal["any", "none"] | None = None


class Instructions(_Model):
    shortInstruction: str
    fullInstruction: str


class LabelCategoryConfig(_Model):
    documentVersion: str = limits.LABEL_CATEGORY_DOCUMENT_VERSION
    labels: list[LabelCategory]
    categoryGlobalAttributes: list[CategoryAttribute] = Field(default_factory=list)
    frameAttributes: list[CategoryAttribute] = Field(default_factory=list)
    annotationType: AnnotationType = AnnotationType.BOUNDING_BOX
    instructions: Instructions
    auditLabelAttributeName: str | None = None

    def to_json(self) -> str:
        return self.model_dump_json(indent=2, exclude_none=True)

    def limit_violations(self) -> list[str]:
        """Every Ground Truth quota this file breaks (empty when it is acceptable)."""
        out: list[str] = []
        if not 1 <= len(self.labels) <= limits.MAX_LABELS:
            out.append(f"{len(self.labels)} labels (1-{limits.MAX_LABELS} allowed)")
        names = [label.label for label in self.labels]
        if len(set(names)) != len(names):
            out.append("label names repeat")
        if len(self.frameAttributes) > limits.MAX_FRAME_ATTRIBUTES:
            out.append(f"{len(self.frameAttributes)} frame attributes")
        for label in self.labels:
            if not 1 <= len(label.label) <= limits.MAX_LABEL_NAME:
                out.append(f"label {label.label!r} is longer than {limits.MAX_LABEL_NAME}")
            count = len(label.categoryAttributes) + len(self.categoryGlobalAttributes)
            if count > limits.MAX_ATTRIBUTES_PER_LABEL:
                out.append(f"label {label.label!r} has {count} attributes")
        attributes = [
            *self.categoryGlobalAttributes,
            *self.frameAttributes,
            *(a for label in self.labels for a in label.categoryAttributes),
        ]
        # "Attribute names must be unique within a label category file"
        # (sms-label-cat-config-attributes).
        attribute_names = [a.name for a in attributes]
        repeated = sorted({n for n in attribute_names if attribute_names.count(n) > 1})
        if repeated:
            out.append(f"attribute names repeat: {', '.join(repeated)}")
        for attr in attributes:
            if not 1 <= len(attr.name) <= limits.MAX_ATTRIBUTE_NAME:
                out.append(f"attribute name {attr.name!r} is too long")
            if attr.description and len(attr.description) > limits.MAX_ATTRIBUTE_DESCRIPTION:
                out.append(f"attribute {attr.name!r} description is too long")
            if attr.enum is not None:
                if not 1 <= len(attr.enum) <= limits.MAX_ENUM_VALUES:
                    out.append(f"attribute {attr.name!r} has {len(attr.enum)} values")
                for value in attr.enum:
                    if not 1 <= len(value) <= limits.MAX_ENUM_VALUE:
                        out.append(f"attribute {attr.name!r} value {value!r} is too long")
        for attr in self.frameAttributes:
            if not attr.description:
                out.append(f"frame attribute {attr.name!r} needs a description")
        return out


class LabelConfigError(ValueError):
    pass


def label_config(job: JobType, audit_label_attribute: str | None = None) -> LabelCategoryConfig:
    """The label category file of a job type, or of its adjustment job when auditing."""
    adjusting = audit_label_attribute is not None
    edits: Literal["any"] | None = "any" if adjusting else None
    labels = [
        LabelCategory(
            label=label.label,
            editsAllowed=edits,
            categoryAttributes=[
                CategoryAttribute(
                    name=attr.name,
                    description=attr.description,
                    enum=list(attr.values),
                    # Required: LAVA has no "unknown" for most attributes, so a worker
                    # may not submit an object without them.
                    isRequired=True,
                    editsAllowed=edits,
                )
                for attr in label.attributes
            ],
        )
        for label in job.labels
    ]
    verb = "Check and correct" if adjusting else "Label"
    config = LabelCategoryConfig(
        labels=labels,
        annotationType=job.annotation_type,
        instructions=Instructions(
            shortInstruction=job.short_instruction,
            fullInstruction=(
                f"<p>{verb} every frame of the clip. {job.short_instruction}</p>"
                "<p>Boxes hug the visible object; ids stay the same while the object is "
                "in view.</p>"
            ),
        ),
        auditLabelAttributeName=audit_label_attribute,
    )
    problems = config.limit_violations()
    if problems:
        raise LabelConfigError(f"{job.name}: " + "; ".join(problems))
    return config
