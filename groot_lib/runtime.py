"""Process-level setup shared by both kernels: HF cache isolation, seeds, noise, tensors.

Everything here must run BEFORE transformers / huggingface_hub / gr00t are
imported, because they read their environment at import time.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .errors import ParityError

# The original gr00t changes how it loads weights when these are set (pytest's own
# variable makes it prefer the cache; GROOT_SKIP_HF_MODEL_WEIGHTS loads ZEROED weights).
# Kernels started from pytest inherit them, so they are cleared and recorded.
GR00T_LOAD_SWITCHES = ("PYTEST_CURRENT_TEST", "GROOT_HF_LOCAL_FIRST", "GROOT_SKIP_HF_MODEL_WEIGHTS", "GROOT_PATCH_MISTRAL")


def configure_process(hf_home: str | os.PathLike | None, *, offline: bool = True) -> dict[str, Any]:
    """Point HF at ``hf_home`` (offline by default) and neutralise gr00t's test switches.

    Returns what was seen, for the artifact's provenance.
    """
    late = [m for m in ("huggingface_hub", "transformers", "gr00t") if m in sys.modules]
    seen = {name: os.environ.pop(name) for name in GR00T_LOAD_SWITCHES if name in os.environ}
    if seen and "gr00t" in sys.modules:
        raise ParityError(
            f"gr00t was imported while {sorted(seen)} were set, so it may have loaded weights "
            "differently (GROOT_SKIP_HF_MODEL_WEIGHTS loads zeroed weights). Restart the kernel."
        )
    if hf_home is not None:
        hf_home = str(Path(hf_home).expanduser().resolve())
        if late and os.environ.get("HF_HOME") != hf_home:
            raise ParityError(
                f"{late} already imported with HF_HOME={os.environ.get('HF_HOME')!r}; "
                f"HF_HOME={hf_home!r} would be ignored. Call configure_process first (restart the kernel)."
            )
        os.environ["HF_HOME"] = hf_home
        os.environ.pop("HUGGINGFACE_HUB_CACHE", None)
        os.environ.pop("HF_HUB_CACHE", None)
    if offline:
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ["NO_ALBUMENTATIONS_UPDATE"] = "1"  # albumentations phones home on import otherwise
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    return {
        "hf_home": os.environ.get("HF_HOME"),
        "offline": offline,
        "cleared_env": sorted(seen),
    }


def resolve_device(device: str | None) -> str:
    """'auto' -> cuda when available; an explicit 'cuda' without a GPU is an error, not a fallback."""
    import torch

    device = (device or "auto").strip()
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ParityError(f"device {device!r} requested but torch {torch.__version__} sees no CUDA device")
    return device


def free_memory() -> None:
    """After ``del model``: give the memory back so the next variant's model is the only one held."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def peak_rss_mb() -> float:
    """This process's peak resident set size so far (Linux reports KiB)."""
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def seed_everything(seed: int) -> None:
    """Seed every generator the flow-matching sampler could touch, right before sampling."""
    import random

    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def _randn_shape(args: tuple, kwargs: dict) -> tuple[int, ...]:
    size = kwargs.get("size")
    if size is None:
        size = args[0] if len(args) == 1 and isinstance(args[0], (tuple, list)) else args
    return tuple(int(s) for s in size)


@contextmanager
def capture_initial_noise(shape: tuple[int, ...]) -> Iterator[dict]:
    """Record (in fp32) the first ``torch.randn`` of ``shape``: the sampler's initial noise."""
    import torch

    captured: dict = {}
    real = torch.randn

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        if "noise" not in captured and tuple(out.shape) == tuple(shape):
            captured["noise"] = out.detach().float().cpu().numpy()
        return out

    torch.randn = spy
    try:
        yield captured
    finally:
        torch.randn = real


@contextmanager
def inject_initial_noise(noise: np.ndarray) -> Iterator[None]:
    """Make the sampler start from ``noise`` (cast to its dtype/device) instead of drawing.

    RNG streams differ across devices and dtypes; injecting the recorded noise is
    what makes a CPU-vs-CUDA or fp32-vs-bf16 comparison meaningful.
    """
    import torch

    real = torch.randn
    used = []

    def replay(*args, **kwargs):
        if not used and _randn_shape(args, kwargs) == tuple(noise.shape):
            used.append(True)
            return torch.from_numpy(np.ascontiguousarray(noise)).to(
                device=kwargs.get("device") or "cpu", dtype=kwargs.get("dtype") or torch.float32
            )
        return real(*args, **kwargs)

    torch.randn = replay
    try:
        yield
    finally:
        torch.randn = real
    if not used:
        raise ParityError(
            f"injected initial noise of shape {tuple(noise.shape)} was never drawn by the model: "
            "its sampler no longer calls torch.randn with that shape"
        )


def sample_initial_noise(get_action, shape: tuple[int, ...], *, seed: int, noise: np.ndarray | None) -> tuple[Any, np.ndarray | None]:
    """Seed, then run ``get_action()`` either from injected ``noise`` or recording the noise it draws."""
    seed_everything(seed)
    if noise is not None:
        with inject_initial_noise(noise):
            return get_action(), np.asarray(noise, dtype=np.float32)
    with capture_initial_noise(shape) as captured:
        out = get_action()
    return out, captured.get("noise")


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts -> {'a.b': leaf} (the artifact's dotted ``in::`` keys)."""
    if hasattr(tree, "items"):
        out: dict[str, Any] = {}
        for key, value in tree.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: tree}


def unflatten(flat: dict[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for dotted, value in flat.items():
        *parents, leaf = dotted.split(".")
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def to_numpy(value: Any) -> np.ndarray:
    """Tensor -> numpy in its native dtype (bf16, which numpy lacks, becomes fp32)."""
    import torch

    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        if value.dtype == torch.bfloat16:
            value = value.float()
        return value.numpy()
    return np.asarray(value)


def versions(*modules: str) -> dict[str, str | None]:
    """Installed distribution versions, read from metadata without importing the (slow) packages."""
    import importlib.metadata as md

    out = {}
    for name in modules:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = None
    return out


def attention_implementation(model: Any) -> str | None:
    """The attention kernel transformers actually bound (LeRobot and gr00t fall back silently)."""
    config = getattr(model, "config", None)
    return getattr(config, "_attn_implementation", None) if config is not None else None


def setup_notebook(checkpoint: str | None, hf_home: str | None, *, offline: bool = True) -> tuple[str, dict]:
    """First cell of both notebooks: default to the embedded tiny checkpoint (and its isolated
    HF cache), then configure the process before any model library is imported."""
    from . import tiny_layout

    checkpoint = checkpoint or str(tiny_layout.TINY_CHECKPOINT)
    if not hf_home and tiny_layout.is_embedded_default(checkpoint):
        hf_home = str(tiny_layout.TINY_HF_HOME)
    environment = configure_process(hf_home or None, offline=offline)
    environment["checkpoint"] = checkpoint
    return checkpoint, environment
