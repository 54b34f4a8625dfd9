"""NVIDIA's original ``gr00t`` side: load, preprocess + collate, sample. Original kernel only.

Mirrors ``Gr00tPolicy._get_action`` step by step (processor per sample, collator,
``model.get_action``) but with the precision/attention chosen by the caller
instead of the policy's hard-coded bf16, and with the initial noise recorded.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import code_identity, machine, runtime
from .checkpoint import EmbodimentLayout
from .errors import MissingPackageError
from .variants import Variant, check_attention_ran, require_runnable


def gr00t_status() -> dict[str, Any]:
    """Is gr00t importable here, and which code is it: checkout, commit, uncommitted changes, content hash."""
    try:
        import gr00t
    except Exception as exc:  # noqa: BLE001 - any import failure means "not usable"
        return {"available": False, "error": f"{type(exc).__name__}: {exc}"}
    src = Path(gr00t.__file__).resolve().parent.parent
    identity = code_identity.package_identity("gr00t", with_git=True)
    return {"available": True, "source": str(src), "commit": identity.get("commit"), "code": identity["code"],
            "modified": identity.get("modified"), "changed_files": identity.get("changed_files", []),
            "files": identity["files"]}


def require_gr00t() -> dict[str, Any]:
    status = gr00t_status()
    if not status["available"]:
        raise MissingPackageError(
            "the original `gr00t` package is not importable in the groot-original kernel "
            f"({status['error']}). It is not on PyPI: clone NVIDIA's Isaac-GR00T (commit ab88b50 is "
            "the one LeRobot's parity fixtures pin) and run `make setup GR00T_SRC=/path/to/Isaac-GR00T`."
        )
    return status


@dataclass
class OriginalModel:
    model: Any
    processor: Any
    variant: Variant
    device: str
    attention: str | None


def load(checkpoint: Path, *, variant: Variant, device: str) -> OriginalModel:
    require_gr00t()
    require_runnable(variant, device, kernel="groot-original")
    from transformers import AutoModel, AutoProcessor

    import gr00t.model  # noqa: F401  (registers Gr00tN1d7 with the Auto classes)

    model = AutoModel.from_pretrained(str(checkpoint), use_flash_attention=variant.attention == "flash_attention_2")
    model.eval().to(device=device, dtype=variant.torch_dtype)
    attention = runtime.attention_implementation(model.backbone.model)
    check_attention_ran(variant, attention, what="gr00t's Qwen3-VL backbone")
    processor = AutoProcessor.from_pretrained(str(checkpoint))
    processor.eval()
    return OriginalModel(model, processor, variant, device, attention)


def preprocess(bundle: OriginalModel, layout: EmbodimentLayout, raw: dict[str, np.ndarray]) -> Any:
    """Raw observations -> the collated batch ``model.get_action`` takes (policy's steps 1-3)."""
    from gr00t.data.embodiment_tags import EmbodimentTag
    from gr00t.data.types import MessageType, VLAStepData

    tag = EmbodimentTag.resolve(layout.tag)
    batch = raw[f"language.{layout.language_key}"].shape[0]
    processed = []
    for i in range(batch):
        step = VLAStepData(
            images={cam: list(raw[f"video.{cam}"][i]) for cam in layout.cameras},
            states={key: raw[f"state.{key}"][i] for key in layout.state_dims},
            actions={},
            text=str(raw[f"language.{layout.language_key}"][i]),
            embodiment=tag,
        )
        processed.append(bundle.processor([{"type": MessageType.EPISODE_STEP.value, "content": step}]))
    return bundle.processor.collator(processed)


def sample(bundle: OriginalModel, collated: Any, *, seed: int, noise: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Seeded (or noise-injected) flow-matching sample; returns action_pred and the noise used."""
    import torch

    config = bundle.model.config
    batch = next(iter(collated["inputs"].values())).shape[0]
    shape = (batch, config.action_horizon, config.max_action_dim)
    with torch.inference_mode():
        out, used = runtime.sample_initial_noise(lambda: bundle.model.get_action(**collated), shape,
                                                 seed=seed, noise=noise)
    result = {"action_pred": out["action_pred"].float().cpu().numpy()}
    if used is not None:
        result["initial_noise"] = np.asarray(used, dtype=np.float32)
    return result


def provenance(bundle: OriginalModel, status: dict[str, Any]) -> dict[str, Any]:
    import torch

    return {
        "implementation": "gr00t (NVIDIA Isaac-GR00T)",
        "commit": status.get("commit"),
        "modified": status.get("modified"),
        "code": status.get("code"),
        "source": status.get("source"),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        **{k: v for k, v in runtime.versions("transformers").items()},
        "device": bundle.device,
        "dtype": bundle.variant.dtype,
        "attention": bundle.attention,
        "variant": bundle.variant.name,
        "machine": machine.machine_info(bundle.device),
    }
