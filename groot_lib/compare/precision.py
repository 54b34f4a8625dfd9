"""Precision study: is a low-precision gap between the implementations rounding noise or a real difference?

Per embodiment and low-precision variant, four ``action_pred`` gaps, all from the same
initial noise: the fp32 implementation gap, each side's noise floor (its low-precision
run against its own fp32 run), and the cross-implementation gap at low precision.
The verdict is the rule FlashAttention's own tests use: the cross-implementation gap
must stay within ``k`` x the larger same-implementation noise floor, over the whole
(padded) ``action_pred`` and over the embodiment's valid cells alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from groot_lib.core.variants import DEFAULT_VARIANT

REFERENCE = DEFAULT_VARIANT
DEFAULT_K = 2.0
ORIGINAL, LEROBOT = "original", "LeRobot"


@dataclass(frozen=True)
class PairSpec:
    role: str  # what the gap measures
    a: tuple[str, str]  # (implementation, variant)
    b: tuple[str, str]

    @property
    def label(self) -> str:
        return f"{self.a[0]} {self.a[1]} vs {self.b[0]} {self.b[1]}"


def pair_specs(variant: str) -> list[PairSpec]:
    """The four gaps of the study for one low-precision variant, in display order."""
    return [
        PairSpec("implementation gap (fp32)", (ORIGINAL, REFERENCE), (LEROBOT, REFERENCE)),
        PairSpec("original noise floor", (ORIGINAL, variant), (ORIGINAL, REFERENCE)),
        PairSpec("LeRobot noise floor", (LEROBOT, variant), (LEROBOT, REFERENCE)),
        PairSpec(f"cross-implementation gap ({variant})", (ORIGINAL, variant), (LEROBOT, variant)),
    ]


@dataclass
class PairGap:
    spec: PairSpec
    max: float = math.nan
    mean: float = math.nan
    p99: float = math.nan
    valid_max: float = math.nan  # max over the embodiment's valid horizon x dims (padding excluded)
    delta_hd: np.ndarray | None = None  # max over the batch, (horizon, action dim)
    problem: str = ""  # why no gap could be measured (missing run, shape mismatch, non-finite)

    def as_row(self, tag: str, variant: str) -> dict:
        return {"tag": tag, "variant": variant, "pair": self.spec.label, "role": self.spec.role,
                "max |delta|": self.max, "mean |delta|": self.mean, "p99 |delta|": self.p99,
                "valid max |delta|": self.valid_max, "note": self.problem}


def measure(spec: PairSpec, runs: dict[tuple[str, str], np.ndarray], valid: tuple[int, int] | None = None) -> PairGap:
    """|a - b| statistics; never crops mismatched shapes, never averages away NaN/Inf.

    ``valid`` (horizon, dims) adds the max over the cells the embodiment really uses: padded dims
    are computed too but discarded by the policy, and their noise must not hide a gap in the real ones.
    """
    gap = PairGap(spec)
    missing = [f"{impl} {var}" for impl, var in (spec.a, spec.b) if (impl, var) not in runs]
    if missing:
        gap.problem = f"no run for {', '.join(missing)}"
        return gap
    a = np.asarray(runs[spec.a], dtype=np.float64)
    b = np.asarray(runs[spec.b], dtype=np.float64)
    if a.shape != b.shape:
        gap.problem = f"shape mismatch {a.shape} vs {b.shape} (not cropped)"
        return gap
    delta = np.abs(a - b)
    bad = int((~np.isfinite(delta)).sum())
    if bad:
        gap.problem = f"{bad} non-finite element(s) in the difference"
        gap.max = math.inf
    else:
        gap.max, gap.mean = float(delta.max(initial=0.0)), float(delta.mean()) if delta.size else 0.0
        gap.p99 = float(np.percentile(delta, 99)) if delta.size else 0.0
    gap.delta_hd = delta.max(axis=0) if delta.ndim == 3 else None
    if valid is not None and delta.ndim == 3 and (valid[0] > delta.shape[1] or valid[1] > delta.shape[2]):
        gap.problem = (f"action_pred {a.shape} is smaller than the embodiment's valid region "
                       f"(horizon {valid[0]} x dims {valid[1]})")
        gap.delta_hd = None  # nothing honest to draw: the verdict fails on the problem instead
    elif valid is not None and delta.ndim == 3 and not bad:
        gap.valid_max = float(delta[:, : valid[0], : valid[1]].max(initial=0.0))
    return gap


@dataclass
class PrecisionVerdict:
    tag: str
    variant: str
    k: float
    gaps: list[PairGap]
    valid_horizon: int | None = None
    valid_dim: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def cross(self) -> PairGap:
        return self.gaps[3]

    @property
    def floor(self) -> float:
        """The larger same-implementation noise floor (max |delta| against its own fp32 run)."""
        return max(self.gaps[1].max, self.gaps[2].max)

    @property
    def bound(self) -> float:
        return self.k * self.floor

    @property
    def valid_floor(self) -> float:
        return max(self.gaps[1].valid_max, self.gaps[2].valid_max)

    def _holds(self, cross: float, floor: float) -> bool:
        return math.isnan(cross) or cross <= self.k * floor

    @property
    def problem(self) -> str:
        return "; ".join(f"{g.spec.role}: {g.problem}" for g in self.gaps[1:] if g.problem)

    @property
    def passed(self) -> bool:
        if self.problem:
            return False
        return self._holds(self.cross.max, self.floor) and self._holds(self.cross.valid_max, self.valid_floor)

    @property
    def reason(self) -> str:
        if self.problem:
            return self.problem
        def part(where: str, cross: float, floor: float) -> str:
            ratio = cross / floor if floor > 0 else (0.0 if cross == 0 else math.inf)
            word = "within" if self._holds(cross, floor) else "EXCEEDS"
            return (f"{where}cross gap {cross:.3g} {word} {self.k:g} x noise floor {floor:.3g} "
                    f"(= {self.k * floor:.3g}; ratio {ratio:.2f})")

        text = part("", self.cross.max, self.floor)
        if not math.isnan(self.cross.valid_max):
            text += "; " + part("valid cells: ", self.cross.valid_max, self.valid_floor)
        return text

    def as_row(self) -> dict:
        return {"tag": self.tag, "variant": self.variant, "cross gap": self.cross.max,
                "original floor": self.gaps[1].max, "LeRobot floor": self.gaps[2].max,
                "fp32 implementation gap": self.gaps[0].max, "k": self.k, "bound": self.bound,
                "cross gap (valid cells)": self.cross.valid_max, "floor (valid cells)": self.valid_floor,
                "verdict": "PASS" if self.passed else "FAIL", "reason": self.reason}

    def heatmap_panels(self) -> list[dict]:
        """parity_heatmap kwargs for the four gaps (missing ones left out); plot on one shared scale."""
        from groot_lib.compare.plots import focus_valid

        panels = []
        for g in self.gaps:
            if g.delta_hd is None:
                continue
            shown = focus_valid(g.delta_hd, self.valid_horizon, self.valid_dim)
            note = f"\n{shown['note']}" if shown["note"] else ""
            panels.append({"delta_hd": shown["delta_hd"], "title": f"{g.spec.role}\n{g.spec.label}: max {g.max:.3g}{note}"})
        return panels


def study(tag: str, variant: str, runs: dict[tuple[str, str], np.ndarray], *, k: float = DEFAULT_K,
          valid_horizon: int | None = None, valid_dim: int | None = None) -> PrecisionVerdict:
    """All four gaps + the k x noise-floor verdict for one tag and one low-precision variant."""
    if variant == REFERENCE:
        raise ValueError(f"the precision study compares a low-precision variant against {REFERENCE}, not itself")
    k = float(k)
    if not (k > 0 and math.isfinite(k)):
        raise ValueError(f"k must be a positive finite number, got {k}")
    valid = (valid_horizon, valid_dim) if valid_horizon is not None and valid_dim is not None else None
    gaps = [measure(spec, runs, valid) for spec in pair_specs(variant)]
    return PrecisionVerdict(tag, variant, k, gaps, valid_horizon, valid_dim)

