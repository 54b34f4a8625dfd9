"""LeRobot's GR00T N1.7 behind the backend contract (``backends.contract``). LeRobot kernel only.

The model is loaded the way users load it (``GrootPolicy.from_pretrained`` on the raw checkpoint)
and sampled under the same autocast ``predict_action_chunk`` uses, but ``action_pred`` is taken
before the policy crops horizon/dims, so shape differences surface instead of being hidden.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from groot_lib.backends import contract, torch_io
from groot_lib.backends.contract import Loaded
from groot_lib.core import code_identity, runinfo
from groot_lib.core.checkpoint import EmbodimentLayout
from groot_lib.core.errors import MissingPackageError
from groot_lib.core.variants import DEFAULT_VARIANT, Variant, get_variant, require_runnable

NAME, KERNEL = "LeRobot", "groot-lerobot"


def identity() -> dict[str, Any]:
    """Which LeRobot would be imported: version and the content hash of its sources (without importing it)."""
    found = code_identity.package_identity("lerobot")
    return {"available": found["code"] is not None, "version": runinfo.versions("lerobot")["lerobot"], **found}


# LeRobot's import chain in steps (its slowest part): the consumer imports them while the producer runs
IMPORTS = ("torch", "transformers", "lerobot.policies.groot.modeling_groot", "lerobot.policies.groot.processor_groot")


def import_stack() -> None:
    """LeRobot's stack (``IMPORTS``), imported up front so a report can time imports apart from loading."""
    import importlib

    for module in IMPORTS:
        importlib.import_module(module)


def require() -> str:
    """LeRobot's version, or a MissingPackageError saying how to rebuild its env."""
    try:
        import lerobot
        from lerobot.policies.groot.modeling_groot import GrootPolicy  # noqa: F401
        from lerobot.policies.groot.processor_groot import make_groot_pre_post_processors  # noqa: F401
    except Exception as exc:  # noqa: BLE001
        raise MissingPackageError(
            f"LeRobot's GR00T policy is not importable in the groot-lerobot kernel ({type(exc).__name__}: {exc}). "
            "Rebuild the env: `make setup` (environment-lerobot.yml pins lerobot[groot])."
        ) from None
    return getattr(lerobot, "__version__", None) or runinfo.versions("lerobot")["lerobot"]


def _config(checkpoint: Path, layout: EmbodimentLayout, *, variant: Variant, device: str, image_hw=(72, 96),
            decode_transform: str = "auto"):
    from lerobot.configs import FeatureType, PolicyFeature
    from lerobot.policies.groot.configuration_groot import GrootConfig

    inputs = {f"observation.images.{cam}": PolicyFeature(type=FeatureType.VISUAL, shape=(3, *image_hw))
              for cam in layout.cameras}
    inputs["observation.state"] = PolicyFeature(type=FeatureType.STATE, shape=(layout.state_dim,))
    return GrootConfig(
        base_model_path=str(checkpoint),
        embodiment_tag=layout.tag,
        device=device,
        input_features=inputs,
        output_features={"action": PolicyFeature(type=FeatureType.ACTION, shape=(layout.action_dim,))},
        # LeRobot's own bf16 mode is autocast over fp32 weights (GrootConfig.use_bf16, on by default
        # even on CPU): off for fp32 parity, on for the bf16 variants.
        use_bf16=variant.dtype == "bfloat16",
        use_flash_attention=variant.attention == "flash_attention_2",
        # "auto" (LeRobot's default) adds an environment's convention after decoding, e.g. LIBERO's gripper sign
        action_decode_transform=decode_transform,
    )


@contextmanager
def load(checkpoint: Path, layout: EmbodimentLayout, *, variant: Variant, device: str) -> Iterator[Loaded]:
    """One model per process: the policy's weights do not depend on the embodiment tag; freed on exit."""
    require()
    require_runnable(variant, device, kernel=KERNEL)
    contract.check_sdpa_backend(variant, device)
    from lerobot.policies.groot.modeling_groot import GrootPolicy

    policy = GrootPolicy.from_pretrained(str(checkpoint), config=_config(checkpoint, layout, variant=variant,
                                                                         device=device))
    policy.eval().to(device)
    attention = contract.checked_attention(policy._groot_model.backbone.model, variant,
                                           what="LeRobot's Qwen3-VL backbone")
    loaded = Loaded(policy._groot_model, Path(checkpoint), variant, device, attention, {"policy": policy})
    del policy  # holding() frees the model: no other reference may outlive it
    with contract.holding(loaded):
        yield loaded


def _use_bf16(loaded: Loaded) -> bool:
    return bool(loaded.extra["policy"].config.use_bf16)


def sample(loaded: Loaded, inputs: dict[str, np.ndarray], *, seed: int,
           noise: np.ndarray | None = None, capture_stages: bool = False,
           stage_inputs: bool = False, stage_mb: float = contract.DEFAULT_STAGE_MB) -> dict[str, Any]:
    """Replay collated ``inputs`` (the artifact's ``in::`` tensors, un-dotted) through the model."""
    import torch

    nested = torch_io.to_torch_tree(inputs)
    model_inputs = nested.get("inputs", nested)
    batch = next(iter(model_inputs.values())).shape[0]
    autocast = (torch.autocast(device_type=torch.device(loaded.device).type, dtype=torch.bfloat16)
                if _use_bf16(loaded) else None)
    return contract.sample_actions(loaded, lambda: loaded.model.get_action(model_inputs), batch, seed=seed,
                                   noise_in=noise, context=autocast,
                                   stages=contract.stage_capture(capture_stages, stage_inputs, stage_mb))


def train_step(loaded: Loaded, inputs: dict[str, np.ndarray], *, seed: int, tape: Any,
               optimizer: dict | None = None) -> dict[str, Any]:
    """One training forward and backward as ``GrootPolicy.forward`` runs it (its input filter, its autocast) on
    the collated training inputs, the random draws served from ``tape`` (backends/training.py); the model's own
    output dict is kept, since the policy returns the loss alone. With ``optimizer`` (``recipe``'s) also one
    optimizer step's weight changes."""
    import torch

    from groot_lib.backends import training

    policy = loaded.extra["policy"]
    nested = torch_io.to_torch_tree(inputs)
    groot_inputs = policy._filter_groot_inputs(nested.get("inputs", nested), include_action=True)

    def forward():
        with torch.autocast(device_type=torch.device(loaded.device).type, dtype=torch.bfloat16,
                            enabled=_use_bf16(loaded)):
            return loaded.model.forward(groot_inputs)

    return training.step(loaded.model, forward, seed=seed, tape=tape, optimizer=optimizer)


def recipe(loaded: Loaded) -> dict[str, Any]:
    """What a LeRobot fine-tune trains and how: GrootConfig's tune flags (they set the trainable set), the model
    config's timestep distribution, and the optimizer and scheduler presets ``lerobot-train`` builds."""
    import dataclasses

    from groot_lib.backends import training

    config = loaded.extra["policy"].config
    opt, sched = config.get_optimizer_preset(), config.get_scheduler_preset()
    optimizer = {"optimizer": type(opt).__name__, "lr": opt.lr, "betas": tuple(opt.betas), "eps": opt.eps,
                 "weight_decay": opt.weight_decay, "grad_clip_norm": opt.grad_clip_norm,
                 "scheduler": getattr(sched, "name", type(sched).__name__),
                 "warmup_ratio": getattr(config, "warmup_ratio", None),
                 # what a user's fine-tune gets: GrootConfig's default (the workbench sets it per variant)
                 "bf16": next((f.default for f in dataclasses.fields(config) if f.name == "use_bf16"), None)}
    found = training.recipe(loaded.model, optimizer=optimizer)
    for key in ("tune_llm", "tune_visual", "tune_top_llm_layers", "tune_projector", "tune_diffusion_model",
                "tune_vlln"):
        if hasattr(config, key):
            found[key] = getattr(config, key)
    return found


def raw_to_lerobot_batch(layout: EmbodimentLayout, raw: dict[str, np.ndarray]) -> dict[str, Any]:
    """The artifact's raw observations in LeRobot's layout: images (B,[T,]3,H,W) uint8,
    one flat state vector in the checkpoint's group order, and ``task`` strings."""
    import torch

    batch: dict[str, Any] = {}
    for cam in layout.cameras:
        video = torch.from_numpy(np.ascontiguousarray(raw[f"video.{cam}"]))  # (B,T,H,W,3)
        video = video.permute(0, 1, 4, 2, 3)
        batch[f"observation.images.{cam}"] = video[:, 0] if video.shape[1] == 1 else video
    state = np.concatenate([raw[f"state.{key}"][:, -1, :] for key in layout.state_dims], axis=-1)
    batch["observation.state"] = torch.from_numpy(state.astype(np.float32))
    batch["task"] = [str(s) for s in raw[f"language.{layout.language_key}"]]
    return batch


# What the original policy's decode_action does, without LeRobot's environment-side extras (see decode)
POLICY_DECODE = "none"


def _pipelines(loaded: Loaded, layout: EmbodimentLayout, decode_transform: str = POLICY_DECODE):
    """LeRobot's (preprocessor, postprocessor) for one tag, built as users build them and kept with the model:
    the postprocessor's relative-action decode reads the raw state its preprocessor cached."""
    from lerobot.policies.groot.processor_groot import make_groot_pre_post_processors

    pipelines = loaded.extra.setdefault("pipelines", {})
    if (layout.tag, decode_transform) not in pipelines:
        config = _config(loaded.checkpoint, layout, variant=get_variant(DEFAULT_VARIANT), device=loaded.device,
                         decode_transform=decode_transform)
        pipelines[(layout.tag, decode_transform)] = (config, *make_groot_pre_post_processors(config))
    return pipelines[(layout.tag, decode_transform)]


def preprocess(loaded: Loaded, layout: EmbodimentLayout, raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run LeRobot's own preprocessor pipeline (tokenizer, chat template, image packing,
    checkpoint-driven normalisation) and return its model-input tensors. With ``action.<group>`` chunks in
    ``raw`` (a training sample) they go in as ``action``, the groups concatenated in the checkpoint's order as a
    LeRobot dataset stores them, and come out encoded as the training target (``action``, ``action_mask``)."""
    import torch

    _, preprocessor, _ = _pipelines(loaded, layout)
    batch = raw_to_lerobot_batch(layout, raw)
    if all(f"action.{key}" in raw for key in layout.action_dims):
        batch["action"] = torch.from_numpy(np.concatenate([raw[f"action.{key}"] for key in layout.action_dims],
                                                          axis=-1).astype(np.float32))
    out = preprocessor(batch)
    return {k: torch_io.to_numpy(v) for k, v in out.items() if isinstance(v, torch.Tensor)}


def _postprocess(loaded: Loaded, layout: EmbodimentLayout, raw: dict[str, np.ndarray], action_pred: np.ndarray,
                 decode_transform: str) -> tuple[str | None, np.ndarray]:
    import torch

    config, preprocessor, postprocessor = _pipelines(loaded, layout, decode_transform)
    preprocessor(raw_to_lerobot_batch(layout, raw))  # caches the raw state relative groups are decoded against
    out = postprocessor(torch.from_numpy(np.ascontiguousarray(action_pred, dtype=np.float32)))
    return config.action_decode_transform, torch_io.to_numpy(out).astype(np.float32)


def decode(loaded: Loaded, layout: EmbodimentLayout, raw: dict[str, np.ndarray],
           action_pred: np.ndarray) -> np.ndarray:
    """LeRobot's postprocessor on ``action_pred`` right after its preprocessor saw ``raw`` (as ``select_action``
    does), returned as it comes out (a decoder that declines leaves its input unchanged). Built without LeRobot's
    environment transform, which NVIDIA applies in its rollout wrappers, not in the policy: ``decode_as_configured``."""
    return _postprocess(loaded, layout, raw, action_pred, POLICY_DECODE)[1]


def decode_as_configured(loaded: Loaded, layout: EmbodimentLayout, raw: dict[str, np.ndarray],
                         action_pred: np.ndarray) -> tuple[str | None, np.ndarray]:
    """The postprocessor as ``GrootConfig``'s defaults build it (``action_decode_transform='auto'``): which
    environment transform that resolves to for this tag (None: none) and its output."""
    return _postprocess(loaded, layout, raw, action_pred, "auto")


def provenance(loaded: Loaded) -> dict[str, Any]:
    dtype = "bfloat16 (autocast over fp32 weights)" if _use_bf16(loaded) else "float32"
    return {**contract.base_provenance(loaded, "lerobot (GrootPolicy, GR00T N1.7)", dtype),
            "version": runinfo.versions("lerobot")["lerobot"], "code": code_identity.package_identity("lerobot")}
