"""How large a model-parity gap rounding alone explains, per device pair and dtype; far above it is SUSPECT.

Why: atol=1e-3 is the seed's tolerance and stays the default, but it is ~300x what two fp32 CPU runs
of the same model differ by. A planted 1% change of the backbone's RoPE theta moves action_pred by
4.9e-4: inside atol, yet 180x the clean gap. So every model-parity row is also set against the gap
measured for its device pair, and marked SUSPECT when it exceeds SUSPECT_FACTOR x that gap. The
factor 10 leaves room for other CPUs and model sizes (the measured figures vary 0..2.9e-6 on CPU)
while staying 16x under the RoPE case. SUSPECT does not change the atol/rtol verdict or the exit status.
"""

from __future__ import annotations

from dataclasses import dataclass

SUSPECT_FACTOR = 10.0


@dataclass(frozen=True)
class ExpectedGap:
    max_abs: float  # max |delta| on action_pred that rounding alone explains
    basis: str  # where the figure comes from

    def describe(self) -> str:
        return f"{self.max_abs:.3g} ({self.basis})"


_CPU_CPU = ExpectedGap(3e-6, "cpu vs cpu fp32, measured: 0 on one CPU, up to 2.9e-6 between CPUs with different "
                             "instruction sets")
_CPU_CUDA = ExpectedGap(8e-4, "cpu vs cuda fp32, injected noise, measured on an NVIDIA H200: LeRobot cuda vs the "
                        "original cpu 3.4e-4..6.9e-4, LeRobot cpu vs the original cuda 3.5e-4..7.7e-4")
_CUDA_CUDA = ExpectedGap(8e-4, "cuda vs cuda fp32: 0 measured on an NVIDIA H200 (both implementations, same "
                         "kernels); a different GPU or kernel choice can move it up to the cpu vs cuda figure")
EXPECTED = {("cpu", "cpu"): _CPU_CPU, ("cpu", "cuda"): _CPU_CUDA, ("cuda", "cpu"): _CPU_CUDA,
            ("cuda", "cuda"): _CUDA_CUDA}


def device_kind(device: str | None) -> str:
    return "cuda" if str(device or "").startswith("cuda") else "cpu"


def expected_gap(original_device: str | None, lerobot_device: str | None, dtype: str = "float32") -> ExpectedGap | None:
    """The measured rounding gap for this pair, or None where nothing was measured (e.g. bf16 parity rows)."""
    if dtype not in ("float32", "fp32"):
        return None
    return EXPECTED.get((device_kind(original_device), device_kind(lerobot_device)))


@dataclass(frozen=True)
class NoiseAssessment:
    expected: ExpectedGap
    ratio: float  # max |delta| / expected

    @property
    def suspect(self) -> bool:
        return self.ratio > SUSPECT_FACTOR

    def describe(self) -> str:
        verdict = f"far above what rounding explains (> {SUSPECT_FACTOR:g}x)" if self.suspect else "within rounding"
        return f"{self.ratio:.3g}x the expected gap {self.expected.describe()}; {verdict}"


def assess(max_abs: float, expected: ExpectedGap | None) -> NoiseAssessment | None:
    if expected is None or max_abs != max_abs:  # NaN: the row already fails with counts
        return None
    return NoiseAssessment(expected, float(max_abs) / expected.max_abs)


def needs_localising(action_pred, artifact, *, atol: float, rtol: float, lerobot_device: str | None) -> bool:
    """Whether model parity will FAIL or be SUSPECT, by the verdict's own rules (compare_close, expected gap):
    STAGES=auto compares and re-runs LeRobot's stages for exactly those tags. Lives here, beside the rule, so
    a stored replay's key (the code it goes through) does not hold the plotting code."""
    from groot_lib.compare.comparison import compare_close

    c = compare_close(action_pred, artifact.action_pred, name="action_pred", atol=atol, rtol=rtol)
    if not c.passed or not c.comparable:
        return True
    noise = assess(c.max_abs, expected_gap(artifact.producer.get("device"), lerobot_device,
                                           artifact.producer.get("dtype", "float32")))
    return bool(noise and noise.suspect)
