"""Named model stages, captured with forward hooks on either implementation (Polygraphy's "mark all outputs",
for this model): the vision tower, every kept text layer, the backbone's output, the VL layer norm and
self-attention the action head reads, the state encoder, and per flow-matching step the action encoder, the
timestep encoder, every DiT block, the DiT output and the action decoder (the velocity).

Why module paths: both implementations load the same checkpoint into modules of the same names, so one path
names one stage on both sides (``STAGES``; tests/test_stages.py checks each resolves on both). Captures are
keyed ``"<seq>:<stage>@<call>"``: ``seq`` is the firing order (data-flow order: a parent fires after its
children), ``call`` counts a module's calls (the flow step for per-step stages).
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np

# (stage name, module path); {i} expands to every index the model has, in order
STAGES = (
    ("backbone.vision", "backbone.model.model.visual"),
    ("backbone.text.layer{i}", "backbone.model.model.language_model.layers.{i}"),
    ("backbone.output", "backbone"),
    ("vl.layernorm", "action_head.vlln"),
    ("vl.self_attention", "action_head.vl_self_attention"),
    ("state_encoder", "action_head.state_encoder"),
    ("action_encoder", "action_head.action_encoder"),
    ("timestep_encoder", "action_head.model.timestep_encoder"),
    ("dit.block{i}", "action_head.model.transformer_blocks.{i}"),
    ("dit.output", "action_head.model"),
    ("action_decoder", "action_head.action_decoder"),
)
DEFAULT_LIMIT_BYTES = 512 * 2**20  # beyond this a capture stops, saying so (the 3B model at batch 2 needs ~60 MB)


def resolve(model: Any) -> list[tuple[str, str]]:
    """[(stage, module path)] present in ``model``, ``{i}`` expanded in index order."""
    names = {name for name, _ in model.named_modules()}
    found = []
    for stage, path in STAGES:
        if "{i}" not in path:
            if path in names:
                found.append((stage, path))
            continue
        pattern = re.compile(re.escape(path).replace(r"\{i\}", r"(\d+)") + "$")
        indices = sorted(int(m.group(1)) for m in map(pattern.match, names) if m)
        found += [(stage.format(i=i), path.format(i=i)) for i in indices]
    return found


def _first_tensor(value: Any):
    """The stage's output tensor: itself, a model output's features, or the first tensor of a tuple."""
    import torch

    if torch.is_tensor(value):
        return value
    if hasattr(value, "keys"):
        # a vision tower's merged embeddings (transformers 5: pooler_output; 4.57 returns them first in a tuple)
        for key in ("backbone_features", "pooler_output", "last_hidden_state"):
            if key in value.keys() and torch.is_tensor(value[key]):
                return value[key]
        value = list(value.values())
    if isinstance(value, (tuple, list)):
        for item in value:
            found = _first_tensor(item)
            if found is not None:
                return found
    return None


@contextmanager
def capture(model: Any, *, limit_bytes: int = DEFAULT_LIMIT_BYTES) -> Iterator[dict]:
    """Yield a dict that fills, while the block runs, with ``"<seq>:<stage>@<call>" -> float32 array``; past
    ``limit_bytes`` it stops and ``captured["__notes__"]`` says where."""
    modules = dict(model.named_modules())
    captured: dict[str, np.ndarray] = {}
    notes: list[str] = []
    calls: dict[str, int] = {}
    used = [0]

    def hook_for(stage: str):
        def hook(_module, _args, output):
            call = calls.get(stage, 0)
            calls[stage] = call + 1
            tensor = _first_tensor(output)
            if tensor is None:
                return
            # a copy: a CPU fp32 tensor's .numpy() shares memory, and transformers 4.57 adds Qwen3-VL's deepstack
            # features in place into a text layer's output after this hook fired
            array = tensor.detach().float().cpu().numpy().copy()
            if used[0] + array.nbytes > limit_bytes:
                if not notes:
                    notes.append(f"stage capture stopped at {stage}@{call}: over {limit_bytes / 2**20:.0f} MiB")
                return
            used[0] += array.nbytes
            captured[f"{len(captured):04d}:{stage}@{call}"] = array
        return hook

    handles = [modules[path].register_forward_hook(hook_for(stage)) for stage, path in resolve(model)]
    try:
        yield captured
    finally:
        for handle in handles:
            handle.remove()
        if notes:
            captured["__notes__"] = np.array("; ".join(notes))
