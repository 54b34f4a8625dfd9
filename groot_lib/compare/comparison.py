"""Tensor comparison that explains itself: counts, error stats, worst elements, min atol.

Shapes must match exactly (never cropped or broadcast) and NaN/Inf always fail, so a
PASS can only mean "same shape, finite, and within tolerance everywhere".
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np

TOP_K = 5
COLUMNS = ["tag", "check", "tensor", "shape", "max|delta|", "mean|delta|", "mismatched",
           "mismatched %", "min atol to pass", "verdict", "x expected gap", "flag", "reason"]
_NAN = float("nan")


@dataclass
class Comparison:
    """Outcome of comparing one tensor (actual) against its reference (expected)."""

    name: str
    check: str
    tag: str
    passed: bool
    reason: str
    shape_actual: tuple
    shape_expected: tuple
    dtype_actual: str
    dtype_expected: str
    max_abs: float = _NAN
    mean_abs: float = _NAN
    p99_abs: float = _NAN
    n_mismatch: int = 0
    n_total: int = 0
    atol: float = 0.0
    rtol: float = 0.0
    min_atol_to_pass: float = _NAN
    worst: list[tuple[tuple, Any, Any, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    noise: Any = None  # expected_gap.NoiseAssessment where a rounding gap is known for this row
    name_index: Any = None  # index tuple -> words ("batch 1, step 3, eef[5]"); flat tuples when None
    worst_scope: str = ""  # where ``worst`` was taken from, e.g. " inside the valid region"
    # words for a failing input (compare/inputs.py): state elements named, tokens aligned, views compared
    details: list[dict] = field(default_factory=list)

    @property
    def pct_mismatch(self) -> float:
        return 100.0 * self.n_mismatch / self.n_total if self.n_total else 0.0

    @property
    def comparable(self) -> bool:
        """False when shapes differ: then no element statistics exist (shown as n/a, never 0)."""
        return self.shape_actual == self.shape_expected

    @property
    def suspect(self) -> bool:
        """Within tolerance, but far above what rounding explains for this device pair."""
        return bool(self.passed and self.noise is not None and self.noise.suspect)

    @property
    def status(self) -> str:
        return "FAIL" if not self.passed else ("SUSPECT" if self.suspect else "PASS")

    def format(self) -> str:
        head = " ".join(s for s in (self.name, f"[{self.tag}]" if self.tag else "", self.check) if s)
        lines = [f"{head}: {self.status}" + ("" if self.passed else f" - {self.reason}"),
                 f"  shape: actual {self.shape_actual} vs expected {self.shape_expected}; "
                 f"dtype: {self.dtype_actual} vs {self.dtype_expected}"]
        if self.shape_actual == self.shape_expected:
            lines += [f"  mismatched elements: {self.n_mismatch} / {self.n_total} ({self.pct_mismatch:.4g}%)"
                      f" at atol={self.atol:g}, rtol={self.rtol:g}",
                      f"  max |delta| = {self.max_abs:.4g}, mean |delta| = {self.mean_abs:.4g}, "
                      f"p99 |delta| = {self.p99_abs:.4g}",
                      f"  minimum atol that would pass (rtol={self.rtol:g}): {self.min_atol_to_pass:.4g}"]
        if self.noise is not None:
            lines.append(f"  against rounding: {self.noise.describe()}")
        shown = [w for w in self.worst if not w[3] == 0.0]  # NaN deltas are shown
        if shown and (not self.passed or self.suspect):
            lines.append(f"  worst elements{self.worst_scope} (top {len(shown)} by |delta|):")
            lines.append(f"    {'where':<28} {'actual':>14} {'expected':>14} {'|delta|':>12}")
            for idx, a, e, d in shown:
                where = self.name_index(idx) if self.name_index else str(idx)
                lines.append(f"    {where:<28} {_fmt(a):>14} {_fmt(e):>14} {_fmt(d):>12}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()

    def as_row(self) -> dict:
        """One table / verdicts.json row; statistics that do not exist (shape mismatch) are None, never 0."""
        stats = [self.max_abs, self.mean_abs, int(self.n_mismatch), self.pct_mismatch, self.min_atol_to_pass]
        if not self.comparable:
            stats = [None] * len(stats)
        return dict(zip(COLUMNS, [
            self.tag, self.check, self.name, f"{self.shape_actual} vs {self.shape_expected}", *stats,
            "PASS" if self.passed else "FAIL", None if self.noise is None else round(self.noise.ratio, 3),
            "SUSPECT" if self.suspect else "", "" if self.passed else self.reason]))


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _scalar(v: np.generic) -> Any:
    return v.item() if hasattr(v, "item") else v


def _base(actual, expected, name, tag, check, atol=0.0, rtol=0.0) -> tuple[np.ndarray, np.ndarray, Comparison]:
    a, e = np.asarray(actual), np.asarray(expected)
    c = Comparison(name=name, check=check, tag=tag, passed=True, reason="",
                   shape_actual=tuple(a.shape), shape_expected=tuple(e.shape),
                   dtype_actual=str(a.dtype), dtype_expected=str(e.dtype), atol=float(atol), rtol=float(rtol))
    if a.shape != e.shape:
        c.passed, c.reason = False, f"shape mismatch: actual {c.shape_actual} vs expected {c.shape_expected}"
    else:
        c.n_total = int(a.size)
    return a, e, c


def _stats(c: Comparison, diff: np.ndarray, rank: np.ndarray, mask: np.ndarray, a, e, excess: np.ndarray) -> None:
    """Fill stats from |delta| (float64), a ranking key, the violation mask and per-element excess."""
    c.n_mismatch = int(mask.sum())
    finite = diff[np.isfinite(diff)]
    if finite.size < diff.size:
        c.notes.append(f"max/mean/p99 |delta| computed over the {finite.size} of {diff.size} finite elements")
    if finite.size:
        c.max_abs, c.mean_abs = float(finite.max()), float(finite.mean())
        c.p99_abs = float(np.percentile(finite, 99))
        c.min_atol_to_pass = float(max(0.0, np.nanmax(excess))) if np.isfinite(excess).all() else math.inf
    elif diff.size:
        c.min_atol_to_pass = math.inf
    flat = rank.ravel()
    k = min(TOP_K, flat.size)
    if k:
        top = np.argpartition(-flat, k - 1)[:k]
        top = top[np.argsort(-flat[top], kind="stable")]
        for i in top:
            idx = tuple(int(j) for j in np.unravel_index(i, rank.shape))
            c.worst.append((idx, _scalar(a[idx]), _scalar(e[idx]), float(diff[idx])))


def violation_mask(actual, expected, atol: float, rtol: float) -> np.ndarray:
    """True where ``|a - e| > atol + rtol*|e|`` or either side is NaN/Inf (e is the reference)."""
    a, e = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    if a.shape != e.shape:
        raise ValueError(f"violation_mask: shape mismatch, actual {a.shape} vs expected {e.shape}")
    ok = np.isfinite(a) & np.isfinite(e)
    with np.errstate(invalid="ignore", over="ignore"):
        ok &= np.abs(a - e) <= atol + rtol * np.abs(e)
    return ~ok


def compare_close(actual, expected, *, name: str, atol: float, rtol: float, tag: str = "",
                  check: str = "") -> Comparison:
    """Float comparison with numpy.isclose semantics, computed in float64."""
    return _close(actual, expected, name=name, atol=atol, rtol=rtol, tag=tag, check=check)[0]


def _close(actual, expected, *, name: str, atol: float, rtol: float, tag: str,
           check: str) -> tuple[Comparison, np.ndarray | None]:
    """``compare_close`` and its float64 |delta| (None when the shapes differ), which compare_close_parts bins."""
    a, e, c = _base(actual, expected, name, tag, check, atol, rtol)
    if not c.passed:
        return c, None
    if a.dtype != e.dtype:
        c.notes.append(f"dtype differs: {a.dtype} vs {e.dtype}")
    a64, e64 = a.astype(np.float64), e.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(a64 - e64)
        excess = diff - rtol * np.abs(e64)
    mask = violation_mask(a64, e64, atol, rtol)
    rank = np.where(np.isfinite(diff), diff, np.inf)
    _stats(c, diff, rank, mask, a, e, excess)
    bad = {side: (int(np.isnan(x).sum()), int(np.isinf(x).sum())) for side, x in (("actual", a64), ("expected", e64))}
    if any(sum(v) for v in bad.values()):
        c.passed = False
        c.reason = (f"NaN/Inf in {name}: actual has {bad['actual'][0]} NaN, {bad['actual'][1]} Inf; "
                    f"expected has {bad['expected'][0]} NaN, {bad['expected'][1]} Inf")
    elif c.n_mismatch:
        c.passed, c.reason = False, "values differ"
    return c, diff


P99_EDGES = np.concatenate([[0.0], np.logspace(-20, 10, 3001)])  # |delta| bins for a p99 merged over parts


def compare_close_parts(parts: Iterable[tuple[np.ndarray, np.ndarray]], *, name: str, atol: float, rtol: float,
                        tag: str = "", check: str = "") -> Comparison:
    """``compare_close`` of the concatenation of ``parts`` ((actual, expected) pairs of equal shape), one part at a
    time: memory stays that of the largest part (a real checkpoint's 1.6e9 gradient elements in float64 at once
    would need ~90 GB). Worst elements are indexed by their flat position in the concatenation; p99 is read from a
    log-binned histogram (2.3% resolution); a part whose shapes differ makes the whole comparison a shape FAIL."""
    c = Comparison(name=name, check=check, tag=tag, passed=True, reason="", shape_actual=(0,), shape_expected=(0,),
                   dtype_actual="", dtype_expected="", atol=float(atol), rtol=float(rtol))
    counts, total_abs, finite, offset, worst = np.zeros(len(P99_EDGES), np.int64), 0.0, 0, 0, []
    for i, (actual, expected) in enumerate(parts):
        part, diff = _close(np.asarray(actual).ravel(), np.asarray(expected).ravel(), name=f"{name} part {i}",
                            atol=atol, rtol=rtol, tag=tag, check=check)
        if not part.comparable:  # no statistics over a part that cannot be compared: a shape FAIL, stats n/a
            return Comparison(name=name, check=check, tag=tag, passed=False, reason=f"part {i}: {part.reason}",
                              shape_actual=part.shape_actual, shape_expected=part.shape_expected,
                              dtype_actual=part.dtype_actual, dtype_expected=part.dtype_expected, atol=float(atol),
                              rtol=float(rtol))
        if not c.dtype_actual:
            c.dtype_actual, c.dtype_expected = part.dtype_actual, part.dtype_expected
        good = diff[np.isfinite(diff)]
        counts += np.bincount(np.searchsorted(P99_EDGES, good, side="left"), minlength=len(P99_EDGES))[:len(P99_EDGES)]
        total_abs, finite = total_abs + float(good.sum()), finite + good.size
        c.n_total += part.n_total
        c.n_mismatch += part.n_mismatch
        c.max_abs = max(c.max_abs, part.max_abs) if not math.isnan(c.max_abs) else part.max_abs
        c.min_atol_to_pass = (max(c.min_atol_to_pass, part.min_atol_to_pass) if not math.isnan(c.min_atol_to_pass)
                              else part.min_atol_to_pass)
        worst += [((offset + idx[0],), x, y, d) for idx, x, y, d in part.worst]
        c.notes += [n.replace(f"{name} part {i}", name) for n in part.notes if n not in c.notes]
        if not part.passed and c.passed:
            c.passed, c.reason = False, part.reason.replace(f"{name} part {i}", f"{name} (part {i})")
        offset += part.n_total
    c.shape_actual = c.shape_expected = (offset,)
    if finite:
        c.mean_abs = total_abs / finite
        c.p99_abs = float(P99_EDGES[min(int(np.searchsorted(np.cumsum(counts), 0.99 * finite)), len(P99_EDGES) - 1)])
    c.worst = sorted(worst, key=lambda w: -w[3] if math.isfinite(w[3]) else -math.inf)[:TOP_K]
    return c


def compare_exact(actual, expected, *, name: str, tag: str = "", check: str = "") -> Comparison:
    """Exact equality (token ids, masks, grid sizes); a dtype-only difference is a note, not a failure."""
    a, e, c = _base(actual, expected, name, tag, check)
    if not c.passed:
        return c
    mask = np.asarray(a != e)
    if mask.shape != a.shape:  # incomparable kinds (e.g. str vs int): every element differs
        mask = np.ones(a.shape, dtype=bool)
    if a.dtype != e.dtype:
        c.notes.append(f"dtype differs{'' if mask.any() else ' only'}: {a.dtype} vs {e.dtype}")
    numeric = a.dtype.kind in "biufc" and e.dtype.kind in "biufc"
    if numeric:
        with np.errstate(invalid="ignore", over="ignore"):
            diff = np.abs(a.astype(np.float64) - e.astype(np.float64))
    else:
        diff = mask.astype(np.float64)
    rank = np.where(mask, np.where(np.isnan(diff), np.inf, diff), -1.0)
    _stats(c, diff, rank, mask, a, e, diff)
    if c.n_mismatch:
        c.passed, c.reason = False, f"values differ at {c.n_mismatch} of {c.n_total} positions"
        c.worst = [w for w in c.worst if w[1] != w[2]]
    else:
        c.worst = []
    return c


def cell_max_abs_delta(actual, expected) -> np.ndarray:
    """Max over the batch of |a - e| for (B, H, D) arrays -> (H, D), the heatmap input."""
    a, e = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    if a.shape != e.shape or a.ndim != 3:
        raise ValueError(f"cell_max_abs_delta needs two (B, H, D) arrays of equal shape, "
                         f"got actual {a.shape} vs expected {e.shape}")
    with np.errstate(invalid="ignore", over="ignore"):
        return np.abs(a - e).max(axis=0)


def verdict_table(comparisons: Iterable[Comparison]):
    """One row per comparison, columns as in COLUMNS (pandas imported lazily)."""
    import pandas as pd

    return pd.DataFrame([c.as_row() for c in comparisons], columns=COLUMNS)


def all_passed(comparisons: Iterable[Comparison]) -> bool:
    return all(c.passed for c in comparisons)
