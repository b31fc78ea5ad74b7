"""`lava taxonomy`: the LAVA taxonomy as Ground Truth sees it, and the records' schema."""

from __future__ import annotations

import json

import click

from shared.groundtruth.job_types import JOB_TYPES, job_type
from shared.groundtruth.label_config import label_config
from shared.taxonomy.records import ClipLabels


@click.group()
def taxonomy() -> None:
    """The LAVA taxonomy: label category files and the labels' JSON Schema."""


@taxonomy.command("label-config")
@click.argument("job_type_name", metavar="TYPE", type=click.Choice(sorted(JOB_TYPES)))
@click.option(
    "--adjustment-of",
    "audited",
    metavar="ATTRIBUTE",
    default=None,
    help="Label attribute of the job to adjust: prints the adjustment job's file.",
)
def label_config_cmd(job_type_name: str, audited: str | None) -> None:
    """Print the Ground Truth label category file of a job TYPE."""
    click.echo(label_config(job_type(job_type_name), audited).to_json())


@taxonomy.command("schema")
def schema() -> None:
    """Print the JSON Schema of a clip's LAVA records (labels/<clip>.json)."""
    click.echo(json.dumps(ClipLabels.model_json_schema(), indent=2))
