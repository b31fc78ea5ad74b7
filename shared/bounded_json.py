"""JSON from outside the process, parsed with bounds: size first, then a plain tree.

Python's ``json`` accepts ``NaN``/``Infinity``, turns ``1e400`` into ``inf`` and raises
``RecursionError`` on deep nesting; downstream that becomes ``OverflowError`` (``int(inf)``) or a
crash that is retried and dead-lettered with no visible failure. Everything read from the bus,
from Ground Truth outputs and from label files goes through :func:`loads` instead, which refuses
with :class:`UnsafeJson` (a ``ValueError``, so callers' "not JSON" paths apply):

- more than ``max_bytes`` (checked before parsing);
- non-finite numbers (``NaN``, ``Infinity``, overflowing literals such as ``1e400``);
- nesting deeper than ``max_depth``, strings longer than ``max_string``, containers with more
  than ``max_items`` entries.
"""

from __future__ import annotations

import json
import math
from typing import Any

DEFAULT_MAX_DEPTH = 32
DEFAULT_MAX_STRING = 1 << 20
DEFAULT_MAX_ITEMS = 1 << 20


class UnsafeJson(ValueError):
    """JSON refused before or while parsing; the message says why."""


def _constant(name: str) -> Any:
    raise UnsafeJson(f"non-finite number {name} refused")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise UnsafeJson(f"number {text[:40]} is not finite")
    return value


def loads(
    data: str | bytes,
    *,
    max_bytes: int,
    what: str = "JSON",
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_string: int = DEFAULT_MAX_STRING,
    max_items: int = DEFAULT_MAX_ITEMS,
) -> Any:
    size = len(data.encode() if isinstance(data, str) else data)
    if size > max_bytes:
        raise UnsafeJson(f"{what} of {size} bytes is larger than the {max_bytes} allowed")
    try:
        value = json.loads(data, parse_constant=_constant, parse_float=_finite)
    except RecursionError:
        raise UnsafeJson(f"{what} nests deeper than {max_depth} levels") from None
    except UnsafeJson as exc:
        raise UnsafeJson(f"{what}: {exc}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise UnsafeJson(f"not JSON: {exc}") from None
    check(value, what=what, max_depth=max_depth, max_string=max_string, max_items=max_items)
    return value


def check(
    value: Any,
    *,
    what: str = "JSON",
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_string: int = DEFAULT_MAX_STRING,
    max_items: int = DEFAULT_MAX_ITEMS,
) -> None:
    """Walk an already-parsed tree (iteratively: a deep one must not blow the stack)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            if depth > max_depth:
                raise UnsafeJson(f"{what} nests deeper than {max_depth} levels")
            if len(node) > max_items:
                raise UnsafeJson(f"{what} has a container of {len(node)} entries")
            children = node.values() if isinstance(node, dict) else node
            if isinstance(node, dict):
                for key in node:
                    if len(key) > max_string:
                        raise UnsafeJson(f"{what} has a key of {len(key)} characters")
            stack.extend((child, depth + 1) for child in children)
        elif isinstance(node, str):
            if len(node) > max_string:
                raise UnsafeJson(f"{what} has a string of {len(node)} characters")
        elif isinstance(node, float) and not math.isfinite(node):
            raise UnsafeJson(f"{what} has a non-finite number")
