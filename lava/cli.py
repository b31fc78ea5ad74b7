"""`lava`: the operator's command line.

Each command group lives in its own module under ``lava/commands``; this module only assembles
them. Commands read the same ``LAVA_*`` settings as the services.
"""

from __future__ import annotations

import click

from lava.commands import config, demo, events, gt, stack, taxonomy


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="lava-pipeline")
def cli() -> None:
    """LAVA labeling pipeline: operate the local stack, the jobs, tasks and the dataset."""


cli.add_command(config.config)
cli.add_command(demo.demo)
cli.add_command(events.events)
cli.add_command(stack.stack)
cli.add_command(taxonomy.taxonomy)
cli.add_command(gt.gt)


def main() -> None:
    cli()
