"""`lava gt`: read Ground Truth's output the way the pipeline does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from shared.groundtruth.annotations import parse_seq_label
from shared.groundtruth.convert import AttributeStats, class_map, from_seq_label
from shared.groundtruth.errors import GtFormatError
from shared.groundtruth.job_types import JOB_TYPES, job_type
from shared.groundtruth.messages import OutputMessage, parse_output_message
from shared.taxonomy.validation import missing_attributes


@click.group()
def gt() -> None:
    """Ground Truth formats."""


def describe(
    message: OutputMessage, labels: str | None, type_name: str | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "status": message.status.value,
        "job_name": message.job_name,
        "label_attribute": message.label_attribute,
        "label_uri": message.label_uri,
        "dedup_key_name": message.dedup_key.name if message.dedup_key else None,
        "dedup_key": message.dedup_key.id if message.dedup_key else None,
        "adjustment_status": message.adjustment_status,
        "failure_reason": message.failure_reason,
        "frames": [],
    }
    if labels is None:
        return out
    # Only the classes present are listed; none at all for a sequence without objects
    # (sms-data-output). The job type, when the output names it, knows every class id.
    cmap = dict(class_map(job_type(type_name))) if type_name else {}
    cmap.update(message.class_map)
    stats = AttributeStats()
    frames, problems = from_seq_label(parse_seq_label(labels), cmap, stats)
    for frame in frames:
        for index, obj in enumerate(frame.objects):
            where = {
                "frame_no": frame.frame_no,
                "object_index": index,
                "category": obj.category,
                "track_id": obj.track_id,
            }
            problems.extend(missing_attributes(obj, where))
    out["frames"] = [
        {
            "frame_no": frame.frame_no,
            "frame": frame.frame,
            "objects": [obj.model_dump(mode="json") for obj in frame.objects],
        }
        for frame in frames
    ]
    out["attribute_gaps"] = {"carried": stats.carried, "missing": stats.missing}
    out["problems"] = [p.to_dict() for p in problems]
    return out


@gt.command("parse")
@click.argument("message_file", metavar="FILE", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--labels",
    "labels_file",
    type=click.Path(exists=True, dir_okay=False),
    help="The per-frame annotation file (SeqLabel.json) the message points to.",
)
@click.option("--label-attribute", default=None, help="Which label attribute to read.")
@click.option(
    "--job-type",
    "type_name",
    type=click.Choice(sorted(JOB_TYPES)),
    default=None,
    help="The job's type: class ids missing from the output's class map are read from it.",
)
def parse(
    message_file: str, labels_file: str | None, label_attribute: str | None, type_name: str | None
) -> None:
    """Parse the output message in FILE (SNS envelope or bare body) and print it as LAVA
    JSON."""
    try:
        message = parse_output_message(Path(message_file).read_text(), label_attribute)
        labels = Path(labels_file).read_text() if labels_file else None
        click.echo(json.dumps(describe(message, labels, type_name), indent=2))
    except GtFormatError as exc:
        raise click.ClickException(f"unparseable: {exc}") from None
