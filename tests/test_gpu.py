"""On a CUDA machine: LeRobot under bf16-sdpa-flash (torch SDPA forced to FLASH_ATTENTION) really runs that backend.

Skipped, with the reason, where the LeRobot kernel sees no sm80+ GPU; the CPU path of the same code (the
variant's refusal, naming what is missing) is tested in test_runtime_variants.py and test_workbench.py.
"""

import pytest

from conftest import lerobot_low_precision_gap, run_in_env

PROBE = """
import json, torch
ok = torch.cuda.is_available() and torch.cuda.get_device_capability(0) >= (8, 0)
print(json.dumps({"gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None, "ok": ok}))
"""


@pytest.fixture(scope="module")
def gpu():
    found = run_in_env("groot-lerobot", PROBE)
    if not found["ok"]:
        pytest.skip(f"needs an sm80+ CUDA GPU visible to the groot-lerobot kernel (found: {found['gpu']}); "
                    "the CPU refusal path is tested in test_runtime_variants.py")
    return found


def test_sdpa_flash_runs_flash_attention_on_gpu(gpu):
    result = lerobot_low_precision_gap("bf16-sdpa-flash", "cuda")
    assert result["finite"] and result["attention"] == "sdpa (FLASH_ATTENTION backend forced)", result
    assert 0 < result["gap"] < 0.5, result  # bf16 rounding, not a different model
