"""NVIDIA's original ``gr00t`` behind the backend contract (``backends.contract``). Original kernel only.

Mirrors ``Gr00tPolicy._get_action`` step by step (processor per sample, collator,
``model.get_action``) but with the precision/attention chosen by the caller instead of the
policy's hard-coded bf16, and with the initial noise recorded.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from groot_lib.backends import contract, torch_io
from groot_lib.backends.contract import Loaded
from groot_lib.core import code_identity
from groot_lib.core.checkpoint import EmbodimentLayout
from groot_lib.core.errors import MissingPackageError
from groot_lib.core.variants import Variant, require_runnable

NAME, KERNEL = "original", "groot-original"


def identity() -> dict[str, Any]:
    """Is gr00t importable here, and which code is it: checkout, commit, uncommitted changes, content hash."""
    try:
        import gr00t
    except Exception as exc:  # noqa: BLE001 - any import failure means "not usable"
        return {"available": False, "error": f"{type(exc).__name__}: {exc}"}
    if getattr(gr00t, "__file__", None) is None:  # a bare folder named gr00t on sys.path, not the package
        return {"available": False, "error": f"`gr00t` resolves to the namespace folder(s) {list(gr00t.__path__)}, "
                                             "not the package (no gr00t/__init__.py there)"}
    src = Path(gr00t.__file__).resolve().parent.parent
    found = code_identity.package_identity("gr00t", with_git=True)
    return {"available": True, "source": str(src), "commit": found.get("commit"), "code": found["code"],
            "modified": found.get("modified"), "changed_files": found.get("changed_files", []),
            "files": found["files"]}


def import_stack() -> None:
    """torch, transformers and gr00t's model classes: what ``load`` needs, imported up front so a report can
    time imports apart from loading."""
    import torch  # noqa: F401
    import transformers  # noqa: F401

    import gr00t.model  # noqa: F401


def require() -> dict[str, Any]:
    """gr00t's identity, or a MissingPackageError saying how to provide it (it is not on PyPI)."""
    status = identity()
    if not status["available"]:
        raise MissingPackageError(
            "the original `gr00t` package is not importable in the groot-original kernel "
            f"({status['error']}). It is not on PyPI: clone NVIDIA's Isaac-GR00T (commit ab88b50 is "
            "the one LeRobot's parity fixtures pin) and run `make setup GR00T_SRC=/path/to/Isaac-GR00T`."
        )
    return status


@contextmanager
def load(checkpoint: Path, layout: EmbodimentLayout | None, *, variant: Variant, device: str) -> Iterator[Loaded]:
    """The whole model, whatever the tag (its weights do not depend on it); freed on exit."""
    status = require()
    require_runnable(variant, device, kernel=KERNEL)
    contract.check_sdpa_backend(variant, device)
    import torch
    from transformers import AutoModel, AutoProcessor

    import gr00t.model  # noqa: F401  (registers Gr00tN1d7 with the Auto classes)

    # Loaded straight into the variant's dtype: loading fp32 and casting after held both copies at once (a
    # real-size bf16 producer peaked at 22 GB, 1.85x the weights). Each tensor is rounded the same way either way.
    model = AutoModel.from_pretrained(str(checkpoint), use_flash_attention=variant.attention == "flash_attention_2",
                                      torch_dtype=getattr(torch, variant.dtype))
    model.eval().to(device=device, dtype=getattr(torch, variant.dtype))
    attention = contract.checked_attention(model.backbone.model, variant, what="gr00t's Qwen3-VL backbone")
    processor = AutoProcessor.from_pretrained(str(checkpoint))
    processor.eval()
    loaded = Loaded(model, Path(checkpoint), variant, device, attention, {"processor": processor, "status": status})
    del model, processor  # holding() frees the model: no other reference may outlive it
    with contract.holding(loaded):
        yield loaded


def preprocess(loaded: Loaded, layout: EmbodimentLayout, raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Raw observations -> the collated batch ``model.get_action`` takes (policy's steps 1-3), flat numpy. With
    ``action.<group>`` chunks in ``raw`` (a training sample) the processor also encodes them as the training
    target: ``action`` (normalised, relative groups against the state, padded) and ``action_mask``."""
    from gr00t.data.embodiment_tags import EmbodimentTag
    from gr00t.data.types import MessageType, VLAStepData

    processor = loaded.extra["processor"]
    tag = EmbodimentTag.resolve(layout.tag)
    batch = raw[f"language.{layout.language_key}"].shape[0]
    with_actions = all(f"action.{key}" in raw for key in layout.action_dims)
    processed = []
    for i in range(batch):
        step = VLAStepData(
            images={cam: list(raw[f"video.{cam}"][i]) for cam in layout.cameras},
            states={key: raw[f"state.{key}"][i] for key in layout.state_dims},
            actions={key: raw[f"action.{key}"][i] for key in layout.action_dims} if with_actions else {},
            text=str(raw[f"language.{layout.language_key}"][i]),
            embodiment=tag,
        )
        processed.append(processor([{"type": MessageType.EPISODE_STEP.value, "content": step}]))
    return {k: torch_io.to_numpy(v) for k, v in torch_io.flatten(processor.collator(processed)).items()}


def train_step(loaded: Loaded, inputs: dict[str, np.ndarray], *, seed: int, tape: Any,
               optimizer: dict | None = None) -> dict[str, Any]:
    """One training forward and backward (``Gr00tN1d7.forward``: the action head's masked velocity MSE) on the
    collated training inputs, its random draws recorded on (or served from) ``tape`` (backends/training.py)."""
    from groot_lib.backends import training

    collated = torch_io.to_torch_tree(inputs)
    return training.step(loaded.model, lambda: loaded.model.forward(collated["inputs"]), seed=seed, tape=tape, optimizer=optimizer)


def recipe(loaded: Loaded) -> dict[str, Any]:
    """What gr00t's fine-tuning trains and how: the model config's tune flags and timestep distribution, the
    trainable set they leave, and gr00t's TrainingConfig defaults (AdamW's betas and eps are transformers')."""
    import dataclasses

    from transformers import TrainingArguments

    from gr00t.configs.training.training_config import TrainingConfig

    from groot_lib.backends import training

    defaults = {f.name: f.default for f in dataclasses.fields(TrainingConfig)}
    hf = {f.name: f.default for f in dataclasses.fields(TrainingArguments)}
    optimizer = {"optimizer": defaults.get("optim"), "lr": defaults.get("learning_rate"),
                 "betas": (hf["adam_beta1"], hf["adam_beta2"]), "eps": hf["adam_epsilon"],
                 "weight_decay": defaults.get("weight_decay"), "grad_clip_norm": defaults.get("max_grad_norm"),
                 "scheduler": defaults.get("lr_scheduler_type"), "warmup_ratio": defaults.get("warmup_ratio"),
                 "bf16": defaults.get("bf16")}
    return training.recipe(loaded.model, optimizer=optimizer)


def sample(loaded: Loaded, inputs: dict[str, np.ndarray], *, seed: int,
           noise: np.ndarray | None = None, capture_stages: bool = False,
           stage_inputs: bool = False, stage_mb: float = contract.DEFAULT_STAGE_MB) -> dict[str, Any]:
    """Seeded (or noise-injected) flow-matching sample from the flat collated inputs."""
    collated = torch_io.to_torch_tree(inputs)
    batch = next(iter(collated["inputs"].values())).shape[0]
    return contract.sample_actions(loaded, lambda: loaded.model.get_action(**collated), batch, seed=seed,
                                   noise_in=noise, stages=contract.stage_capture(capture_stages, stage_inputs, stage_mb))


def decode(loaded: Loaded, layout: EmbodimentLayout, raw: dict[str, np.ndarray],
           action_pred: np.ndarray) -> np.ndarray:
    """What the robot gets (the policy's step 5): ``action_pred`` unnormalised and relative groups made absolute
    against the raw state by the processor's own ``decode_action``, its groups concatenated in the checkpoint's
    order: float32 (B, horizon, action dim)."""
    from gr00t.data.embodiment_tags import EmbodimentTag

    states = {key: np.asarray(raw[f"state.{key}"]) for key in layout.state_dims}
    groups = loaded.extra["processor"].decode_action(np.asarray(action_pred, dtype=np.float32),
                                                     EmbodimentTag.resolve(layout.tag), states)
    return contract.concat_action_groups(groups, layout, who=NAME)


def decode_as_configured(loaded: Loaded, layout: EmbodimentLayout, raw: dict[str, np.ndarray],
                         action_pred: np.ndarray) -> tuple[str | None, np.ndarray]:
    """The original's policy applies no environment transform (NVIDIA's rollout wrappers do): (None, ``decode``)."""
    return None, decode(loaded, layout, raw, action_pred)


def provenance(loaded: Loaded) -> dict[str, Any]:
    status = loaded.extra.get("status") or identity()
    return {**contract.base_provenance(loaded, "gr00t (NVIDIA Isaac-GR00T)", loaded.variant.dtype),
            "commit": status.get("commit"), "modified": status.get("modified"), "code": status.get("code"),
            "source": status.get("source")}
