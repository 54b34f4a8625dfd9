"""The input sweep (``SWEEP=N``): N more observations per embodiment, each stressing something the one fixed
observation does not, so a parity claim covers inputs a robot really sends.

Case ``i`` cycles through four profiles (and a fresh seed each time round):

* prompts of different lengths in one batch (left padding), punctuation, UPPER CASE, digits, non-ASCII;
* batch sizes 1, 3 and 4;
* images with structure: smooth gradients, hard edges (checkerboards, stripes), noise; at the tag's real camera
  resolution, or at an odd small size that exercises resize and crop;
* states inside the checkpoint's range, at its edges, and well outside it (clipping).

Deterministic from (seed, index, tag): both kernels and every rerun build the same bytes. Versioned by
``SWEEP_RECIPE`` because stored results are only comparable when it matches. Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from groot_lib.core.checkpoint import EmbodimentLayout

SWEEP_RECIPE = "sweep-v1"

# Real camera resolutions (H, W) of the tags' robots: LIBERO and RoboCasa render 256x256, DROID's ZED cameras are
# stored at 180x320, SimplerEnv renders WidowX (Bridge) and Google scenes at 480x640 and 256x320, the Unitree G1's
# head camera streams 480x640. Unknown tags get 224x224.
CAMERA_RESOLUTIONS = {
    "libero_sim": (256, 256),
    "oxe_droid_relative_eef_relative_joint": (180, 320),
    "simpler_env_widowx": (480, 640),
    "simpler_env_google": (256, 320),
    "unitree_g1_full_body_with_waist_height_nav_cmd": (480, 640),
    "robocasa_panda_omron": (256, 256),
    "new_embodiment": (224, 224),
}
DEFAULT_RESOLUTION = (224, 224)
ODD_RESOLUTION = (61, 83)  # neither square nor a multiple of the patch size

PROMPTS = [
    "go",
    "Pick up the red cube, and place it in the bowl!",
    "OPEN THE TOP DRAWER",
    "move 3 cm left, then 10 cm up; repeat 2x.",
    "Greif die Tasse — ça va? 把杯子放到盘子上 🙂, then move 3 cm LEFT!",
    "Put the bowl on the plate; then close the microwave door, turn the knob to 180 degrees, and wait "
    "(about 5 s) before you wipe the table from left to right with the blue sponge.",
    "fold   the towel ,then  stack it",
]


@dataclass(frozen=True)
class SweepCase:
    index: int
    seed: int
    batch_size: int
    images: str  # gradient | edges | noise | mixed (edges, noise, gradient rotating over cameras/frames/samples)
    resolution: tuple[int, int]
    states: str  # inside | edges | outside
    prompts: tuple[str, ...]

    @property
    def name(self) -> str:
        return case_name(self.index)

    def describe(self) -> dict:
        """The inputs in words, for the worst case's row."""
        return {"case": self.name, "seed": self.seed, "batch": self.batch_size, "images": self.images,
                "resolution": f"{self.resolution[0]}x{self.resolution[1]}", "states": self.states,
                "prompts": list(self.prompts)}


SWEEP_DIR = "sweep"  # <artifacts>/sweep/<case>/<tag>.npz, and the same under a report's lerobot/ folder


def case_name(index: int) -> str:
    return f"case-{index:02d}"


def case_dirs(root) -> list:
    """The sweep case folders under an artifacts folder ``root`` (``<root>/sweep/<case>/``), in case order."""
    from pathlib import Path

    folder = Path(root) / SWEEP_DIR
    return sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def case_path(root, case: str, tag: str):
    """Where ``tag``'s artifact (or LeRobot replay) of sweep ``case`` lives under ``root``."""
    from pathlib import Path

    from groot_lib.core.artifact import artifact_path

    return artifact_path(Path(root) / SWEEP_DIR / case, tag)


# (batch, images, real resolution?, states, prompt picks). The first two alone cover every kind of input (the
# committed recordings hold those two); later ones recombine them.
PROFILES = (
    (1, "gradient", True, "outside", (4,)),
    (3, "mixed", False, "edges", (0, 2, 5)),
    (4, "edges", True, "inside", (3, 6, 1, 4)),
    (3, "noise", False, "outside", (5, 0, 3)),
)


def case(layout: EmbodimentLayout, index: int, seed: int = 0) -> SweepCase:
    batch, images, real, states, picks = PROFILES[index % len(PROFILES)]
    rotation = index // len(PROFILES)  # later rounds: other prompts, other seeds
    resolution = CAMERA_RESOLUTIONS.get(layout.tag, DEFAULT_RESOLUTION) if real else ODD_RESOLUTION
    prompts = tuple(PROMPTS[(p + rotation) % len(PROMPTS)] for p in picks)
    return SweepCase(index, seed * 1000 + 101 + index, batch, images, resolution, states, prompts)


def _frame(rng: np.random.Generator, pattern: str, height: int, width: int) -> np.ndarray:
    """One uint8 (H, W, 3) frame; smooth and hard-edged patterns compress well, so real resolutions stay small."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    if pattern == "gradient":  # 32 levels per channel: still a ramp for the resize, and 7x smaller stored
        a, b = rng.uniform(0.2, 1.0, 2)
        frame = np.stack([255 * (a * yy / height + (1 - a) * xx / width), 255 * (b * xx / width),
                          255 * (1 - yy / height)], axis=-1).astype(np.uint8) // 8 * 8
    elif pattern == "edges":
        cell = int(rng.integers(6, 24))
        board = ((yy // cell + xx // cell) % 2) * 200 + 20
        stripes = ((xx // max(2, cell // 3)) % 2) * 255
        frame = np.stack([board, stripes, board[::-1]], axis=-1)
    else:  # noise
        frame = rng.integers(0, 256, (height, width, 3))
    return np.asarray(frame, dtype=np.uint8)


def _states(rng, layout: EmbodimentLayout, statistics: dict, regime: str, batch: int) -> dict[str, np.ndarray]:
    out = {}
    for key, dim in layout.state_dims.items():
        entry = statistics.get("state", {}).get(key, {})
        lo = np.asarray(entry.get("min", [-1.0] * dim), dtype=np.float64)
        hi = np.asarray(entry.get("max", [1.0] * dim), dtype=np.float64)
        span = np.maximum(hi - lo, 1e-3)
        if regime == "inside":
            values = rng.uniform(lo, hi, (batch, 1, dim))
        elif regime == "edges":  # on the boundary, a hair inside and a hair outside
            values = np.where(rng.random((batch, 1, dim)) < 0.5, lo, hi) + rng.choice([-1e-4, 0, 1e-4], (batch, 1, dim)) * span
        else:  # well outside: clipping and any unclipped path show
            values = np.where(rng.random((batch, 1, dim)) < 0.5, lo - 0.5 * span, hi + 0.5 * span)
        out[f"state.{key}"] = values.astype(np.float32)
    return out


def observations(layout: EmbodimentLayout, sweep_case: SweepCase, statistics: dict | None = None) -> dict[str, np.ndarray]:
    """Flat raw observations for one case, in ``core.observations.build_observations``'s layout."""
    rng = np.random.default_rng([sweep_case.seed, sum(map(ord, layout.tag))])
    obs: dict[str, np.ndarray] = {}
    patterns = ("edges", "noise", "gradient")  # "mixed": rotating over cameras, frames and samples

    def pattern(c: int, t: int, b: int) -> str:
        return patterns[(c + t + b) % 3] if sweep_case.images == "mixed" else sweep_case.images

    for c, cam in enumerate(layout.cameras):
        obs[f"video.{cam}"] = np.asarray([[_frame(rng, pattern(c, t, b), *sweep_case.resolution)
                                           for t in range(layout.video_horizon)]
                                          for b in range(sweep_case.batch_size)], dtype=np.uint8)
    obs.update(_states(rng, layout, statistics or {}, sweep_case.states, sweep_case.batch_size))
    prompts = [sweep_case.prompts[i % len(sweep_case.prompts)] for i in range(sweep_case.batch_size)]
    obs[f"language.{layout.language_key}"] = np.asarray(prompts, dtype=str)
    return obs
