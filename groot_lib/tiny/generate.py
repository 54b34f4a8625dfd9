"""Generate the tiny random GR00T N1.7 checkpoint in the real on-disk layout.

Run in the ORIGINAL environment (transformers 4.57.x + a gr00t checkout), because
(a) backbone assets saved by transformers 4.57 are readable by both 4.57 and 5.x,
while 5.x-saved configs/tokenizers are not readable by 4.57, and (b) the GR00T
state-dict layout is taken from the original model class itself, not re-typed here.

    python -m groot_lib.tiny.generate --out checkpoints/tiny --seed 0
    python -m groot_lib.tiny.generate --out build/bench/x12 --scale 12   # wider, for `make bench`

``--scale N`` multiplies every width (hidden sizes and head counts; head dims, layer
counts and vocabulary stay) so weights grow roughly with N^2: a bigger random model with
the same structure, for timing. The default (1) is the embedded checkpoint, unchanged.

Everything is seeded and written in a fixed order, so the same versions produce
byte-identical files (checked by the fingerprint test).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from groot_lib.tiny import layout as L

CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
# A small fixed corpus: the byte-level BPE learns merges for robot-instruction words.
CORPUS = [
    "pick up the red cube and place it in the bowl",
    "open the top drawer of the cabinet",
    "put the bowl on the plate",
    "move the spoon to the left of the towel",
    "close the microwave door",
    "turn on the stove and put the moka pot on it",
    "stack the green block on the yellow block",
    "walk forward and wave with the right hand",
    "user assistant system image video vision",
] * 20
VOCAB_SIZE = 384


def _tokenizer(out: Path) -> "object":
    """Byte-level BPE with Qwen's special tokens and a Qwen3-VL-style chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import Qwen2TokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE - len(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer=trainer)
    fast = Qwen2TokenizerFast(
        tokenizer_object=tok,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        errors="replace",
        clean_up_tokenization_spaces=False,
    )
    fast.add_special_tokens({"additional_special_tokens": SPECIAL_TOKENS})
    fast.chat_template = CHAT_TEMPLATE
    fast.model_max_length = 4096
    fast.save_pretrained(out)
    return fast


def _processors(out: Path) -> None:
    """Qwen3-VL image/video processors sized for IMAGE_EDGE-pixel frames."""
    from transformers import Qwen2VLImageProcessor
    from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor

    size = {"shortest_edge": 32 * 32, "longest_edge": 4 * L.IMAGE_EDGE * L.IMAGE_EDGE}
    common = dict(patch_size=16, merge_size=2, temporal_patch_size=2,
                  image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5])
    Qwen2VLImageProcessor(size=size, **common).save_pretrained(out)
    Qwen3VLVideoProcessor(size=size, **common).save_pretrained(out)
    (out / "chat_template.jinja").write_text(CHAT_TEMPLATE)


def _backbone_config(tokenizer, scale: int = 1) -> "object":
    from transformers import Qwen3VLConfig

    s = scale
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    return Qwen3VLConfig(
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True,
        text_config=dict(
            hidden_size=64 * s, intermediate_size=128 * s, num_hidden_layers=4,
            num_attention_heads=4 * s, num_key_value_heads=2 * s, head_dim=16,
            vocab_size=len(tokenizer), max_position_embeddings=4096,
            rope_theta=5_000_000, rms_norm_eps=1e-6, hidden_act="silu",
            bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"],
            rope_scaling={"rope_type": "default", "mrope_section": [4, 2, 2], "mrope_interleaved": True},
            tie_word_embeddings=True, attention_bias=False,
        ),
        vision_config=dict(
            depth=2, hidden_size=32 * s, intermediate_size=64 * s, num_heads=2 * s,
            out_hidden_size=64 * s, patch_size=16, spatial_merge_size=2,
            temporal_patch_size=2, in_channels=3, num_position_embeddings=256,
            deepstack_visual_indexes=[0, 1], hidden_act="gelu_pytorch_tanh",
        ),
    )


# The real N1.7-3B architecture (Cosmos-Reason2-2B = a Qwen3-VL-2B layout, cut to 16 text layers; the 1024/1536
# action head with a 32-block DiT), as the published configs describe it. Only the tokenizer stays tiny: the
# embedding keeps the real vocabulary size, so every weight has its real shape.
REAL_TEXT = dict(hidden_size=2048, intermediate_size=6144, num_hidden_layers=28, num_attention_heads=16,
                 num_key_value_heads=8, head_dim=128, vocab_size=151936, mrope_section=[24, 20, 20])
REAL_VISION = dict(depth=24, hidden_size=1024, intermediate_size=4096, num_heads=16, out_hidden_size=2048,
                   num_position_embeddings=2304, deepstack_visual_indexes=[5, 11, 17])
REAL_HEAD = {"backbone_embedding_dim": 2048, "select_layer": 16, "hidden_size": 1024, "input_embedding_dim": 1536,
             "diffusion_model_cfg": {"num_layers": 32, "num_attention_heads": 32, "attention_head_dim": 48,
                                     "output_dim": 1024},
             "vl_self_attention_cfg": {"num_layers": 4, "num_attention_heads": 32, "attention_head_dim": 64}}
REAL_SHARD_BYTES = 5 * 10**9  # published checkpoints come in several shards


def _real_backbone_config(tokenizer) -> "object":
    config = _backbone_config(tokenizer)
    text = {k: v for k, v in REAL_TEXT.items() if k != "mrope_section"}
    for key, value in text.items():
        setattr(config.text_config, key, max(value, len(tokenizer)) if key == "vocab_size" else value)
    config.text_config.rope_scaling = {**config.text_config.rope_scaling, "mrope_section": REAL_TEXT["mrope_section"]}
    for key, value in REAL_VISION.items():
        setattr(config.vision_config, key, value)
    return config


def _real_model_config() -> dict:
    config = _model_config()
    for key, value in REAL_HEAD.items():
        config[key] = {**config[key], **value} if isinstance(value, dict) else value
    return config


def _hf_snapshot(hf_home: Path, repo_id: str, files: dict[str, Path]) -> None:
    """Lay files out as the HF hub cache does: refs/main + snapshots/<revision>/."""
    digest = hashlib.sha1()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + files[name].read_bytes())
    revision = digest.hexdigest()
    repo_dir = hf_home / "hub" / ("models--" + repo_id.replace("/", "--"))
    snap = repo_dir / "snapshots" / revision
    snap.mkdir(parents=True, exist_ok=True)
    (repo_dir / "refs").mkdir(exist_ok=True)
    (repo_dir / "refs" / "main").write_text(revision)
    for name, src in sorted(files.items()):
        shutil.copyfile(src, snap / name)


def _statistics(rng: np.random.Generator, embodiments: dict[str, dict] = L.EMBODIMENTS) -> dict:
    """Plausible per-group stats (q01/q99 inside min/max) for every embodiment."""

    def group(dim: int, scale: float) -> dict:
        lo = rng.uniform(-scale, 0.0, dim)
        hi = lo + rng.uniform(0.5 * scale, 2.0 * scale, dim)
        span = hi - lo
        r = lambda v: [round(float(x), 6) for x in v]  # noqa: E731
        return {"min": r(lo), "max": r(hi), "mean": r(lo + 0.5 * span),
                "std": r(0.25 * span), "q01": r(lo + 0.02 * span), "q99": r(hi - 0.02 * span)}

    stats = {}
    for tag, emb in embodiments.items():
        entry = {
            "state": {k: group(d, 1.0) for k, d in emb["state"].items()},
            "action": {k: group(d, 1.0) for k, d in emb["action"].items()},
        }
        if emb["relative"]:
            entry["relative_action"] = {k: group(emb["action"][k], 0.1) for k in emb["relative"]}
        stats[tag] = entry
    return stats


def _modality_configs(embodiments: dict[str, dict] = L.EMBODIMENTS) -> dict:
    def cfg(delta, keys, action_configs=None, mean_std=None):
        return {"delta_indices": list(delta), "modality_keys": list(keys),
                "sin_cos_embedding_keys": None, "mean_std_embedding_keys": mean_std,
                "action_configs": action_configs}

    out = {}
    for tag, emb in embodiments.items():
        action_configs = []
        for key in emb["action"]:
            relative = key in emb["relative"]
            action_configs.append({
                "rep": "RELATIVE" if relative else "ABSOLUTE",
                "type": "EEF" if key.startswith("eef") and relative else "NON_EEF",
                "format": "XYZ_ROT6D" if key == "eef_9d" else "DEFAULT",
                "state_key": key if relative else None,
            })
        if "action_configs" in emb:  # a variant's explicit value (None: written as null)
            action_configs = emb["action_configs"]
        mean_std = emb.get("mean_std")
        out[tag] = {
            "video": cfg(emb["video_delta"], emb["cameras"]),
            "state": cfg([0], emb["state"], mean_std=[k for k in mean_std if k in emb["state"]] if mean_std else None),
            "action": cfg(range(emb["action_horizon"]), emb["action"], action_configs,
                          mean_std=[k for k in mean_std if k in emb["action"]] if mean_std else None),
            "language": cfg([0], [emb["language"]]),
        }
    return out


def _processor_config(embodiments: dict[str, dict] = L.EMBODIMENTS) -> dict:
    edge = L.IMAGE_EDGE
    crop = int(edge * L.CROP_FRACTION)
    return {
        "processor_class": "Gr00tN1d7Processor",
        "processor_kwargs": {
            "modality_configs": _modality_configs(embodiments),
            "image_crop_size": [crop, crop],
            "image_target_size": [edge, edge],
            "use_albumentations": True,
            "random_rotation_angle": None,
            "color_jitter_params": {"brightness": 0.3, "contrast": 0.4, "saturation": 0.5, "hue": 0.08},
            "shortest_image_edge": edge,
            "crop_fraction": L.CROP_FRACTION,
            "letter_box_transform": False,
            "model_name": L.TINY_BACKBONE_ID,
            "model_type": "qwen",
            "formalize_language": True,
            "max_state_dim": L.MAX_STATE_DIM,
            "max_action_dim": L.MAX_ACTION_DIM,
            "max_action_horizon": L.ACTION_HORIZON,
            "use_percentiles": True,
            "use_mean_std": False,
            "clip_outliers": True,
            "apply_sincos_state_encoding": False,
            "use_relative_action": True,
            "exclude_state": False,
            "state_dropout_prob": 0.0,
        },
    }


def _model_config(scale: int = 1) -> dict:
    s = scale
    return {
        "architectures": ["Gr00tN1d7"],
        "model_type": "Gr00tN1d7",
        "model_dtype": "float32",
        # The stored dtype: without it transformers 5 (LeRobot) loads the action head in its
        # bfloat16 default and GrootPolicy casts back to fp32 with the weights already rounded.
        "dtype": "float32",
        "model_name": L.TINY_BACKBONE_ID,
        "backbone_model_type": "qwen",
        "backbone_embedding_dim": 64 * s,
        # 4 text layers cut to 3: layers are popped as in the real model, and (as in the real
        # 28->16 cut with deepstack on layers 0-2) no deepstack lands on the last kept layer.
        "select_layer": 3,
        "tune_llm": False,
        "tune_visual": False,
        "reproject_vision": False,
        "use_flash_attention": False,
        "load_bf16": False,
        "image_crop_size": [int(L.IMAGE_EDGE * L.CROP_FRACTION)] * 2,
        "image_target_size": [L.IMAGE_EDGE] * 2,
        "shortest_image_edge": L.IMAGE_EDGE,
        "crop_fraction": L.CROP_FRACTION,
        "use_albumentations_transforms": True,
        "formalize_language": True,
        "use_percentiles": True,
        "use_relative_action": True,
        "max_state_dim": L.MAX_STATE_DIM,
        "max_action_dim": L.MAX_ACTION_DIM,
        "action_horizon": L.ACTION_HORIZON,
        "hidden_size": 32 * s,
        "input_embedding_dim": 32 * s,
        "state_history_length": 1,
        "add_pos_embed": True,
        "use_vlln": True,
        "max_seq_len": 1024,
        "use_alternate_vl_dit": True,
        "attend_text_every_n_blocks": 2,
        "diffusion_model_cfg": {
            "positional_embeddings": None, "num_layers": 4, "num_attention_heads": 2 * s,
            "attention_head_dim": 16, "norm_type": "ada_norm", "dropout": 0.2,
            "final_dropout": True, "output_dim": 32 * s, "interleave_self_attention": True,
        },
        "vl_self_attention_cfg": {
            "positional_embeddings": None, "num_layers": 1, "num_attention_heads": 2 * s,
            "attention_head_dim": 32, "dropout": 0.2, "final_dropout": True,
        },
        "num_inference_timesteps": 4,
        "noise_beta_alpha": 1.5,
        "noise_beta_beta": 1.0,
        "noise_s": 0.999,
        "num_timestep_buckets": L.NUM_TIMESTEP_BUCKETS,
        "max_num_embodiments": L.MAX_NUM_EMBODIMENTS,
        "state_dropout_prob": 0.0,
    }


def _randomize(module, seed: int) -> None:
    """Overwrite every float tensor with seeded noise: zero/identity inits make outputs trivial."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(module.named_parameters(), key=lambda kv: kv[0]):
            noise = torch.randn(p.shape, generator=gen, dtype=torch.float32)
            if p.ndim == 1 and ("norm" in name or name.endswith("ln.weight")) and name.endswith("weight"):
                value = 1.0 + 0.1 * noise
            elif p.ndim == 1 or name.endswith(".b"):
                value = 0.05 * noise
            else:
                fan_in = p.shape[1] if name.endswith(".W") else p.shape[-1]
                value = noise / float(fan_in) ** 0.5
            p.copy_(value.to(p.dtype))


def _save_sharded(state: dict, out: Path, shard_bytes: int | None = None) -> None:
    """Real layout: model-0000k-of-0000n.safetensors + index (a bare model.safetensors would make LeRobot treat
    the folder as its own fine-tuned checkpoint); one shard unless ``shard_bytes`` splits it."""
    from safetensors.torch import save_file

    tensors, seen = {}, set()
    # Tied weights are stored once, under the embedding's name (lm_head is the alias).
    for key, value in sorted(state.items(), key=lambda kv: ("lm_head" in kv[0], kv[0])):
        if value.data_ptr() in seen:
            continue
        seen.add(value.data_ptr())
        tensors[key] = value.detach().contiguous().cpu()
    shards, size = [[]], 0
    for key, value in tensors.items():
        nbytes = value.numel() * value.element_size()
        if shard_bytes and shards[-1] and size + nbytes > shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append(key)
        size += nbytes
    weight_map = {}
    for i, keys in enumerate(shards, 1):
        name = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
        save_file({k: tensors[k] for k in keys}, str(out / name), metadata={"format": "pt"})
        weight_map.update({k: name for k in keys})
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (out / "model.safetensors.index.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")


def _replace_dir(staged: Path, final: Path) -> Path:
    """A fully written ``staged`` folder takes ``final``'s place (never half a checkpoint under its real name)."""
    if final.exists():
        shutil.rmtree(final)
    os.replace(staged, final)
    return final


def checkpoint_name(scale: int = 1, real: bool = False) -> str:
    if real:
        return "gr00t-n1.7-3b-random"
    return L.TINY_CHECKPOINT.name if scale == 1 else f"{L.TINY_CHECKPOINT.name}-x{scale}"


def generate(out_root: Path, seed: int = 0, scale: int = 1, real: bool = False) -> Path:
    """Build ``<out_root>/<checkpoint_name(scale)>`` and ``<out_root>/hf_home`` from scratch.

    Any scale keeps the tiny backbone id: the checkpoint only makes sense with its own hf_home.
    """
    if scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale}")
    import torch
    from transformers import Qwen3VLForConditionalGeneration

    out_root = Path(out_root)
    staging = Path(tempfile.mkdtemp(prefix=".tiny-", dir=out_root.parent if out_root.parent.exists() else None))
    try:
        assets = staging / "backbone"
        assets.mkdir()
        tokenizer = _tokenizer(assets)
        _processors(assets)
        torch.manual_seed(seed)
        config = _real_backbone_config(tokenizer) if real else _backbone_config(tokenizer, scale)
        backbone = Qwen3VLForConditionalGeneration(config).eval()
        _randomize(backbone, seed + 1)
        backbone.save_pretrained(assets, safe_serialization=True)
        del backbone  # the action model below loads it again from the cache: never two copies at real size
        import gc

        gc.collect()
        processor_files = {p.name: p for p in assets.iterdir() if p.name not in ("model.safetensors", "generation_config.json")}
        hf_home = staging / "hf_home"
        _hf_snapshot(hf_home, L.TINY_BACKBONE_ID, {p.name: p for p in assets.iterdir()})
        _hf_snapshot(hf_home, L.LEROBOT_PROCESSOR_ID, processor_files)

        ckpt = staging / checkpoint_name(scale, real)
        ckpt.mkdir()
        _write_json(ckpt / "config.json", _real_model_config() if real else _model_config(scale))
        _write_json(ckpt / "processor_config.json", _processor_config())
        _write_json(ckpt / "statistics.json", _statistics(np.random.default_rng(seed)))
        _write_json(ckpt / "embodiment_id.json", dict(L.EMBODIMENT_IDS))

        # Instantiate the ORIGINAL model from this config (offline, from the new cache) so
        # the state-dict names are exactly the original's; then randomise the action head.
        from transformers import AutoConfig

        import gr00t.model  # noqa: F401  (registers Gr00tN1d7)
        from gr00t.model.gr00t_n1d7.gr00t_n1d7 import Gr00tN1d7

        loading = {"cache_dir": str(hf_home / "hub"), "local_files_only": True}
        model = Gr00tN1d7(AutoConfig.from_pretrained(ckpt), transformers_loading_kwargs=loading).eval()
        _randomize(model.action_head, seed + 2)
        _save_sharded(model.state_dict(), ckpt, REAL_SHARD_BYTES if real else None)

        out_root.mkdir(parents=True, exist_ok=True)
        _replace_dir(hf_home, out_root / "hf_home")
        return _replace_dir(ckpt, out_root / ckpt.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


SHARED_WITH_DEFAULT = ("config.json", "model.safetensors.index.json", "model-00001-of-00001.safetensors")


def generate_variants(seed: int = 0) -> Path:
    """The variants checkpoint beside the tiny default: its model files are links to the default's (same
    weights, so a difference can only come from the embodiment configs), its own processor config, statistics
    and embodiment ids for ``L.VARIANT_EMBODIMENTS``. Needs neither gr00t nor torch."""
    out = L.VARIANTS_CHECKPOINT
    staging = Path(tempfile.mkdtemp(prefix=".variants-", dir=out.parent))
    staging.chmod(0o755)
    try:
        for name in SHARED_WITH_DEFAULT:
            (staging / name).symlink_to(Path("..") / L.TINY_CHECKPOINT.name / name)
        _write_json(staging / "processor_config.json", _processor_config(L.VARIANT_EMBODIMENTS))
        _write_json(staging / "statistics.json", _statistics(np.random.default_rng(seed + 100), L.VARIANT_EMBODIMENTS))
        _write_json(staging / "embodiment_id.json", dict(L.VARIANT_IDS))
        return _replace_dir(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=L.TINY_ROOT)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scale", type=int, default=1,
                        help="width multiplier (1 = the embedded tiny checkpoint; weights grow ~scale^2)")
    parser.add_argument("--real-size", action="store_true",
                        help="the real N1.7-3B architecture (~12 GB fp32, sharded; build it under build/, never commit)")
    parser.add_argument("--variants", action="store_true",
                        help="only the variants checkpoint beside the tiny default (action_configs null, mean/std "
                             "groups; same weights)")
    args = parser.parse_args(argv)
    if args.variants:
        print(generate_variants(args.seed))
        return
    print(generate(args.out, args.seed, args.scale, real=args.real_size))


if __name__ == "__main__":
    main()
