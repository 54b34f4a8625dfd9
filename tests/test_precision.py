"""bf16 vs fp32 on the tiny default: the gap is real (non-zero) and bounded.

Bound: bf16 keeps 8 significant bits (unit roundoff 2**-8 ~ 3.9e-3 relative); over 4 flow-matching
steps through ~10 matmul layers with |action| up to ~5.6, the measured worst case is 0.052 absolute
(original) — 0.1 allows ~2x headroom while still catching a real fp32/bf16 mix-up, which shows up as
O(1) deltas on these random weights.
"""

import numpy as np

from conftest import run_in_env
from groot_lib.tiny import layout as L
from groot_lib.core.artifact import artifact_path, load_artifact

BOUND = 0.1


def test_original_bf16_gap_is_nonzero_and_bounded(recorded_dir):
    for tag in L.EMBODIMENTS:
        fp32 = load_artifact(artifact_path(recorded_dir, tag))
        bf16 = load_artifact(artifact_path(recorded_dir, tag, "bf16-sdpa"))
        assert np.array_equal(fp32.initial_noise, bf16.initial_noise)  # same start: precision is the only change
        assert bf16.extra["noise"] == "injected from fp32-sdpa"
        gap = np.abs(fp32.action_pred - bf16.action_pred).max()
        assert 1e-4 < gap < BOUND, (tag, gap)


def test_lerobot_bf16_gap_is_nonzero_and_bounded():
    result = run_in_env("groot-lerobot", """
        import json, numpy as np
        from groot_lib.backends import process
        from groot_lib.tiny import layout as L
        process.configure_process(L.TINY_HF_HOME)
        from groot_lib.core import checkpoint as ck
        from groot_lib.backends import lerobot as lb
        from groot_lib.core.artifact import artifact_path, load_artifact
        from groot_lib.core.variants import get_variant
        art = load_artifact(artifact_path(L.RECORDED_ROOT, "libero_sim"))
        layout = ck.embodiment_layout(L.TINY_CHECKPOINT, "libero_sim")
        out = {}
        for name in ("fp32-sdpa", "bf16-sdpa"):
            with lb.load(L.TINY_CHECKPOINT, layout, variant=get_variant(name), device="cpu") as bundle:
                out[name] = lb.sample(bundle, art.inputs, seed=0, noise=art.initial_noise)["action_pred"]
                out[name + " attention"] = bundle.attention
        print(json.dumps({"gap": float(np.abs(out["fp32-sdpa"] - out["bf16-sdpa"]).max()),
                          "attention": out["bf16-sdpa attention"]}))
    """)
    assert result["attention"] == "sdpa"
    assert 1e-4 < result["gap"] < BOUND, result
