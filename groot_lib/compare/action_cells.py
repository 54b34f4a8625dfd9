"""Naming the cells of an action comparison: (batch, step, group[index]) from the embodiment's layout, the valid
region first. Its own module so the training comparison can use it without pulling in the report's plots."""

from __future__ import annotations

import numpy as np

from groot_lib.compare.comparison import Comparison, violation_mask
from groot_lib.core import checkpoint as ckpt


def name_action_cells(comparison: Comparison, layout: ckpt.EmbodimentLayout, actual, expected) -> None:
    """Worst elements inside the embodiment's valid region first, each named (batch, step, group[index]);
    padding (computed, then discarded by the policy) reported apart in one note."""
    a, e = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    labels = layout.action_labels(a.shape[-1])
    comparison.name_index = lambda idx: f"batch {idx[0]}, step {idx[1]}, {labels[idx[2]]}"
    comparison.worst_scope = " inside the valid region"
    with np.errstate(invalid="ignore"):
        delta = np.abs(a - e)
    rank = np.where(np.isnan(delta), np.inf, delta)
    inside = layout.valid_mask(a.shape)
    top = np.argsort(-np.where(inside, rank, -1.0), axis=None, kind="stable")[:5]
    comparison.worst = [(idx, float(a[idx]), float(e[idx]), float(delta[idx]))
                        for idx in (tuple(int(i) for i in np.unravel_index(t, a.shape)) for t in top) if inside[idx]]
    padding = rank[~inside]
    if padding.size and padding.max() > 0:
        violating = int(violation_mask(a, e, comparison.atol, comparison.rtol)[~inside].sum())
        comparison.notes.append(f"padding outside the valid {layout.action_horizon} steps x {layout.action_dim} dims: "
                                f"max |delta| {float(padding.max()):.3g}, {violating} of {padding.size} cells outside "
                                "tolerance (the policy discards these)")
