"""Precision/attention variants and the honest check of whether one can run here.

Both implementations silently fall back from flash-attention to SDPA; the
workbench refuses instead, naming what is missing, and reports what really ran.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from groot_lib.core.errors import VariantUnavailableError


@dataclass(frozen=True)
class Variant:
    name: str
    dtype: str  # torch dtype name
    attention: str  # transformers attn_implementation
    # torch SDPA forced to one backend (a torch.nn.attention.SDPBackend name): only that backend may run, so an
    # unsupported case raises instead of falling back silently
    sdpa_backend: str | None = None

    @property
    def needs_cuda(self) -> bool:
        return self.attention == "flash_attention_2" or self.sdpa_backend == "FLASH_ATTENTION"


VARIANTS = {
    "fp32-sdpa": Variant("fp32-sdpa", "float32", "sdpa"),
    "bf16-sdpa": Variant("bf16-sdpa", "bfloat16", "sdpa"),
    # the flash-attn package's kernels, as the original's default configuration uses them
    "bf16-flash": Variant("bf16-flash", "bfloat16", "flash_attention_2"),
    # PyTorch's own vendored FlashAttention-2 kernels behind SDPA: no extra package, an sm80+ GPU
    "bf16-sdpa-flash": Variant("bf16-sdpa-flash", "bfloat16", "sdpa", sdpa_backend="FLASH_ATTENTION"),
}
DEFAULT_VARIANT = "fp32-sdpa"


def get_variant(name: str) -> Variant:
    try:
        return VARIANTS[name]
    except KeyError:
        raise VariantUnavailableError(f"unknown variant {name!r}; known: {', '.join(VARIANTS)}") from None


def require_runnable(variant: Variant, device: str, *, kernel: str) -> None:
    """Raise VariantUnavailableError naming exactly what this kernel lacks (torch-free: the GPU's compute
    capability is checked at load, by ``backends.contract.check_sdpa_backend``)."""
    if variant.sdpa_backend == "FLASH_ATTENTION" and not str(device).startswith("cuda"):
        raise VariantUnavailableError(
            f"variant {variant.name!r} forces torch SDPA's FLASH_ATTENTION backend (PyTorch's vendored FlashAttention-2 "
            f"kernels), which runs only on a CUDA GPU (sm80+); the {kernel} kernel runs on {device!r}. Not falling "
            "back to another SDPA backend: that would be a different variant.")
    if variant.attention != "flash_attention_2":
        return
    missing = []
    if not str(device).startswith("cuda"):
        missing.append(f"a CUDA device (running on {device!r})")
    if importlib.util.find_spec("flash_attn") is None:
        missing.append("the flash-attn package (pip install flash-attn)")
    if missing:
        raise VariantUnavailableError(
            f"variant {variant.name!r} needs flash_attention_2, but the {kernel} kernel lacks "
            f"{' and '.join(missing)}. Not falling back to SDPA: that would be a different variant."
        )


def check_attention_ran(variant: Variant, actual: str | None, *, what: str) -> None:
    if actual != variant.attention:
        raise VariantUnavailableError(
            f"{what} ran attention {actual!r}, but variant {variant.name!r} asked for {variant.attention!r}"
        )


def plan(names, device: str, *, kernel: str) -> tuple[list[Variant], dict[str, str]]:
    """Requested variant names -> (runnable here, fp32 reference first; {refused name: why}).

    A refusal is reported, never silently swapped for another variant.
    """
    ordered = sorted(dict.fromkeys(names or [DEFAULT_VARIANT]), key=lambda n: n != DEFAULT_VARIANT)
    runnable, refused = [], {}
    for name in ordered:
        variant = get_variant(name)
        try:
            require_runnable(variant, device, kernel=kernel)
        except VariantUnavailableError as exc:
            refused[name] = str(exc)
            continue
        runnable.append(variant)
    if not runnable:
        raise VariantUnavailableError("no requested variant can run here: " + " ".join(refused.values()))
    return runnable, refused
