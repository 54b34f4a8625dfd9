"""One number format for every table, page and terminal line: 3 significant digits, scientific where
needed, "0" for an exact zero and "n/a" for a statistic that does not exist (a shape mismatch)."""

from __future__ import annotations

import math


def fmt(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        return "0" if value == 0 else f"{value:.3g}"
    return str(value)
