"""The control service of a `lava run`: who may call it, and how another shell reaches it.

A run makes an operator and a viewer token and prints them once; the env file (0600) keeps
them for other shells. A shell that already holds a run's tokens (it sourced an env file, or
set ``LAVA_CONTROL__TOKENS`` itself) keeps them: the same tokens across runs, nothing printed.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from services.control.auth import Role, new_token

TOKENS = "LAVA_CONTROL__TOKENS"  # the service's setting: hashed entries
URL = "LAVA_CONTROL_URL"  # for a shell: where the API and dashboard are
OPERATOR_TOKEN = "LAVA_CONTROL_TOKEN"  # for a shell: the bearer tokens themselves
VIEWER_TOKEN = "LAVA_CONTROL_VIEWER_TOKEN"


@dataclass(frozen=True)
class ControlAccess:
    entries: str  # LAVA_CONTROL__TOKENS: name:role:sha256, comma-separated
    operator: str | None  # None: configured by hash only (its holder has it)
    viewer: str | None
    created: bool  # made by this run (then printed once)

    def env(self, url: str) -> dict[str, str]:
        values = {TOKENS: self.entries, URL: url}
        if self.operator:
            values[OPERATOR_TOKEN] = self.operator
        if self.viewer:
            values[VIEWER_TOKEN] = self.viewer
        return values


def read_env_file(path: Path) -> dict[str, str]:
    """The ``export K=V`` lines of an env file `lava run` wrote ({} when there is none)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    found: dict[str, str] = {}
    for line in text.splitlines():
        words = shlex.split(line, comments=True)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            key, value = words[1].split("=", 1)
            found[key] = value
    return found


def control_access(environ: Mapping[str, str], env_file: Path) -> ControlAccess:
    """The shell's tokens, else those of an env file a run left behind, else two new ones."""
    for source in (environ, read_env_file(env_file)):
        if source.get(TOKENS):
            return ControlAccess(
                source[TOKENS], source.get(OPERATOR_TOKEN), source.get(VIEWER_TOKEN), False
            )
    operator, operator_entry = new_token("run-operator", Role.OPERATOR)
    viewer, viewer_entry = new_token("run-viewer", Role.VIEWER)
    return ControlAccess(f"{operator_entry},{viewer_entry}", operator, viewer, True)
