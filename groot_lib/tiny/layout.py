"""The embedded tiny GR00T N1.7 default: where it lives and what its embodiments look like.

Kept free of torch/transformers so every environment (and the test runner) can
ask "is this the embedded default?" without importing a model stack.
"""

from __future__ import annotations

import json
from pathlib import Path

from groot_lib.paths import CHECKPOINTS, REFERENCES

TINY_ROOT = CHECKPOINTS / "tiny"
TINY_CHECKPOINT = TINY_ROOT / "gr00t-n1.7-tiny"
TINY_HF_HOME = TINY_ROOT / "hf_home"
# The original's committed outputs on the tiny default, by the device they were recorded on; CPU-only
# machines without gr00t replay them (RECORDINGS=cuda: a CUDA original, recorded by bench/gpu/check.sh).
RECORDED_ROOTS = {"cpu": REFERENCES / "tiny", "cuda": REFERENCES / "tiny-cuda"}
RECORDED_ROOT = RECORDED_ROOTS["cpu"]

# The original loads config, weights and processor from ``model_name`` and only accepts
# names containing "nvidia/Cosmos-Reason2"; LeRobot hard-codes the real 2B backbone
# config for exactly "nvidia/Cosmos-Reason2-2B" and always reads processor assets from
# that id. So the tiny backbone gets its own id, and its tokenizer/processor assets are
# also cached under the 2B id.
TINY_BACKBONE_ID = "nvidia/Cosmos-Reason2-tiny-random"
LEROBOT_PROCESSOR_ID = "nvidia/Cosmos-Reason2-2B"

# Structural values LeRobot's preprocessor assumes for N1.7.
MAX_STATE_DIM = 132
MAX_ACTION_DIM = 132
ACTION_HORIZON = 40
MAX_NUM_EMBODIMENTS = 32
NUM_TIMESTEP_BUCKETS = 1000

# Small real image path: albumentations SmallestMaxSize -> 0.95 centre crop -> resize.
IMAGE_EDGE = 64
CROP_FRACTION = 0.95

# Embodiments both implementations know, with deliberately different layouts:
# camera count, video history, state grouping, action horizon, relative actions.
EMBODIMENTS: dict[str, dict] = {
    "libero_sim": {
        "cameras": ["image", "wrist_image"],
        "video_delta": [0],
        "state": {"x": 1, "y": 1, "z": 1, "roll": 1, "pitch": 1, "yaw": 1, "gripper": 1},
        "action": {"x": 1, "y": 1, "z": 1, "roll": 1, "pitch": 1, "yaw": 1, "gripper": 1},
        "relative": [],
        "action_horizon": 16,
        "language": "annotation.human.action.task_description",
    },
    "oxe_droid_relative_eef_relative_joint": {
        "cameras": ["exterior_image_1_left", "wrist_image_left"],
        "video_delta": [-15, 0],
        "state": {"eef_9d": 9, "gripper_position": 1, "joint_position": 7},
        "action": {"eef_9d": 9, "gripper_position": 1, "joint_position": 7},
        "relative": ["eef_9d", "joint_position"],
        "action_horizon": 40,
        "language": "annotation.language.language_instruction",
    },
    "simpler_env_widowx": {
        "cameras": ["image_0"],
        "video_delta": [0],
        "state": {"eef": 8},
        "action": {"eef": 7},
        "relative": [],
        "action_horizon": 8,
        "language": "annotation.human.action.task_description",
    },
    "unitree_g1_full_body_with_waist_height_nav_cmd": {
        "cameras": ["ego_view"],
        "video_delta": [0],
        "state": {
            "left_leg": 6,
            "right_leg": 6,
            "waist": 3,
            "left_arm": 7,
            "right_arm": 7,
            "left_hand": 7,
            "right_hand": 7,
        },
        "action": {
            "left_arm": 7,
            "right_arm": 7,
            "left_hand": 7,
            "right_hand": 7,
            "waist": 3,
            "base_height_command": 1,
            "navigate_command": 3,
        },
        "relative": [],
        "action_horizon": 30,
        "language": "annotation.human.task_description",
    },
}

# The variants checkpoint (``gr00t-n1.7-tiny-variants``): the same model and weights as the tiny default, with
# the embodiment configs real fine-tunes produce and the default does not have. ``action_configs`` None writes
# null (as a fine-tune's modality config may); ``mean_std`` lists groups normalised by mean/std instead of
# min/max (the modality config's ``mean_std_embedding_keys``, for state and action alike).
VARIANT_EMBODIMENTS: dict[str, dict] = {
    "new_embodiment": {
        "cameras": ["front"],
        "video_delta": [0],
        "state": {"joints": 6, "gripper": 1},
        "action": {"joints": 6, "gripper": 1},
        "relative": [],
        "action_horizon": 16,
        "language": "annotation.human.task_description",
        "action_configs": None,
    },
    "robocasa_panda_omron": {
        "cameras": ["left_view", "wrist_view"],
        "video_delta": [0],
        "state": {"eef_pos": 3, "gripper": 2},
        "action": {"eef_pos": 3, "gripper": 1, "base": 4},
        "relative": [],
        "action_horizon": 16,
        "language": "annotation.human.task_description",
        "mean_std": ["eef_pos"],
    },
}
VARIANTS_CHECKPOINT = TINY_ROOT / "gr00t-n1.7-tiny-variants"

# Projector slots, as both implementations map these tags.
EMBODIMENT_IDS = {
    "libero_sim": 2,
    "oxe_droid_relative_eef_relative_joint": 24,
    "simpler_env_widowx": 1,
    "unitree_g1_full_body_with_waist_height_nav_cmd": 25,
}
VARIANT_IDS = {"new_embodiment": 10, "robocasa_panda_omron": 10}  # gr00t groups both on the fine-tune slot

# The committed checkpoints, each with the original's recordings by device (what serves when gr00t is absent).
EMBEDDED = {TINY_CHECKPOINT: RECORDED_ROOTS,
            VARIANTS_CHECKPOINT: {"cpu": REFERENCES / "tiny-variants"}}


def embedded(checkpoint: str | Path) -> Path | None:
    """The committed checkpoint ``checkpoint`` is (by resolved path), or None."""
    try:
        resolved = Path(checkpoint).expanduser().resolve()
    except OSError:
        return None
    return next((root for root in EMBEDDED if root.resolve() == resolved), None)


def recorded_root(which: str = "cpu", checkpoint: str | Path = TINY_CHECKPOINT) -> Path | None:
    """Where the recordings of ``checkpoint`` on ``which`` device live (None: never recorded there)."""
    root = embedded(checkpoint)
    return EMBEDDED[root].get(which) if root else None


def recordings_provenance(which: str = "cpu", checkpoint: str | Path = TINY_CHECKPOINT) -> dict | None:
    """provenance.json of one recorded set (None when that set was never recorded)."""
    root = recorded_root(which, checkpoint)
    path = root / "provenance.json" if root else None
    return json.loads(path.read_text()) if path and path.is_file() else None


def recordings_gap(seed: int, batch_size: int, variants: list[str], which: str = "cpu",
                   checkpoint: str | Path = TINY_CHECKPOINT, sweep: int = 0) -> str | None:
    """None when the committed recordings cover these settings (``sweep``: the input-sweep cases up to, not
    including, this index), else what they cover, what was asked, what to do."""
    root = recorded_root(which, checkpoint)
    provenance = recordings_provenance(which, checkpoint)
    if root is None:
        return (f"{checkpoint} has no {which} recordings (only {sorted(EMBEDDED.get(embedded(checkpoint), {}))}); "
                "use RECORDINGS=cpu, or provide gr00t: `make setup GR00T_SRC=/path/to/Isaac-GR00T`")
    if provenance is None:
        return (f"no {which} recordings exist ({root} has no provenance.json); record them on a GPU machine with "
                "bench/gpu/check.sh, or use RECORDINGS=cpu")
    missing = [v for v in variants if v not in provenance.get("variants", [])]
    recorded_sweep = int(provenance.get("sweep", 0))
    if (seed, batch_size) == (provenance.get("seed"), provenance.get("batch_size")) and not missing \
            and sweep <= recorded_sweep:
        return None
    return (f"the recordings in {root} cover only seed={provenance.get('seed')}, batch_size="
            f"{provenance.get('batch_size')}, variants={provenance.get('variants')}, input-sweep cases < {recorded_sweep}; "
            f"asked for seed={seed}, batch_size={batch_size}, variants={variants}, input-sweep cases < {sweep}. Use "
            f"those settings (SWEEP_FROM + SWEEP <= {recorded_sweep}), or provide "
            "gr00t: `make setup GR00T_SRC=/path/to/Isaac-GR00T`")


def is_embedded_default(checkpoint: str | Path) -> bool:
    """True when ``checkpoint`` is the committed tiny default (by resolved path)."""
    return embedded(checkpoint) == TINY_CHECKPOINT


def is_embedded(checkpoint: str | Path) -> bool:
    """True for any committed checkpoint: it has recordings and uses the tiny HF cache (``TINY_HF_HOME``)."""
    return embedded(checkpoint) is not None


def hf_home_for(checkpoint: str | Path | None, hf_home: str | Path | None) -> str | None:
    """The HF cache a run uses, one rule for pre-flight, the notebooks and doctor: the one given, else the tiny
    default's isolated cache for a committed checkpoint (none given is the tiny default), else None ($HF_HOME)."""
    if hf_home:
        return str(hf_home)
    return str(TINY_HF_HOME) if not checkpoint or is_embedded(checkpoint) else None
