"""RNG-independent replay on the real LeRobot model: injected noise makes the seed irrelevant."""

from conftest import run_in_env

SNIPPET = """
import json, numpy as np
from groot_lib.backends import process
from groot_lib.tiny import layout as L
process.configure_process(L.TINY_HF_HOME)
from groot_lib.core import checkpoint as ck
from groot_lib.backends import lerobot as lb
from groot_lib.core.artifact import artifact_path, load_artifact
from groot_lib.core.variants import get_variant
art = load_artifact(artifact_path(L.RECORDED_ROOT, "libero_sim"))
with lb.load(L.TINY_CHECKPOINT, ck.embodiment_layout(L.TINY_CHECKPOINT, "libero_sim"),
             variant=get_variant("fp32-sdpa"), device="cpu") as bundle:
    inj = [lb.sample(bundle, art.inputs, seed=s, noise=art.initial_noise) for s in (1, 2)]
    seeded = [lb.sample(bundle, art.inputs, seed=s) for s in (1, 2)]
print(json.dumps({
    "injected_equal": bool(np.array_equal(inj[0]["action_pred"], inj[1]["action_pred"])),
    "injected_noise_used": bool(np.array_equal(inj[0]["initial_noise"], art.initial_noise)),
    "seeded_differ": float(np.abs(seeded[0]["action_pred"] - seeded[1]["action_pred"]).max()),
    "seeded_noise_differs": bool(not np.array_equal(seeded[0]["initial_noise"], seeded[1]["initial_noise"])),
}))
"""


def test_injected_noise_makes_two_seeds_identical():
    result = run_in_env("groot-lerobot", SNIPPET)
    assert result["injected_equal"] and result["injected_noise_used"]
    assert result["seeded_noise_differs"] and result["seeded_differ"] > 1e-3
