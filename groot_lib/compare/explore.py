"""What ``notebooks/explore.ipynb`` shows: one report folder (or two, before/after), one embodiment, a batch
element and a few action dims: both implementations' trajectories (normalised, and decoded to the embodiment's
units where the statistics allow), |delta| over the valid region with padding summarised apart, an error
histogram, and the worst elements named by (batch, step, action group[index]) instead of flat indices.

Torch-free: reads the report folder's artifacts/ (original), lerobot/ (LeRobot's stored outputs, hard-linked
there by every report) and the checkpoint's JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from groot_lib.compare.numbers import fmt
from groot_lib.core import checkpoint as ckpt
from groot_lib.core import report_folder
from groot_lib.core.artifact import artifact_path, load_artifact
from groot_lib.core.errors import ParityError
from groot_lib.core.variants import DEFAULT_VARIANT


def newest_report(root: str | Path) -> Path:
    """The newest finished report folder under ``root`` that has verdicts (core.report_folder decides)."""
    found = report_folder.newest(Path(root), having=report_folder.VERDICTS)
    if found is None:
        raise ParityError(f"no finished report under {root}: run `make report` first, or pass report=<folder>")
    return found


@dataclass
class TagData:
    """One embodiment of one report: both sides' action_pred (B, H, D) and what names its dims."""

    report: Path
    tag: str
    layout: ckpt.EmbodimentLayout
    original: np.ndarray
    lerobot: np.ndarray
    statistics: dict
    processor: dict

    @property
    def labels(self) -> list[str]:
        """'group[index]' for every valid action dim (the checkpoint's modality order), 'pad[i]' beyond."""
        return self.layout.action_labels(self.original.shape[-1])

    @property
    def valid(self) -> tuple[int, int]:
        return self.layout.action_horizon, self.layout.action_dim


def load_tag(report: str | Path, tag: str = "", variant: str = DEFAULT_VARIANT) -> TagData:
    report = Path(report)
    verdicts = report_folder.read_verdicts(report)
    checkpoint = Path(verdicts.settings["checkpoint"])
    tags = list(verdicts.tags)
    tag = tag or (tags[0] if tags else "")
    if tag not in tags:
        raise ParityError(f"{report} has no embodiment {tag!r}; it has {tags}")
    replay = report / "lerobot" / f"{tag}__{variant}.npz"
    if not replay.is_file():
        raise ParityError(f"{replay} is missing: reports made before LeRobot's outputs were kept cannot be explored")
    with np.load(replay, allow_pickle=False) as npz:
        lerobot = npz["action_pred"]
    original = load_artifact(artifact_path(report / "artifacts", tag, variant)).action_pred
    processor = json.loads((checkpoint / "processor_config.json").read_text())["processor_kwargs"]
    statistics = json.loads((checkpoint / "statistics.json").read_text())[tag]
    return TagData(report, tag, ckpt.embodiment_layout(checkpoint, tag), original, lerobot, statistics, processor)


def decoder(data: TagData) -> dict[str, tuple[str, np.ndarray, np.ndarray]]:
    """group -> (how, scale, offset) so that units = normalised * scale + offset, per dim of the group.

    Absolute groups invert min/max (q01/q99 with use_percentiles) onto [-1, 1], or mean/std where the checkpoint
    says so; relative groups decode to *deltas* from their own relative statistics (turning them into
    absolute poses needs the state and, for EEF, pose composition: the decoded-actions check's job).
    """
    config = data.processor["modality_configs"][data.tag]["action"]
    reps = {key: (cfg or {}).get("rep", "ABSOLUTE") for key, cfg in
            zip(config["modality_keys"], config.get("action_configs") or [None] * len(config["modality_keys"]))}
    mean_std = set(config.get("mean_std_embedding_keys") or []) if data.processor.get("use_mean_std") else set()
    lo_key, hi_key = ("q01", "q99") if data.processor.get("use_percentiles") else ("min", "max")
    out = {}
    for group in data.layout.action_dims:
        relative = str(reps.get(group, "ABSOLUTE")).upper() == "RELATIVE"
        stats = (data.statistics.get("relative_action", {}) if relative else data.statistics["action"]).get(group)
        if not stats:
            continue
        how = "relative delta" if relative else "absolute"
        if group in mean_std:
            out[group] = (f"{how}, mean/std", np.asarray(stats["std"]), np.asarray(stats["mean"]))
        else:
            lo, hi = np.asarray(stats[lo_key]), np.asarray(stats[hi_key])
            out[group] = (f"{how}, {lo_key}/{hi_key}", (hi - lo) / 2, (hi + lo) / 2)
    return out


def decode(data: TagData, values: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """(…, D) normalised -> units over the valid dims (NaN where no statistics), and how each dim was decoded."""
    spec = decoder(data)
    out = np.full(values.shape[:-1] + (data.layout.action_dim,), np.nan)
    hows, start = [], 0
    for group, size in data.layout.action_dims.items():
        if group in spec:
            how, scale, offset = spec[group]
            out[..., start:start + size] = values[..., start:start + size] * scale + offset
        hows += [spec[group][0] if group in spec else "not decoded"] * size
        start += size
    return out, hows


def divergence_rows(verdicts) -> list[dict]:
    """One row per embodiment (report_folder.Verdicts): where its models start to differ, with the state said
    (diverges / none diverges / not compared and why; reports that predate the states say they cannot tell)."""
    return [{"tag": tag, **first} for tag, first in verdicts.first_divergence.items()]


def worst_elements(data: TagData, k: int = 5) -> dict[str, list[dict]]:
    """The k largest |delta| inside the valid region and, apart, in padding; each named (batch, step, action)."""
    delta = np.abs(data.lerobot.astype(np.float64) - data.original.astype(np.float64))
    inside = data.layout.valid_mask(delta.shape)
    out = {}
    for region, mask in (("valid", inside), ("padding", ~inside)):
        flat = np.where(mask, delta, -1.0).ravel()
        top = [i for i in np.argsort(-flat, kind="stable")[:k] if flat[i] >= 0]
        out[region] = [{"batch": b, "step": h, "action": data.labels[d], "original": float(data.original[b, h, d]),
                        "LeRobot": float(data.lerobot[b, h, d]), "|delta|": float(delta[b, h, d])}
                       for b, h, d in (np.unravel_index(i, delta.shape) for i in top)]
    return out


def padding_summary(data: TagData) -> str:
    delta = np.abs(data.lerobot.astype(np.float64) - data.original.astype(np.float64))
    vh, vd = data.valid
    pad = delta[~data.layout.valid_mask(delta.shape)]
    return (f"padding ({pad.size} cells outside the valid {vh} steps x {vd} dims, discarded by the policy): "
            f"max |delta| {fmt(float(pad.max()) if pad.size else 0.0)}, mean {fmt(float(pad.mean()) if pad.size else 0.0)}")


def parse_dims(data: TagData, dims: str) -> list[int]:
    """'' -> the first 4 valid dims; else indices or labels: '0,3' or 'eef[0],eef[6]'."""
    if not str(dims).strip():
        return list(range(min(4, data.layout.action_dim)))
    out = []
    for item in str(dims).split(","):
        item = item.strip()
        if item.isdigit():
            out.append(int(item))
        elif item in data.labels:
            out.append(data.labels.index(item))
        else:
            raise ParityError(f"unknown action dim {item!r} for {data.tag}; use an index or one of {data.labels[:12]}...")
    return out


def trajectories(data: TagData, batch: int, dims: list[int], *, decoded: bool = False, other: TagData | None = None):
    """Both implementations' actions over the valid horizon, one panel per dim (B's too when given)."""
    from matplotlib.figure import Figure

    vh = data.layout.action_horizon
    runs = [("original", data.original), ("LeRobot", data.lerobot)]
    if other is not None:
        runs += [("original (B)", other.original), ("LeRobot (B)", other.lerobot)]
    hows = None
    if decoded:
        converted = []
        for name, values in runs:
            units, hows = decode(data, values)
            converted.append((name, units))
        runs = converted
    fig = Figure(figsize=(4.2 * len(dims), 3.2), layout="constrained")
    axes = fig.subplots(1, len(dims), squeeze=False)[0]
    for ax, d in zip(axes, dims):
        for (name, values), style in zip(runs, ("-", "--", ":", "-.")):
            if d < values.shape[-1]:
                ax.plot(range(vh), values[batch, :vh, d], style, label=name)
        unit = f" ({hows[d]})" if decoded and hows and d < len(hows) else ""
        ax.set_title(f"{data.labels[d]}{unit}", fontsize=9)
        ax.set_xlabel("horizon step")
    axes[0].set_ylabel("decoded" if decoded else "normalised")
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{data.tag}, batch element {batch}")
    return fig


def valid_heatmap(data: TagData):
    """|delta| (max over the batch) over the valid region only, its dims labelled by action group."""
    from groot_lib.compare.plots import parity_heatmap

    vh, vd = data.valid
    delta = np.abs(data.lerobot.astype(np.float64) - data.original.astype(np.float64)).max(axis=0)[:vh, :vd]
    fig = parity_heatmap(delta, title=f"{data.tag}: |delta| over the valid region")
    ax = fig.axes[0]
    ax.set_xticks(range(vd), data.labels[:vd], rotation=90, fontsize=6 if vd > 20 else 8)
    return fig


def histogram(data: TagData):
    """|delta| distribution, valid cells vs padding (log x; exact zeros counted apart)."""
    from matplotlib.figure import Figure

    delta = np.abs(data.lerobot.astype(np.float64) - data.original.astype(np.float64))
    inside = data.layout.valid_mask(delta.shape)
    fig = Figure(figsize=(6, 3), layout="constrained")
    ax = fig.add_subplot()
    positive = delta[delta > 0]
    if positive.size:
        bins = np.logspace(np.log10(positive.min()), np.log10(positive.max()) + 1e-9, 40)
        for name, mask in (("valid", inside), ("padding", ~inside)):
            values = delta[mask & (delta > 0)]
            ax.hist(values, bins=bins, alpha=0.6, label=f"{name} ({values.size} nonzero)")
        ax.set_xscale("log")
        ax.legend(fontsize=8)
    ax.set_title(f"{data.tag}: |delta| histogram; {int((delta == 0).sum())} of {delta.size} cells exactly equal",
                 fontsize=9)
    ax.set_xlabel("|delta|")
    return fig
