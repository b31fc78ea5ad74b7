"""Command groups of the `lava` CLI (each imported only when used)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.settings import Settings


def settings_and_logging() -> Settings:
    """The environment's settings, with CLI logs going to stderr."""
    from shared.logging import configure_logging
    from shared.settings import load_settings

    settings = load_settings()
    configure_logging(settings, "cli")
    return settings
