import os

import pytest

from groot_lib.backends import process

from groot_lib.backends import tensors
from groot_lib.core.errors import VariantUnavailableError
from groot_lib.core.variants import VARIANTS, check_attention_ran, get_variant, plan, require_runnable


def test_flatten_unflatten_round_trip():
    nested = {"inputs": {"input_ids": 1, "state": 2}, "x": 3}
    flat = tensors.flatten(nested)
    assert flat == {"inputs.input_ids": 1, "inputs.state": 2, "x": 3}
    assert tensors.unflatten(flat) == nested


def test_configure_process_clears_gr00t_load_switches(monkeypatch, tmp_path):
    for name in ("HF_HOME", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "NO_ALBUMENTATIONS_UPDATE"):
        monkeypatch.setenv(name, "restored-after-test")
    monkeypatch.setenv("GROOT_SKIP_HF_MODEL_WEIGHTS", "1")
    monkeypatch.setenv("PYTEST_CURRENT_TEST", "x")
    seen = process.configure_process(tmp_path, offline=True)
    assert seen["cleared_env"] == ["GROOT_SKIP_HF_MODEL_WEIGHTS", "PYTEST_CURRENT_TEST"]
    assert "GROOT_SKIP_HF_MODEL_WEIGHTS" not in os.environ
    assert os.environ["HF_HOME"] == str(tmp_path.resolve()) and os.environ["HF_HUB_OFFLINE"] == "1"


def test_flash_variant_is_refused_not_downgraded_on_cpu():
    with pytest.raises(VariantUnavailableError) as err:
        require_runnable(get_variant("bf16-flash"), "cpu", kernel="groot-lerobot")
    message = str(err.value)
    assert "CUDA device" in message and "flash-attn" in message and "Not falling back to SDPA" in message
    require_runnable(get_variant("bf16-sdpa"), "cpu", kernel="groot-lerobot")  # no error


def test_attention_actually_run_is_checked():
    with pytest.raises(VariantUnavailableError, match="ran attention 'sdpa'"):
        check_attention_ran(VARIANTS["bf16-flash"], "sdpa", what="LeRobot's backbone")
    with pytest.raises(VariantUnavailableError, match="unknown variant"):
        get_variant("fp8")


def test_sdpa_flash_variant_is_refused_on_cpu_naming_the_backend():
    """bf16-sdpa-flash = torch SDPA forced to FLASH_ATTENTION (no flash-attn package): a CUDA sm80+ GPU or nothing."""
    variant = get_variant("bf16-sdpa-flash")
    assert variant.needs_cuda and variant.attention == "sdpa" and variant.sdpa_backend == "FLASH_ATTENTION"
    with pytest.raises(VariantUnavailableError) as err:
        require_runnable(variant, "cpu", kernel="groot-lerobot")
    assert "FLASH_ATTENTION backend" in str(err.value) and "CUDA GPU (sm80+)" in str(err.value)
    assert "Not falling back" in str(err.value)
    require_runnable(variant, "cuda:0", kernel="groot-lerobot")  # no package needed: the GPU is checked at load
    runnable, refused = plan(["fp32-sdpa", "bf16-sdpa-flash"], "cpu", kernel="groot-original")
    assert [v.name for v in runnable] == ["fp32-sdpa"] and "FLASH_ATTENTION" in refused["bf16-sdpa-flash"]
    assert not get_variant("bf16-sdpa").needs_cuda
