"""The input sweep's verdicts (core/sweep_cases.py): every case's checks, then per embodiment and check the distribution
of max |delta| across the cases and the worst case with the inputs that produced it."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from groot_lib.compare.stage_diff import StageReport
from groot_lib.compare.comparison import Comparison


@dataclass
class SweepCaseResult:
    """One case's checks under the fixed observation's rules (tolerances, SUSPECT, stage localisation)."""

    tag: str
    case: str
    inputs: dict  # core.sweep.SweepCase.describe(): seed, batch, images, resolution, states, prompts
    comparisons: list[Comparison] = field(default_factory=list)
    stages: StageReport | None = None  # where a failing or SUSPECT case's models start to differ
    stages_missing: str = ""  # why there is no stage comparison

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.comparisons)

    @property
    def suspect(self) -> bool:
        return self.passed and any(c.suspect for c in self.comparisons)


@dataclass
class SweepSummary:
    """One embodiment and check (e.g. model parity / action_pred) across the sweep."""

    tag: str
    check: str
    tensor: str
    n_cases: int
    n_failed: int
    n_suspect: int  # cases within tolerance but far above rounding (compare/expected_gap.py), as for the fixed one
    max_abs: list[float]  # per case (NaN: shapes differ or no statistics)
    worst_case: str
    worst_inputs: dict
    worst_reason: str

    @property
    def passed(self) -> bool:
        return self.n_failed == 0

    def as_row(self) -> dict:
        finite = np.asarray([v for v in self.max_abs if np.isfinite(v)])
        q = (lambda p: float(np.percentile(finite, p)) if finite.size else None)  # noqa: E731
        return {"tag": self.tag, "check": self.check, "tensor": self.tensor, "cases": self.n_cases,
                "failed": self.n_failed, "suspect": self.n_suspect, "min max|delta|": q(0), "median": q(50),
                "max": q(100), "verdict": "PASS" if self.passed else "FAIL",
                "flag": "SUSPECT" if self.passed and self.n_suspect else "", "worst case": self.worst_case,
                "worst inputs": self.worst_inputs, "why": self.worst_reason}


def summarise(results: list[SweepCaseResult]) -> list[SweepSummary]:
    """Group every case's comparisons by (tag, check, tensor); the worst case is a failing one first, then a
    SUSPECT one, then the largest max |delta| (a shape mismatch counts as worst)."""
    groups: dict[tuple[str, str, str], list[tuple[SweepCaseResult, Comparison]]] = {}
    for result in results:
        for c in result.comparisons:
            groups.setdefault((result.tag, c.check, c.name), []).append((result, c))
    out = []
    for (tag, check, tensor), members in groups.items():
        def badness(member):
            c = member[1]
            size = c.max_abs if c.comparable and np.isfinite(c.max_abs) else np.inf
            return (not c.passed, c.suspect, size)

        worst_result, worst = max(members, key=badness)
        out.append(SweepSummary(
            tag, check, tensor, len(members), sum(not c.passed for _, c in members), sum(c.suspect for _, c in members),
            [float(c.max_abs) if c.comparable else float("nan") for _, c in members],
            worst_result.case, worst_result.inputs,
            worst.reason if not worst.passed else (worst.noise.describe() if worst.suspect else "")))
    return out
