"""Loading an implementation by name (``"package.module:attribute"``), when it is first needed.

Optional parts of a service (the Label Studio backend and the listener's Label Studio side) are
named, not imported: a service then loads only the code its configuration uses, and its static
import closure - what tests/test_architecture.py checks and a pipeline image must hold - leaves
them out. A test imports every name registered this way, so a renamed target fails there.
"""

from __future__ import annotations

import importlib
from typing import Any


def load(target: str) -> Any:
    """The attribute ``target`` names (``"module:attribute"``), importing its module now."""
    module, _, attribute = target.partition(":")
    if not attribute:
        raise ValueError(f"{target!r} is not 'module:attribute'")
    return getattr(importlib.import_module(module), attribute)
