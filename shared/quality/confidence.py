"""How sure a proportion is: the Wilson score interval (docs/quality.md).

A rate from a handful of gold objects is mostly noise; the interval says how much. Wilson's
interval stays inside [0, 1] and is sensible at n = 5, where the normal approximation is not.
"""

from __future__ import annotations

import math

Z95 = 1.959963984540054  # the standard normal quantile of 0.975


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The (low, high) 95 % interval of ``successes / n``; None when ``n`` is 0."""
    if n <= 0:
        return None
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)
