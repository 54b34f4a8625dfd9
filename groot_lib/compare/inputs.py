"""Where a preprocessing difference is: state elements named, token sequences aligned, camera views compared.

Why: "``pixel_values`` differs" does not tell a crop offset from an interpolation change, "``input_ids``
differs" hides *which* token, and a flat state index hides which joint. These turn a failing collated tensor
into words a researcher can act on. numpy only: the tokenizer's decode is passed in by the caller.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from groot_lib.core.checkpoint import EmbodimentLayout

STAT_KEYS = ("min", "max", "mean", "std", "q01", "q99")


def state_labels(layout: EmbodimentLayout, width: int | None = None) -> list[str]:
    """'group[index]' for each state dim in the modality config's order; 'pad[i]' up to ``width``."""
    names = [f"{group}[{i}]" for group, size in layout.state_dims.items() for i in range(size)]
    return names + [f"pad[{i}]" for i in range(len(names), width or len(names))]


def state_elements(layout: EmbodimentLayout, statistics: dict, raw: dict[str, np.ndarray], ours: np.ndarray,
                   theirs: np.ndarray, limit: int = 5) -> list[dict]:
    """The state elements that differ most, each named (batch, group[index]) with both normalised values, the
    raw value and the group's normalisation statistics (statistics.json)."""
    ours, theirs = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    if ours.shape != theirs.shape or ours.ndim < 2:
        return []
    labels = state_labels(layout, ours.shape[-1])
    delta = np.abs(ours - theirs).reshape(ours.shape[0], -1, ours.shape[-1]).max(axis=1)  # (batch, dim)
    rows = []
    for flat in np.argsort(-delta, axis=None, kind="stable")[:limit]:
        b, d = (int(i) for i in np.unravel_index(flat, delta.shape))
        if delta[b, d] == 0:
            break
        row = {"element": f"batch {b}, {labels[d]}", "LeRobot": float(ours.reshape(ours.shape[0], -1, ours.shape[-1])[b, -1, d]),
               "original": float(theirs.reshape(theirs.shape[0], -1, theirs.shape[-1])[b, -1, d]),
               "|delta|": float(delta[b, d])}
        group, _, index = labels[d].partition("[")
        index = int(index.rstrip("]")) if index.rstrip("]").isdigit() else None
        if group in layout.state_dims and index is not None:
            values = raw.get(f"state.{group}")
            if values is not None:
                row["raw"] = float(np.asarray(values)[b].reshape(-1, layout.state_dims[group])[-1, index])
            stats = (statistics.get("state") or {}).get(group, {})
            row.update({k: float(np.asarray(stats[k]).reshape(-1)[index]) for k in STAT_KEYS if k in stats})
        rows.append(row)
    return rows


def token_alignment(ours_ids, theirs_ids, ours_mask=None, theirs_mask=None, *,
                    decode: Callable[[list[int]], list[str]] | None = None, context: int = 4) -> list[dict]:
    """Per batch row: both token sequences (padding dropped by the attention mask), the first position where
    they differ (among the real tokens, and as an index into the original's padded ``input_ids``) with
    ``context`` tokens either side decoded, and both lengths. Rows that agree are left out."""
    decode = decode or (lambda ids: [str(i) for i in ids])
    ours_ids, theirs_ids = np.asarray(ours_ids), np.asarray(theirs_ids)
    rows = []
    for b in range(min(len(ours_ids), len(theirs_ids))):
        a = ours_ids[b][np.asarray(ours_mask)[b].astype(bool)] if ours_mask is not None else ours_ids[b]
        e = theirs_ids[b][np.asarray(theirs_mask)[b].astype(bool)] if theirs_mask is not None else theirs_ids[b]
        n = min(len(a), len(e))
        differs = np.nonzero(a[:n] != e[:n])[0]
        first = int(differs[0]) if differs.size else (n if len(a) != len(e) else None)
        if first is None:
            continue
        lo = max(0, first - context)
        real = np.nonzero(np.asarray(theirs_mask)[b])[0] if theirs_mask is not None else np.arange(len(e))
        rows.append({"batch": b, "first differing position": first,
                     "index in input_ids": int(real[first]) if first < len(real) else None,
                     "LeRobot length": int(len(a)),
                     "original length": int(len(e)),
                     "LeRobot": " ".join(decode([int(t) for t in a[lo:first + context + 1]])),
                     "original": " ".join(decode([int(t) for t in e[lo:first + context + 1]])),
                     "context from": lo})
    return rows


def unpatchify(patches: np.ndarray, grid_thw, *, merge: int = 2, channels: int = 3, temporal: int = 2) -> np.ndarray:
    """One image's Qwen-VL patch rows (grid_t*grid_h*grid_w, C*T*P*P) back to (T*grid_t, C, H, W): the inverse of
    the image processor's (t, T, C, h/m, m, P, w/m, m, P) -> (t, h/m, w/m, m, m, C, T, P, P) flattening."""
    t, h, w = (int(x) for x in grid_thw)
    size = int(round((patches.shape[1] / (channels * temporal)) ** 0.5))
    x = np.asarray(patches).reshape(t, h // merge, w // merge, merge, merge, channels, temporal, size, size)
    return x.transpose(0, 6, 5, 1, 3, 7, 2, 4, 8).reshape(t * temporal, channels, h * size, w * size)


def view_differences(ours_pv, theirs_pv, ours_grid, theirs_grid, names: list[str] | None = None) -> list[dict]:
    """Per image (camera view): max/mean |delta| over its patches, and both images rebuilt for display.
    Views whose patch grids differ (a resize change) are reported with both grids and not subtracted."""
    ours_pv, theirs_pv = np.asarray(ours_pv, dtype=np.float32), np.asarray(theirs_pv, dtype=np.float32)
    ours_grid, theirs_grid = np.asarray(ours_grid), np.asarray(theirs_grid)
    rows, a0, e0 = [], 0, 0
    for k in range(min(len(ours_grid), len(theirs_grid))):
        na, ne = int(np.prod(ours_grid[k])), int(np.prod(theirs_grid[k]))
        a, e = ours_pv[a0:a0 + na], theirs_pv[e0:e0 + ne]
        a0, e0 = a0 + na, e0 + ne
        row = {"view": (names[k] if names and k < len(names) else f"image {k}"),
               "grid (t, h, w)": f"{tuple(int(x) for x in theirs_grid[k])}"}
        if na != ne or not np.array_equal(ours_grid[k], theirs_grid[k]) or a.shape != e.shape:
            row.update({"max |delta|": None, "mean |delta|": None,
                        "note": f"patch grids differ: LeRobot {tuple(int(x) for x in ours_grid[k])}, original "
                                f"{tuple(int(x) for x in theirs_grid[k])}"})
        else:
            delta = np.abs(a - e)
            row.update({"max |delta|": float(delta.max()) if delta.size else 0.0,
                        "mean |delta|": float(delta.mean()) if delta.size else 0.0})
            try:
                row["images"] = (unpatchify(e, theirs_grid[k]), unpatchify(a, ours_grid[k]))
            except ValueError:
                row["note"] = "patch layout not recognised: no image rebuilt"
        rows.append(row)
    return rows


def view_names(layout: EmbodimentLayout, batch: int, n_images: int) -> list[str]:
    """'batch b, <camera>' for each image, '... , frame t of T' when there are several frames per camera, in the order
    both processors take them: per sample, frame by frame, cameras as the modality config lists them within a frame
    (gr00t stacks (T, V) and flattens it frame-major)."""
    per_sample = n_images // max(batch, 1)
    cameras = layout.cameras
    if batch * per_sample != n_images or not cameras or per_sample % len(cameras):
        return [f"image {k}" for k in range(n_images)]
    frames = per_sample // len(cameras)
    if frames == 1:
        return [f"batch {b}, {c}" for b in range(batch) for c in cameras]
    return [f"batch {b}, {cameras[j % len(cameras)]}, frame {j // len(cameras) + 1} of {frames}"
            for b in range(batch) for j in range(per_sample)]
