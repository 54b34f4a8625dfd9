"""Heatmaps render headless, mark every violating cell and show the valid region."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("matplotlib")
from matplotlib.figure import Figure  # noqa: E402

from groot_lib.compare.plots import BOUNDARY_GID, PADDING_GID, VIOLATION_GID, heatmap_grid, parity_heatmap  # noqa: E402


def _grid(seed=0, H=40, D=132):
    rng = np.random.default_rng(seed)
    delta = np.abs(rng.normal(scale=1e-6, size=(H, D)))
    viol = np.zeros((H, D), bool)
    viol[3, 5] = viol[0, 131] = viol[39, 0] = True
    delta[viol] = 1e-2
    return delta, viol


def _by_gid(ax, gid):
    return [a for a in ax.get_children() if a.get_gid() == gid]


def test_heatmap_marks_violations_and_valid_region(tmp_path):
    delta, viol = _grid()
    fig = parity_heatmap(delta, violations_hd=viol, valid_horizon=16, valid_dim=29, title="gr1: model parity")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    (markers,) = _by_gid(ax, VIOLATION_GID)
    offsets = np.asarray(markers.get_offsets())
    assert len(offsets) == viol.sum()
    assert {(int(r), int(c)) for c, r in offsets} == {(3, 5), (0, 131), (39, 0)}
    (boundary,) = _by_gid(ax, BOUNDARY_GID)
    assert max(boundary.get_xdata()) == pytest.approx(28.5) and max(boundary.get_ydata()) == pytest.approx(15.5)
    assert len(_by_gid(ax, PADDING_GID)) == 2
    assert ax.get_xlabel() == "action dim" and ax.get_ylabel() == "action horizon step"
    assert any(a.get_ylabel() == "|delta|" for a in fig.axes[1:])  # colorbar
    out = tmp_path / "heatmap.png"
    fig.savefig(out)
    assert out.stat().st_size > 1000 and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_no_region_no_violations_and_shared_vmax():
    delta, _ = _grid()
    fig = parity_heatmap(delta, vmax=0.5)
    ax = fig.axes[0]
    assert not _by_gid(ax, BOUNDARY_GID) and not _by_gid(ax, PADDING_GID) and not _by_gid(ax, VIOLATION_GID)
    assert ax.images[0].get_clim() == (0.0, 0.5)
    nan_delta = np.full((4, 6), np.nan)
    parity_heatmap(nan_delta, violations_hd=np.ones((4, 6), bool)).savefig(__import__("io").BytesIO())


def test_bad_inputs():
    delta, viol = _grid()
    with pytest.raises(ValueError, match="shape"):
        parity_heatmap(delta, violations_hd=viol[:10])
    with pytest.raises(ValueError, match="valid region"):
        parity_heatmap(delta, valid_horizon=50)


def test_grid_shares_colour_scale(tmp_path):
    panels = []
    for i, scale in enumerate([1e-3, 1e-1, 1e-2]):
        delta, viol = _grid(seed=i)
        panels.append(dict(delta_hd=delta * scale / 1e-2, violations_hd=viol, valid_horizon=16, valid_dim=29,
                           title=f"variant {i}"))
    fig = heatmap_grid(panels, ncols=2)
    images = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(images) == 3
    assert [im.get_clim() for im in images] == [(0.0, pytest.approx(1e-1))] * 3
    assert sum(ax.get_ylabel() == "|delta|" for ax in fig.axes) == 1  # one shared colorbar
    fig.savefig(tmp_path / "grid.png")
    assert heatmap_grid(panels, vmax=2.0).axes[0].images[0].get_clim() == (0.0, 2.0)


def test_focus_valid_shows_the_valid_region_and_summarises_padding():
    from groot_lib.compare.plots import focus_valid

    delta = np.zeros((40, 132))
    delta[3, 5], delta[20, 100] = 1e-2, 5e-2
    viol = delta > 1e-3
    shown = focus_valid(delta, 8, 7, viol)
    assert shown["delta_hd"].shape == (8, 7) and shown["violations_hd"].sum() == 1
    assert shown["note"] == "valid 8x7 of 40x132 shown; padding: max |delta| 0.05, 1 cells outside tolerance"
    full = focus_valid(delta, 40, 132, viol)
    assert full["delta_hd"].shape == (40, 132) and full["note"] == ""
