"""Comparison semantics: exact shapes, NaN always fails, isclose criterion, useful stats."""
from __future__ import annotations

import math

import numpy as np
import pytest

from groot_lib.compare.comparison import (COLUMNS, all_passed, cell_max_abs_delta, compare_close, compare_exact,
                               verdict_table, violation_mask)

ATOL, RTOL = 1e-4, 1e-5


@pytest.fixture
def pair():
    e = np.random.default_rng(1).normal(size=(2, 40, 132)).astype(np.float32)
    a = e.copy()
    a[0, 3, 5] += np.float32(1e-2)
    return a, e


def test_identical_passes():
    x = np.random.default_rng(0).normal(size=(2, 40, 132)).astype(np.float32)
    c = compare_close(x, x.copy(), name="action_pred", atol=0, rtol=0, tag="gr1", check="model parity")
    assert c.passed and c.reason == "" and c.n_mismatch == 0 and c.n_total == x.size
    assert c.max_abs == 0 and c.min_atol_to_pass == 0 and "PASS" in c.format()
    assert c.as_row()["verdict"] == "PASS"


def test_single_perturbation(pair):
    a, e = pair
    c = compare_close(a, e, name="action_pred", atol=ATOL, rtol=RTOL, tag="gr1", check="model parity")
    assert not c.passed and c.reason == "values differ"
    assert c.n_mismatch == 1 and c.n_total == a.size
    assert c.worst[0][0] == (0, 3, 5)
    d = abs(float(a[0, 3, 5]) - float(e[0, 3, 5]))
    assert c.worst[0][3] == pytest.approx(d) and c.max_abs == pytest.approx(d)
    assert c.min_atol_to_pass == pytest.approx(d - RTOL * abs(float(e[0, 3, 5])))
    assert c.min_atol_to_pass == pytest.approx(1e-2, rel=1e-3)
    # the reported minimum atol actually passes, slightly less does not
    assert compare_close(a, e, name="x", atol=c.min_atol_to_pass * (1 + 1e-9), rtol=RTOL).passed
    assert not compare_close(a, e, name="x", atol=c.min_atol_to_pass * 0.999, rtol=RTOL).passed
    text = c.format()
    for needle in ("action_pred", "gr1", "model parity", "FAIL", "1 / 10560", "(0, 3, 5)", "minimum atol"):
        assert needle in text
    row = c.as_row()
    assert list(row) == COLUMNS and row["shape"] == "(2, 40, 132) vs (2, 40, 132)"
    assert row["mismatched"] == 1 and row["verdict"] == "FAIL"
    assert row["mismatched %"] == pytest.approx(100 / a.size)


def test_violation_mask_and_cells(pair):
    a, e = pair
    m = violation_mask(a, e, ATOL, RTOL)
    assert m.shape == a.shape and m.sum() == 1 and m[0, 3, 5]
    cells = cell_max_abs_delta(a, e)
    assert cells.shape == (40, 132)
    assert np.unravel_index(np.argmax(cells), cells.shape) == (3, 5)
    with pytest.raises(ValueError, match="shape"):
        cell_max_abs_delta(a, e[:, :20])


def test_shape_mismatch_never_crops():
    e = np.zeros((1, 40, 132), np.float32)
    a = np.zeros((1, 16, 132), np.float32)  # a prefix that would "match" if cropped
    c = compare_close(a, e, name="action_pred", atol=1, rtol=1)
    assert not c.passed
    assert c.reason == "shape mismatch: actual (1, 16, 132) vs expected (1, 40, 132)"
    assert math.isnan(c.max_abs) and math.isnan(c.mean_abs) and math.isnan(c.min_atol_to_pass)
    assert not compare_close(np.zeros(3), np.zeros((1, 3)), name="x", atol=1, rtol=1).passed
    assert not compare_exact(np.zeros(3, int), np.zeros(4, int), name="ids").passed


def test_nan_fails_with_counts():
    e = np.ones((2, 4), np.float32)
    a = e.copy()
    a[0, :3] = np.nan
    c = compare_close(a, e, name="action_pred", atol=1e9, rtol=1e9)
    assert not c.passed
    assert c.reason == "NaN/Inf in action_pred: actual has 3 NaN, 0 Inf; expected has 0 NaN, 0 Inf"
    assert c.n_mismatch == 3 and c.min_atol_to_pass == math.inf
    assert {w[0] for w in c.worst[:3]} == {(0, 0), (0, 1), (0, 2)}
    e2 = e.copy()
    e2[1, 1] = np.inf
    c2 = compare_close(e2, e2.copy(), name="y", atol=0, rtol=0)  # Inf == Inf still fails
    assert not c2.passed and "expected has 0 NaN, 1 Inf" in c2.reason


def test_dtype_difference_is_a_note_for_close():
    x = np.linspace(0, 1, 10)
    c = compare_close(x.astype(np.float32), x, name="x", atol=1e-6, rtol=0)
    assert c.passed and c.notes == ["dtype differs: float32 vs float64"]


def test_exact_dtype_only_difference_passes_with_note():
    ids = np.arange(20).reshape(2, 10)
    c = compare_exact(ids.astype(np.int32), ids.astype(np.int64), name="input_ids", tag="gr1")
    assert c.passed and c.reason == "" and c.n_mismatch == 0
    assert c.notes == ["dtype differs only: int32 vs int64"]
    assert "dtype differs only" in c.format()


def test_exact_differing_tokens_fail():
    e = np.arange(20, dtype=np.int64).reshape(2, 10)
    a = e.copy()
    a[1, 4], a[0, 9] = 999, 8
    c = compare_exact(a, e, name="input_ids", tag="gr1", check="collation")
    assert not c.passed and c.n_mismatch == 2 and "2 of 20" in c.reason
    assert c.worst[0] == ((1, 4), 999, 14, 985.0)
    assert [w[0] for w in c.worst] == [(1, 4), (0, 9)]
    assert "(1, 4)" in c.format()


def test_verdict_table_and_all_passed(pair):
    a, e = pair
    comps = [compare_close(e, e, name="action_pred", atol=0, rtol=0, tag="gr1"),
             compare_close(a, e, name="action_pred", atol=ATOL, rtol=RTOL, tag="gr1"),
             compare_exact(np.ones(3, int), np.ones(3, int), name="input_ids", tag="gr1")]
    df = verdict_table(comps)
    assert list(df.columns) == COLUMNS and len(df) == 3
    assert list(df["verdict"]) == ["PASS", "FAIL", "PASS"]
    assert not all_passed(comps) and all_passed([comps[0], comps[2]]) and all_passed([])
    assert list(verdict_table([]).columns) == COLUMNS


def test_a_comparison_over_parts_equals_the_one_over_their_concatenation():
    """compare_close_parts (gradients one parameter at a time) gives what compare_close of the concatenation gives:
    counts, max, mean, min atol, the worst elements at their flat positions; p99 within its 2.3% bins. A part of
    another shape fails the whole; NaN in a part fails it with the count."""
    from groot_lib.compare.comparison import compare_close_parts

    rng = np.random.default_rng(0)
    expected = [rng.normal(size=shape).astype(np.float32) for shape in ((30, 40), (7,), (5, 6, 8))]
    actual = [e + rng.normal(scale=1e-3, size=e.shape).astype(np.float32) for e in expected]
    actual[2][4, 5, 7] += 0.5
    whole = compare_close(np.concatenate([a.ravel() for a in actual]), np.concatenate([e.ravel() for e in expected]),
                          name="g", atol=1e-3, rtol=1e-3)
    parts = compare_close_parts(zip(actual, expected), name="g", atol=1e-3, rtol=1e-3)
    assert (parts.n_total, parts.n_mismatch, parts.passed, parts.reason) == \
        (whole.n_total, whole.n_mismatch, whole.passed, whole.reason)
    assert parts.max_abs == whole.max_abs and parts.min_atol_to_pass == whole.min_atol_to_pass
    assert parts.mean_abs == pytest.approx(whole.mean_abs, rel=1e-12)
    assert [w[0] for w in parts.worst] == [w[0] for w in whole.worst] and parts.worst[0][0] == (1200 + 7 + 4 * 48 + 5 * 8 + 7,)
    assert whole.p99_abs <= parts.p99_abs <= 1.024 * whole.p99_abs
    shape = compare_close_parts([(np.zeros(3), np.zeros(3)), (np.zeros(2), np.zeros(3))], name="g", atol=0, rtol=0)
    assert not shape.passed and "part 1: shape mismatch" in shape.reason and not shape.comparable
    nan = compare_close_parts([(np.zeros(3), np.zeros(3)), (np.array([np.nan, 0.0]), np.zeros(2))], name="g",
                              atol=0, rtol=0)
    assert not nan.passed and "NaN/Inf in g (part 1): actual has 1 NaN" in nan.reason, nan.reason
