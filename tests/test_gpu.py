"""On a CUDA machine: LeRobot under bf16-sdpa-flash (torch SDPA forced to FLASH_ATTENTION) really runs that backend.

Skipped, with the reason, where the LeRobot kernel sees no sm80+ GPU; the CPU path of the same code (the
variant's refusal, naming what is missing) is tested in test_runtime_variants.py and test_workbench.py.
"""

import pytest

from conftest import run_in_env

PROBE = """
import json, torch
ok = torch.cuda.is_available() and torch.cuda.get_device_capability(0) >= (8, 0)
print(json.dumps({"gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None, "ok": ok}))
"""

RUN = """
import json, numpy as np
from groot_lib.backends import process
from groot_lib.tiny import layout as L
process.configure_process(L.TINY_HF_HOME)
from groot_lib.backends import lerobot as lb
from groot_lib.core import checkpoint as ck
from groot_lib.core.artifact import artifact_path, load_artifact
from groot_lib.core.variants import get_variant
art = load_artifact(artifact_path(L.RECORDED_ROOT, "libero_sim"))
layout = ck.embodiment_layout(L.TINY_CHECKPOINT, "libero_sim")
out = {}
for name in ("fp32-sdpa", "bf16-sdpa-flash"):
    with lb.load(L.TINY_CHECKPOINT, layout, variant=get_variant(name), device="cuda") as loaded:
        out[name] = lb.sample(loaded, art.inputs, seed=0, noise=art.initial_noise)["action_pred"]
        out[name + " attention"] = lb.provenance(loaded)["attention"]
print(json.dumps({"gap": float(np.abs(out["fp32-sdpa"] - out["bf16-sdpa-flash"]).max()),
                  "finite": bool(np.isfinite(out["bf16-sdpa-flash"]).all()),
                  "attention": out["bf16-sdpa-flash attention"]}))
"""


@pytest.fixture(scope="module")
def gpu():
    found = run_in_env("groot-lerobot", PROBE)
    if not found["ok"]:
        pytest.skip(f"needs an sm80+ CUDA GPU visible to the groot-lerobot kernel (found: {found['gpu']}); "
                    "the CPU refusal path is tested in test_runtime_variants.py")
    return found


def test_sdpa_flash_runs_flash_attention_on_gpu(gpu):
    result = run_in_env("groot-lerobot", RUN)
    assert result["finite"] and result["attention"] == "sdpa (FLASH_ATTENTION backend forced)", result
    assert 0 < result["gap"] < 0.5, result  # bf16 rounding, not a different model
