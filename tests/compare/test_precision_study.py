"""The precision verdict on synthetic runs: the k x noise-floor rule, and honest failure modes."""

import math

import numpy as np
import pytest

from groot_lib.compare.plots import heatmap_grid
from groot_lib.compare.precision import LEROBOT, ORIGINAL, REFERENCE, study

V = "bf16-sdpa"


def runs(floor_orig=0.04, floor_lerobot=0.03, impl_gap=0.0, shape=(2, 8, 6)):
    """Each side's bf16 run is its fp32 run plus its noise floor at one cell; LeRobot's fp32 run
    differs from the original's by ``impl_gap`` at another (a real implementation difference).

    With no implementation gap the cross gap can never exceed floor_orig + floor_lerobot <= 2 x the larger
    floor (triangle inequality): the k=2 rule has teeth exactly when the implementations differ.
    """
    base = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    lerobot_fp32 = base.copy()
    lerobot_fp32[1, 2, 3] += impl_gap
    orig_bf16, lerobot_bf16 = base.copy(), lerobot_fp32.copy()
    orig_bf16[0, 1, 2] += floor_orig
    lerobot_bf16[1, 4, 0] += floor_lerobot
    return {(ORIGINAL, REFERENCE): base, (LEROBOT, REFERENCE): lerobot_fp32, (ORIGINAL, V): orig_bf16,
            (LEROBOT, V): lerobot_bf16}


def test_gap_within_k_floors_passes_and_reports_all_four_pairs():
    verdict = study("tag", V, runs(), valid_horizon=8, valid_dim=4)
    roles = [g.spec.role for g in verdict.gaps]
    assert roles == ["implementation gap (fp32)", "original noise floor", "LeRobot noise floor",
                     "cross-implementation gap (bf16-sdpa)"]
    assert verdict.gaps[0].max == 0.0
    assert verdict.floor == pytest.approx(0.04, abs=1e-6) and verdict.cross.max == pytest.approx(0.04, abs=1e-6)
    assert verdict.passed and "within 2 x noise floor" in verdict.reason
    row = verdict.as_row()
    assert row["verdict"] == "PASS" and row["bound"] == pytest.approx(0.08, abs=1e-6)
    gap = verdict.gaps[1]
    assert gap.delta_hd.shape == (8, 6) and gap.p99 <= gap.max and gap.mean < gap.max


def test_gap_beyond_k_floors_fails_and_k_is_configurable():
    verdict = study("tag", V, runs(impl_gap=0.09))
    assert verdict.gaps[0].max == pytest.approx(0.09, abs=1e-6)
    assert not verdict.passed and "EXCEEDS" in verdict.reason and "ratio 2.25" in verdict.reason
    assert study("tag", V, runs(impl_gap=0.09), k=3).passed


@pytest.mark.parametrize("k", [0, -1, math.inf])
def test_k_must_be_positive_and_finite(k):
    with pytest.raises(ValueError, match="k must be"):
        study("tag", V, runs(), k=k)


def test_shape_mismatch_is_not_cropped():
    data = runs()
    data[(LEROBOT, V)] = data[(LEROBOT, V)][:, :4]
    verdict = study("tag", V, data)
    assert not verdict.passed and "shape mismatch (2, 8, 6) vs (2, 4, 6) (not cropped)" in verdict.reason


def test_missing_run_and_non_finite_fail_with_reason():
    data = runs()
    del data[(ORIGINAL, V)]
    verdict = study("tag", V, data)
    assert not verdict.passed and f"no run for original {V}" in verdict.reason
    data = runs()
    data[(LEROBOT, V)][0, 0, 0] = np.nan
    verdict = study("tag", V, data)
    assert not verdict.passed and "non-finite" in verdict.reason


def test_valid_cells_are_judged_on_their_own_floor():
    """Large padding noise must not hide a real gap in the cells the embodiment uses."""
    data = runs(floor_orig=0.001, floor_lerobot=0.001)  # both floors sit inside the valid region (rows 0-1)
    data[(ORIGINAL, V)][0, 6, 5] += 0.05  # big noise in padding (horizon 6 >= valid 4)
    data[(LEROBOT, REFERENCE)][0, 1, 1] += 0.01  # a real difference inside
    data[(LEROBOT, V)][0, 1, 1] += 0.01
    full_only = study("tag", V, data)
    assert full_only.passed  # over the padded tensor the padding floor (0.05) hides the 0.01 gap
    verdict = study("tag", V, data, valid_horizon=4, valid_dim=4)
    assert verdict.cross.valid_max == pytest.approx(0.01, abs=1e-6) and verdict.valid_floor == pytest.approx(0.001, abs=1e-6)
    assert not verdict.passed and "valid cells: cross gap 0.01 EXCEEDS" in verdict.reason


def test_reference_variant_is_not_a_study():
    with pytest.raises(ValueError, match="low-precision"):
        study("tag", REFERENCE, runs())


def test_shared_scale_spans_every_panel():
    a, b = study("a", V, runs()), study("b", V, runs(floor_orig=0.2))
    grid = heatmap_grid(a.heatmap_panels() + b.heatmap_panels())
    tops = [ax.images[0].get_clim()[1] for ax in grid.axes if ax.images]
    assert len(tops) == 8 and all(top == pytest.approx(0.2, abs=1e-6) for top in tops)
    assert len(a.heatmap_panels()) == 4


def test_runs_smaller_than_the_valid_region_fail_without_a_crash():
    """LeRobot's own fp32 and bf16 runs agree in shape but are cropped below the valid region: a FAIL
    naming it, and nothing to draw for those pairs (the heatmap grid used to raise here)."""
    full = runs()
    small = {k: (v[:, :4, :3] if k[0] == LEROBOT else v) for k, v in full.items()}
    verdict = study("tag", V, small, valid_horizon=8, valid_dim=4)
    assert not verdict.passed and "smaller than the embodiment's valid region" in verdict.reason
    assert "shape mismatch" in verdict.reason  # the cross pair is never cropped either
    panels = verdict.heatmap_panels()
    assert panels == [] or all(p["delta_hd"].shape[0] >= 8 for p in panels)
    if panels:
        heatmap_grid(panels)
