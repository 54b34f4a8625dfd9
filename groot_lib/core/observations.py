"""Deterministic raw observations built from a checkpoint's own metadata.

One recipe for every embodiment: camera/state/language keys and dimensions come
from the checkpoint, values from a seeded generator. The recipe is versioned
(OBSERVATION_RECIPE) because artifacts are only comparable when it matches.
"""

from __future__ import annotations

import numpy as np

from groot_lib.core.checkpoint import EmbodimentLayout

OBSERVATION_RECIPE = "smooth-noise-v1"
IMAGE_SHAPE = (72, 96)  # not square, so resize + crop geometry is exercised
INSTRUCTIONS = [
    "Pick up the red cube, and place it in the bowl!",
    "Open the TOP drawer of the cabinet.",
    "Put the bowl on the plate; then close the microwave door.",
    "Walk forward and wave with the right hand.",
]


def _image(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Smooth gradients plus blobs and noise: structured enough that resizing matters."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    channels = []
    for _ in range(3):
        a, b, c = rng.uniform(-1, 1, 3)
        base = 127 + 60 * np.sin(a * xx / 9 + b * yy / 7 + c * 3)
        cy, cx, r = rng.uniform(0, height), rng.uniform(0, width), rng.uniform(6, 20)
        blob = 80 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
        channels.append(base + blob + rng.normal(0, 12, (height, width)))
    return np.clip(np.stack(channels, axis=-1), 0, 255).astype(np.uint8)


def build_observations(
    layout: EmbodimentLayout,
    *,
    seed: int,
    batch_size: int,
    statistics: dict | None = None,
    image_shape: tuple[int, int] = IMAGE_SHAPE,
) -> dict[str, np.ndarray]:
    """Return flat raw observations: ``video.<cam>`` (B,T,H,W,3) uint8, ``state.<key>``
    (B,1,D) float32 and ``language.<key>`` (B,) str.

    States are drawn around the checkpoint's q01..q99 range, with some values
    outside it so normalisation clipping is exercised.
    """
    rng = np.random.default_rng([seed, sum(map(ord, layout.tag))])
    obs: dict[str, np.ndarray] = {}
    for cam in layout.cameras:
        frames = [[_image(rng, *image_shape) for _ in range(layout.video_horizon)] for _ in range(batch_size)]
        obs[f"video.{cam}"] = np.asarray(frames, dtype=np.uint8)
    state_stats = (statistics or {}).get("state", {})
    for key, dim in layout.state_dims.items():
        entry = state_stats.get(key, {})
        lo = np.asarray(entry.get("q01", entry.get("min", [-1.0] * dim)), dtype=np.float64)
        hi = np.asarray(entry.get("q99", entry.get("max", [1.0] * dim)), dtype=np.float64)
        span = np.maximum(hi - lo, 1e-3)
        values = rng.uniform(lo - 0.1 * span, hi + 0.1 * span, size=(batch_size, 1, dim))
        obs[f"state.{key}"] = values.astype(np.float32)
    picks = [INSTRUCTIONS[(seed + i) % len(INSTRUCTIONS)] for i in range(batch_size)]
    obs[f"language.{layout.language_key}"] = np.asarray(picks, dtype=str)
    return obs


TRAINING_RECIPE = "action-chunk-v1"


def build_action_chunk(layout: EmbodimentLayout, *, seed: int, batch_size: int,
                       statistics: dict | None = None) -> dict[str, np.ndarray]:
    """A training sample's action chunk: ``action.<group>`` (B, horizon, D) float32, absolute (a relative group is
    made relative to the state by each side's own training preprocessing), drawn around the checkpoint's action
    q01..q99 range with some values outside it, so clipping and the relative conversion are both exercised."""
    rng = np.random.default_rng([seed, sum(map(ord, layout.tag)), 1])
    stats = (statistics or {}).get("action", {})
    chunk: dict[str, np.ndarray] = {}
    for key, dim in layout.action_dims.items():
        entry = stats.get(key, {})
        lo = np.asarray(entry.get("q01", entry.get("min", [-1.0] * dim)), dtype=np.float64)
        hi = np.asarray(entry.get("q99", entry.get("max", [1.0] * dim)), dtype=np.float64)
        span = np.maximum(hi - lo, 1e-3)
        values = rng.uniform(lo - 0.1 * span, hi + 0.1 * span, size=(batch_size, layout.action_horizon, dim))
        chunk[f"action.{key}"] = values.astype(np.float32)
    return chunk
