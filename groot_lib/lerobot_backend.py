"""LeRobot's GR00T N1.7 side: load through ``GrootPolicy``, preprocess, replay. LeRobot kernel only.

The model is loaded the way users load it (``GrootPolicy.from_pretrained`` on the
raw checkpoint) and sampled under the same autocast ``predict_action_chunk`` uses,
but ``action_pred`` is taken before the policy crops horizon/dims, so shape
differences surface instead of being hidden.
"""

from __future__ import annotations

import sys
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import code_identity, machine, runtime
from .checkpoint import EmbodimentLayout
from .errors import MissingPackageError
from .variants import Variant, check_attention_ran, require_runnable


def require_lerobot() -> str:
    try:
        import lerobot
        from lerobot.policies.groot.modeling_groot import GrootPolicy  # noqa: F401
        from lerobot.policies.groot.processor_groot import make_groot_pre_post_processors  # noqa: F401
    except Exception as exc:  # noqa: BLE001
        raise MissingPackageError(
            f"LeRobot's GR00T policy is not importable in the groot-lerobot kernel ({type(exc).__name__}: {exc}). "
            "Rebuild the env: `make setup` (environment-lerobot.yml pins lerobot[groot])."
        ) from None
    return getattr(lerobot, "__version__", None) or runtime.versions("lerobot")["lerobot"]


def _config(checkpoint: Path, layout: EmbodimentLayout, *, variant: Variant, device: str, image_hw=(72, 96)):
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
    )


@dataclass
class LeRobotModel:
    policy: Any
    variant: Variant
    device: str
    attention: str | None

    @property
    def model(self):
        return self.policy._groot_model


def load(checkpoint: Path, layout: EmbodimentLayout, *, variant: Variant, device: str) -> LeRobotModel:
    """One model per process: the policy's weights do not depend on the embodiment tag."""
    require_lerobot()
    require_runnable(variant, device, kernel="groot-lerobot")
    from lerobot.policies.groot.modeling_groot import GrootPolicy

    config = _config(checkpoint, layout, variant=variant, device=device)
    policy = GrootPolicy.from_pretrained(str(checkpoint), config=config)
    policy.eval().to(device)
    attention = runtime.attention_implementation(policy._groot_model.backbone.model)
    check_attention_ran(variant, attention, what="LeRobot's Qwen3-VL backbone")
    return LeRobotModel(policy, variant, device, attention)


def sample(bundle: LeRobotModel, inputs: dict[str, np.ndarray], *, seed: int,
           noise: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Replay collated ``inputs`` (the artifact's ``in::`` tensors, un-dotted) through the model."""
    import torch

    nested = runtime.unflatten({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in inputs.items()})
    model_inputs = nested.get("inputs", nested)
    device = torch.device(bundle.device)
    autocast = (torch.autocast(device_type=device.type, dtype=torch.bfloat16)
                if bundle.policy.config.use_bf16 else nullcontext())
    config = bundle.model.config
    batch = next(iter(model_inputs.values())).shape[0]
    shape = (batch, config.action_horizon, config.max_action_dim)
    with torch.inference_mode(), autocast:
        out, used = runtime.sample_initial_noise(lambda: bundle.model.get_action(model_inputs), shape,
                                                 seed=seed, noise=noise)
    result = {"action_pred": out["action_pred"].float().cpu().numpy()}
    if used is not None:
        result["initial_noise"] = np.asarray(used, dtype=np.float32)
    return result


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


def preprocess(checkpoint: Path, layout: EmbodimentLayout, raw: dict[str, np.ndarray], *,
               device: str = "cpu") -> dict[str, np.ndarray]:
    """Run LeRobot's own preprocessor pipeline (tokenizer, chat template, image packing,
    checkpoint-driven normalisation) and return its model-input tensors."""
    import torch
    from lerobot.policies.groot.processor_groot import make_groot_pre_post_processors

    from .variants import get_variant

    config = _config(checkpoint, layout, variant=get_variant("fp32-sdpa"), device=device)
    preprocessor, _ = make_groot_pre_post_processors(config)
    out = preprocessor(raw_to_lerobot_batch(layout, raw))
    return {k: runtime.to_numpy(v) for k, v in out.items() if isinstance(v, torch.Tensor)}


def provenance(bundle: LeRobotModel) -> dict[str, Any]:
    import torch

    return {
        "implementation": "lerobot (GrootPolicy, GR00T N1.7)",
        "version": runtime.versions("lerobot")["lerobot"],
        "code": code_identity.package_identity("lerobot"),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        **runtime.versions("transformers"),
        "device": bundle.device,
        "dtype": "bfloat16 (autocast over fp32 weights)" if bundle.policy.config.use_bf16 else "float32",
        "attention": bundle.attention,
        "variant": bundle.variant.name,
        "machine": machine.machine_info(bundle.device),
    }
