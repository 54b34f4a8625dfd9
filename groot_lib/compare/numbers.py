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


VERDICT_COLOURS = {"FAIL": "background:#fdd", "PASS": "background:#dfd", "SUSPECT": "background:#fe9"}


def verdict_styled(rows: list[dict], *, columns=("verdict",), numbers=None):
    """A pandas table of ``rows`` with its verdict columns coloured and its numbers in ``fmt``: the notebooks'
    one look for every verdict table."""
    import pandas as pd

    frame = pd.DataFrame(rows)
    present = [c for c in columns if c in frame.columns]
    return frame.style.apply(lambda col: [VERDICT_COLOURS.get(v, "") for v in col], subset=present).format(
        fmt, subset=numbers)
