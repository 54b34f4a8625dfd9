"""bf16 vs fp32 on the tiny default: the gap is real (non-zero) and bounded.

Bound: bf16 keeps 8 significant bits (unit roundoff 2**-8 ~ 3.9e-3 relative); over 4 flow-matching
steps through ~10 matmul layers with |action| up to ~5.6, the measured worst case is 0.052 absolute
(original) — 0.1 allows ~2x headroom while still catching a real fp32/bf16 mix-up, which shows up as
O(1) deltas on these random weights.
"""

import numpy as np

from conftest import lerobot_low_precision_gap
from groot_lib.tiny import layout as L
from groot_lib.core.artifact import artifact_path, load_artifact

BOUND = 0.1


def test_original_bf16_gap_is_nonzero_and_bounded(recorded_dir):
    for tag in L.EMBODIMENTS:
        fp32 = load_artifact(artifact_path(recorded_dir, tag))
        bf16 = load_artifact(artifact_path(recorded_dir, tag, "bf16-sdpa"))
        assert np.array_equal(fp32.initial_noise, bf16.initial_noise)  # same start: precision is the only change
        assert bf16.extra["noise"] == "injected from fp32-sdpa"
        gap = np.abs(fp32.action_pred - bf16.action_pred).max()
        assert 1e-4 < gap < BOUND, (tag, gap)


def test_lerobot_bf16_gap_is_nonzero_and_bounded():
    result = lerobot_low_precision_gap("bf16-sdpa")
    assert result["attention"] == "sdpa"
    assert 1e-4 < result["gap"] < BOUND, result
