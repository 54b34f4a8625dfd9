"""Heatmaps of |delta| over (action horizon x action dim): where do the two sides disagree?

Figures are built with ``matplotlib.figure.Figure`` (no pyplot), so they work under
any backend, never pop up windows, never leak global figures, and display once in
Jupyter when returned from a cell.
"""
from __future__ import annotations

import math

import numpy as np

VIOLATION_GID = "violations"
BOUNDARY_GID = "valid-boundary"
PADDING_GID = "padding"
IDENTICAL_GID = "identical"  # the words on a map whose every cell is exactly 0 (no colour scale to misread)


def wrapped(text: str, width_inches: float, fontsize: float = 10.0) -> str:
    """``text`` with each line wrapped to fit ``width_inches`` at ``fontsize`` (an average glyph is ~0.55 em wide):
    matplotlib never wraps a title, and a clipped one hides exactly the words that say why."""
    import textwrap

    chars = max(20, int(width_inches * 72 / (fontsize * 0.55)))
    return "\n".join(textwrap.fill(line, chars) if line else line for line in text.split("\n"))


def _finite_max(a: np.ndarray) -> float:
    finite = np.asarray(a, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    return float(finite.max()) if finite.size else 0.0


def parity_heatmap(delta_hd, *, violations_hd=None, valid: tuple[int, int] | None = None, title: str = "",
                   vmax: float | None = None, ax=None, colorbar: bool = True, dim_labels: list[str] | None = None):
    """Draw |delta| (H, D); grey-hatch padding outside the ``valid`` (horizon, dims) region, mark violating cells
    with red x; ``dim_labels`` names the action dims on the x axis (e.g. 'gripper[0]'; thinned to ~40 ticks). A map
    that is exactly 0 everywhere says "identical" instead of showing a colour scale.

    Pass the same ``vmax`` to several calls to share one colour scale. Returns the Figure.
    """
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    delta = np.asarray(delta_hd, dtype=np.float64)
    if delta.ndim != 2:
        raise ValueError(f"parity_heatmap needs a 2-D (horizon, dim) array, got shape {delta.shape}")
    H, D = delta.shape
    if ax is None:
        fig = Figure(figsize=(max(6.0, min(14.0, 2.5 + D * 0.08)), max(3.0, min(9.0, 1.8 + H * 0.1))),
                     layout="constrained")
        ax = fig.add_subplot()
    fig = ax.figure
    vmax = _finite_max(delta) if vmax is None else vmax
    vmax = float(vmax) if vmax and math.isfinite(vmax) else 1e-12
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="magenta")
    im = ax.imshow(np.ma.masked_invalid(delta), cmap=cmap, vmin=0.0, vmax=vmax, aspect="auto",
                   interpolation="nearest", origin="upper")
    if delta.size and np.all(delta == 0):  # no colour scale to read: 0..1e-12 would suggest tiny nonzero gaps
        ax.text(0.5, 0.5, "identical\n|delta| = 0 in every cell", transform=ax.transAxes, ha="center",
                va="center", color="white", fontsize="large", fontweight="bold", gid=IDENTICAL_GID,
                bbox={"facecolor": "black", "alpha": 0.5, "edgecolor": "none"})
    elif colorbar:
        fig.colorbar(im, ax=ax, label="|delta|")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    handles = _mark_padding(ax, (H, D), valid or (H, D)) + _mark_violations(ax, violations_hd, delta.shape)
    _label(ax, (H, D), title=title, dim_labels=dim_labels, handles=handles)
    return fig


def _mark_padding(ax, shape: tuple[int, int], valid: tuple[int, int]) -> list:
    """Hatch the padding outside the valid region and outline the region; the legend handles it adds."""
    from matplotlib import patheffects
    from matplotlib.patches import Patch, Rectangle

    (H, D), (vh, vd) = shape, (int(valid[0]), int(valid[1]))
    if not (0 <= vh <= H and 0 <= vd <= D):
        raise ValueError(f"valid region ({vh}, {vd}) exceeds the heatmap shape ({H}, {D})")
    if (vh, vd) == (H, D):
        return []
    pad = dict(facecolor="0.6", alpha=0.45, hatch="//", edgecolor="0.3", linewidth=0, gid=PADDING_GID)
    if vd < D:
        ax.add_patch(Rectangle((vd - 0.5, -0.5), D - vd, H, **pad))
    if vh < H:
        ax.add_patch(Rectangle((-0.5, vh - 0.5), vd, H - vh, **pad))
    x, y = vd - 0.5, vh - 0.5
    ax.plot([-0.5, x, x, -0.5, -0.5], [-0.5, -0.5, y, y, -0.5], color="white", linewidth=2.0,
            gid=BOUNDARY_GID, label=f"valid region ({vh} steps x {vd} dims)",
            path_effects=[patheffects.Stroke(linewidth=3.5, foreground="black"), patheffects.Normal()])
    return [ax.lines[-1], Patch(facecolor="0.6", alpha=0.45, hatch="//", label="padding")]


def _mark_violations(ax, violations_hd, shape: tuple[int, int]) -> list:
    """A red x on every cell outside tolerance; the legend handle it adds."""
    if violations_hd is None:
        return []
    viol = np.asarray(violations_hd, dtype=bool)
    if viol.shape != shape:
        raise ValueError(f"violations_hd shape {viol.shape} != delta shape {shape}")
    rows, cols = np.nonzero(viol)
    return [ax.scatter(cols, rows, marker="x", s=14 if viol.size > 1000 else 40, c="red", linewidths=1.0,
                       gid=VIOLATION_GID, label=f"outside tolerance ({rows.size} cells)", zorder=3)]


def _label(ax, shape: tuple[int, int], *, title: str, dim_labels: list[str] | None, handles: list) -> None:
    """Limits, axis names, named dims, the title wrapped to the figure, and the legend where it clears the ticks."""
    (H, D), fig = shape, ax.figure
    ax.set_xlim(-0.5, D - 0.5)
    ax.set_ylim(H - 0.5, -0.5)
    if dim_labels is not None:
        if len(dim_labels) != D:
            raise ValueError(f"dim_labels has {len(dim_labels)} names for {D} action dims")
        ticks = list(range(0, D, max(1, math.ceil(D / 40))))
        ax.set_xticks(ticks, [dim_labels[i] for i in ticks], rotation=90, fontsize="small")
    ax.set_xlabel("action dim")
    ax.set_ylabel("action horizon step")
    if title:
        ax.set_title(wrapped(title, ax.get_position().width * fig.get_figwidth(), 11), fontsize=11)
    if handles and dim_labels is not None:  # named, rotated ticks are tall: the legend goes below the figure's axes
        fig.legend(handles=handles, loc="outside lower left", ncol=len(handles), fontsize="small", frameon=False)
    elif handles:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.0, 0.0), borderaxespad=4.2,
                  ncol=len(handles), fontsize="small", frameon=False)  # pad (font units) clears the xlabel


def focus_valid(delta_hd, valid_horizon: int | None, valid_dim: int | None, violations_hd=None) -> dict:
    """parity_heatmap kwargs showing only the valid region (the 132-dim padding would squeeze it into a thin
    box), with what the padding holds summarised in ``note`` for the title."""
    delta = np.asarray(delta_hd, dtype=np.float64)
    H, D = delta.shape
    vh, vd = valid_horizon or H, valid_dim or D
    if (vh, vd) == (H, D) or vh > H or vd > D:
        return {"delta_hd": delta, "violations_hd": violations_hd, "note": ""}
    pad = np.concatenate([delta[vh:, :].ravel(), delta[:vh, vd:].ravel()])
    note = f"valid {vh}x{vd} of {H}x{D} shown; padding: max |delta| {_finite_max(pad):.3g}"
    if violations_hd is not None:
        viol = np.asarray(violations_hd, dtype=bool)
        note += f", {int(viol.sum() - viol[:vh, :vd].sum())} cells outside tolerance"
        violations_hd = viol[:vh, :vd]
    return {"delta_hd": delta[:vh, :vd], "violations_hd": violations_hd, "note": note}


def heatmap_grid(panels: list[dict], *, vmax: float | None = None, ncols: int = 2):
    """Several heatmaps on one shared colour scale (one colorbar), e.g. for a precision study.

    Each panel dict holds parity_heatmap's keyword arguments (``delta_hd`` included, ``ax`` excluded);
    a per-panel ``vmax`` is overridden by the shared one.
    """
    from matplotlib.figure import Figure

    if not panels:
        raise ValueError("heatmap_grid needs at least one panel")
    if vmax is None:
        vmax = max(_finite_max(p["delta_hd"]) for p in panels)
    ncols = max(1, min(ncols, len(panels)))
    nrows = math.ceil(len(panels) / ncols)
    fig = Figure(figsize=(6.5 * ncols, 4.0 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, panel in zip(axes, panels):
        kwargs = {k: v for k, v in panel.items() if k not in ("ax", "vmax", "colorbar")}
        parity_heatmap(ax=ax, vmax=vmax, colorbar=False, **kwargs)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    if vmax and math.isfinite(vmax):  # every panel identical: each says so, and there is no scale to show
        fig.colorbar(axes[0].images[0], ax=list(axes[: len(panels)]), label="|delta|")
    return fig


def action_heatmap(delta_hd, *, violations_hd=None, layout=None, title: str = "", focus: bool = True):
    """|delta| over (horizon x action dim) as the reports draw it: the embodiment's valid region only when
    ``focus`` (what the padding holds goes into the title), its dims named ('eef[5]'), integer steps, the title
    wrapped to the figure. ``layout``: core.checkpoint.EmbodimentLayout, or None for plain indices."""
    delta = np.asarray(delta_hd, dtype=np.float64)
    H, D = delta.shape
    vh, vd = (layout.action_horizon, layout.action_dim) if layout is not None else (H, D)
    region = {}
    if focus:
        shown = focus_valid(delta, vh, vd, violations_hd)
        delta, violations_hd = shown["delta_hd"], shown["violations_hd"]
        title = f"{title}\n{shown['note']}" if shown["note"] else title
    elif (vh, vd) != (H, D) and vh <= H and vd <= D:
        region = {"valid": (vh, vd)}
    labels = layout.action_labels(delta.shape[1]) if layout is not None else None
    return parity_heatmap(delta, violations_hd=violations_hd, title=title, dim_labels=labels, **region)


def stage_profile(rows, *, threshold: float, title: str):
    """Relative |delta| of every named stage in firing order (log scale; flow steps shaded alternately), the
    rounding threshold as a line and the first stage above it marked: where the error starts, and whether later
    stages and flow steps amplify or damp it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    floor = threshold * 1e-3
    values = [floor if r.relative is None or r.relative <= floor else min(r.relative, 1e6) for r in rows]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.18 * len(rows)), 3.2))
    for step in sorted({r.call for r in rows if r.call}):
        xs = [i for i, r in enumerate(rows) if r.call == step and r.stage.startswith(("action", "timestep", "dit"))]
        if xs and step % 2:
            ax.axvspan(min(xs) - 0.5, max(xs) + 0.5, color="#eee", zorder=0)
    colours = ["#c33" if r.flagged else "#37a" for r in rows]
    ax.scatter(range(len(rows)), values, c=colours, s=14, zorder=3)
    ax.plot(range(len(rows)), values, color="#999", lw=0.8, zorder=2)
    ax.axhline(threshold, color="#c33", ls="--", lw=1, label=f"rounding threshold {threshold:.2g}")
    first = next((i for i, r in enumerate(rows) if r.flagged), None)
    if first is not None:
        ax.annotate(f"first: {rows[first].stage}@{rows[first].call}", (first, values[first]),
                    xytext=(6, -14), textcoords="offset points", fontsize=8, color="#c33")
    ax.set_yscale("log")
    ax.set_ylim(top=max(max(values), threshold) * 30)
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([f"{r.stage}@{r.call}" for r in rows], rotation=90, fontsize=6)
    ax.set_ylabel("max |delta| / max |original|")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig


def view_panels(original: np.ndarray, lerobot: np.ndarray, *, title: str):
    """One camera view as each preprocessor left it (first frame, both on one intensity scale) and |delta|
    (max over channels): a shifted crop shows as edges, an interpolation change as fine texture everywhere."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    a, b = np.asarray(original[0], dtype=np.float32), np.asarray(lerobot[0], dtype=np.float32)  # (C, H, W)
    lo, hi = float(min(a.min(), b.min())), float(max(a.max(), b.max()))
    scale = (lambda x: np.clip((x - lo) / (hi - lo), 0, 1)) if hi > lo else (lambda x: np.zeros_like(x))
    diff = np.abs(a - b).max(axis=0)
    fig, axes = plt.subplots(1, 3, figsize=(9, 3))
    for ax, image, name in ((axes[0], scale(a).transpose(1, 2, 0), "original"),
                            (axes[1], scale(b).transpose(1, 2, 0), "LeRobot")):
        ax.imshow(image if image.shape[-1] == 3 else image[..., 0])
        ax.set_title(name, fontsize=9)
        ax.axis("off")
    shown = axes[2].imshow(diff, cmap="magma")
    axes[2].set_title(f"|delta| max {diff.max():.3g}, mean {diff.mean():.3g}", fontsize=9)
    axes[2].axis("off")
    fig.colorbar(shown, ax=axes[2], fraction=0.046)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def png(fig, dpi: int = 100) -> bytes:
    """PNG bytes of a pyplot-free Figure (IPython only shows such figures as text otherwise)."""
    import io

    buffer = io.BytesIO()
    # A constrained-layout figure already fits its canvas, legends below the axes included; "tight" would draw it
    # once more to measure it (0.79 -> 0.59 s for a four-panel precision grid).
    tight = {"bbox_inches": "tight"} if fig.get_layout_engine() is None else {}
    fig.savefig(buffer, format="png", dpi=dpi, **tight)
    return buffer.getvalue()
