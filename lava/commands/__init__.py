"""Command groups of the `lava` CLI (each imported only when used)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from shared.aws import AwsClients
    from shared.settings import Settings

T = TypeVar("T")


def settings_and_logging() -> Settings:
    """The environment's settings, with CLI logs going to stderr."""
    from shared.logging import configure_logging
    from shared.settings import load_settings

    settings = load_settings()
    configure_logging(settings, "cli")
    return settings


def run_with_aws(settings: Settings, work: Callable[[AwsClients], Awaitable[T]]) -> T:
    """Run ``work`` with AWS clients for ``settings``, closed afterwards."""
    from shared.aws import AwsClients

    async def main() -> T:
        async with AwsClients(settings) as aws:
            return await work(aws)

    return asyncio.run(main())
