"""On a CUDA machine: the workbench on the GPU, and what the forced-flash variant really does there.

Skipped, with the reason, where the kernels see no sm80+ GPU. What they cover also runs on the CPU: the
variant's refusal and the run-time set-aside of a variant without a kernel (test_runtime_variants.py), the
CUDA-recorded original replayed on the CPU (test_workbench.py). bench/gpu/check.sh runs this file there.
"""

import json

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
                    "the CPU side of the same code is tested in test_runtime_variants.py and test_workbench.py")
    return found


def test_sdpa_flash_runs_or_is_refused_with_torchs_reason(gpu):
    """Measured on an H200 (torch 2.11, transformers 5.5.4): SDPA forced to FLASH_ATTENTION has no kernel for
    Qwen3-VL's text attention, which transformers calls with an explicit mask ("Flash Attention does not support
    non-null attn_mask"). The variant must then be refused with torch's reason, never fall back silently; should
    a later stack run it, the attention it recorded must be the forced backend and the gap bf16-sized."""
    try:
        result = lerobot_low_precision_gap("bf16-sdpa-flash", "cuda")
    except AssertionError as exc:
        text = str(exc)
        assert "VariantUnavailableError" in text and "FLASH_ATTENTION has no kernel" in text, text[-2000:]
        assert "torch says:" in text and "Not falling back" in text, text[-2000:]
        return
    assert result["finite"] and result["attention"] == "sdpa (FLASH_ATTENTION backend forced)", result
    assert 0 < result["gap"] < 0.5, result  # bf16 rounding, not a different model


def test_cuda_report_has_exact_fp32_parity(gpu, tmp_path):
    """Both implementations on the GPU, fp32: byte-identical inputs and seed give the same action_pred (0 on an
    H200), and the report says where each side ran."""
    from groot_lib.workbench.workflow import run_report

    code, index = run_report(out_root=tmp_path / "reports", artifacts_root=tmp_path / "store", device="cuda",
                             variants="fp32-sdpa")
    verdicts = json.loads((index.parent / "verdicts.json").read_text())
    model = [r for r in verdicts["rows"] if r["check"] == "model parity"]
    assert code == 0 and model and all(r["verdict"] == "PASS" for r in model), verdicts["rows"]
    assert all(r["x expected gap"] < 10 for r in model) and not verdicts["suspect"], model
    assert verdicts["source"]["machine"].get("gpu"), verdicts["source"]["machine"]
