"""`lava gt`: read Ground Truth's output the way the pipeline does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from shared.groundtruth.annotations import parse_seq_label
from shared.groundtruth.convert import from_seq_label
from shared.groundtruth.errors import GtFormatError
from shared.groundtruth.messages import OutputMessage, parse_output_message


@click.group()
def gt() -> None:
    """Ground Truth formats."""


def describe(message: OutputMessage, labels: str | None) -> dict[str, Any]:
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
    cmap = message.class_map
    if not cmap:
        raise GtFormatError(f"{message.label_attribute}-metadata.class-map", "missing or empty")
    frames, problems = from_seq_label(parse_seq_label(labels), cmap)
    out["frames"] = [
        {
            "frame_no": frame.frame_no,
            "objects": [obj.model_dump(mode="json") for obj in frame.objects],
        }
        for frame in frames
    ]
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
def parse(message_file: str, labels_file: str | None, label_attribute: str | None) -> None:
    """Parse one output message (SNS envelope or bare body) and print it as LAVA JSON."""
    try:
        message = parse_output_message(Path(message_file).read_text(), label_attribute)
        labels = Path(labels_file).read_text() if labels_file else None
        click.echo(json.dumps(describe(message, labels), indent=2))
    except GtFormatError as exc:
        raise click.ClickException(f"unparseable: {exc}") from None
