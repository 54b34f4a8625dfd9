"""Process setup inside a kernel, before any model library is imported: HF cache isolation, device, memory.

transformers / huggingface_hub / gr00t read their environment at import time, so the first cell of
each notebook calls ``setup_notebook`` before anything else.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from groot_lib.core.errors import ParityError

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


def imports_done() -> None:
    """After an implementation's imports: move the objects they made (millions, all alive for the kernel's life)
    out of the cyclic collector's sight, so ``free_memory``'s full collection walks the model, not torch."""
    import gc

    gc.collect()
    gc.freeze()


def free_memory() -> None:
    """After ``del model``: give the memory back so the next variant's model is the only one held."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    try:  # glibc keeps freed heap pages (the old model's) mapped; hand them back before the next load
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc: nothing to trim


def setup_notebook(checkpoint: str | None, hf_home: str | None, *, offline: bool = True) -> tuple[str, dict]:
    """First cell of both notebooks: work from the repo root (JupyterLab starts kernels in notebooks/, papermill
    in the repo: relative paths then mean the same in both, and default outputs land in the ignored build/),
    default to the embedded tiny checkpoint (and its isolated HF cache), configure the process before any model
    library is imported, then resolve the checkpoint to its folder by pre-flight's own rule (a hub id read from
    this HF cache, or downloaded when ``offline`` is False), so a notebook opened by hand reads what
    `make report` would."""
    from groot_lib.core import checkpoint as ckpt
    from groot_lib.core import settings
    from groot_lib.paths import REPO_ROOT
    from groot_lib.tiny import layout as tiny_layout

    os.chdir(REPO_ROOT)
    checkpoint = settings.value("checkpoint", checkpoint) or str(tiny_layout.TINY_CHECKPOINT)
    hf_home = tiny_layout.hf_home_for(checkpoint, hf_home)
    environment = configure_process(hf_home, offline=offline)
    checkpoint = str(ckpt.resolve_checkpoint(checkpoint, hf_home))
    environment["checkpoint"] = checkpoint
    return checkpoint, environment
