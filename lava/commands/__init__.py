"""Command groups of the `lava` CLI (each imported only when used)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import click

if TYPE_CHECKING:
    from shared.aws import AwsClients
    from shared.settings import Settings

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., object])


def settings_and_logging(settings: Settings | None = None) -> Settings:
    """The environment's settings (or ``settings``), with CLI logs going to stderr."""
    from shared.logging import configure_logging
    from shared.settings import load_settings

    settings = settings or load_settings()
    configure_logging(settings, "cli")
    return settings


def run_with_aws(settings: Settings, work: Callable[[AwsClients], Awaitable[T]]) -> T:
    """Run ``work`` with AWS clients for ``settings``, closed afterwards."""
    from shared.aws import AwsClients

    async def main() -> T:
        async with AwsClients(settings) as aws:
            return await work(aws)

    import asyncio  # here: `lava frames extract` starts faster without it

    return asyncio.run(main())


def frame_size(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, int]:
    """A ``--size WIDTHxHEIGHT`` option's value; H.264 in yuv420p needs even sides."""
    match = re.fullmatch(r"(\d+)x(\d+)", value)
    if not match:
        raise click.BadParameter("expected WIDTHxHEIGHT, e.g. 1920x1080")
    width, height = int(match.group(1)), int(match.group(2))
    if width % 2 or height % 2 or width < 64 or height < 64:
        raise click.BadParameter("width and height must be even and at least 64")
    return width, height


backend_option = click.option(
    "--backend",
    type=click.Choice(["emulator", "labelstudio"]),
    default="emulator",
    show_default=True,
    help="Labeling backend: the Ground Truth emulator, or a real Label Studio server (its own "
    "venv: scripts/labelstudio.sh) with a simulated annotator working in it.",
)


def workforce_options(worker_rate: float, expire_share: float) -> Callable[[F], F]:
    """``--worker-rate`` and ``--expire-share``: the simulated workforce of ``lava run`` and
    ``lava demo`` (each with its own defaults)."""

    def add(command: F) -> F:
        command = click.option(
            "--expire-share",
            type=click.FloatRange(0, 0.9),
            default=expire_share,
            show_default=True,
            help="Share of tasks nobody takes (they expire and are re-keyed).",
        )(command)
        return click.option(
            "--worker-rate",
            type=float,
            default=worker_rate,
            show_default=True,
            help="Simulated workforce: tasks started per second per job.",
        )(command)

    return add
