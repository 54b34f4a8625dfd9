"""Named model stages, captured with forward hooks on either implementation (Polygraphy's "mark all outputs",
for this model): the vision tower, every kept text layer, the backbone's output, the VL layer norm and
self-attention the action head reads, the state encoder, and per flow-matching step the action encoder, the
timestep encoder, every DiT block, the DiT output and the action decoder (the velocity).

Why module paths: both implementations load the same checkpoint into modules of the same names, so one path
names one stage on both sides (``STAGES``; tests/compare/test_stages.py checks each resolves on both). Captures are
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
# Inputs recorded as stages of their own: the action entering each flow step (step 0: the initial noise; step k:
# the sampler's update after step k-1), read where the action encoder receives it.
INPUT_STAGES = (("sampler.actions", "action_head.action_encoder"),)
DEFAULT_LIMIT_BYTES = 256 * 2**20  # beyond this a capture stops, saying where (core/settings: STAGE_MB)


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


def _numpy(tensor) -> np.ndarray:
    """A float32 copy on the host. A copy: a CPU fp32 tensor's .numpy() shares memory, and transformers 4.57 adds
    Qwen3-VL's deepstack features in place into a text layer's output after a hook has seen it."""
    return tensor.detach().float().cpu().numpy().copy()


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


class Unreplayable(Exception):
    """A stage input that cannot be stored as arrays (a cache object, a callable)."""


def _flatten(value: Any, path: str, tensors: dict[str, np.ndarray]) -> Any:
    """A stage input as JSON + arrays: tensors by reference (dtype kept), scalars inline, tuples/lists/dicts
    recursed; anything else is Unreplayable."""
    import torch

    if torch.is_tensor(value):
        tensors[path] = value.detach().cpu().float().numpy().copy() if value.dtype == torch.bfloat16 else \
            value.detach().cpu().numpy().copy()
        return {"t": path, "dtype": str(value.dtype).replace("torch.", "")}
    if value is None or isinstance(value, (bool, int, float, str)):
        return {"v": value}
    if type(value).__name__.endswith("Cache"):  # a KV cache: one forward pass needs none (the layer's own output)
        return {"v": None}
    if isinstance(value, (tuple, list)):
        return {"seq": [_flatten(v, f"{path}.{i}", tensors) for i, v in enumerate(value)],
                "tuple": isinstance(value, tuple)}
    if isinstance(value, dict):
        return {"map": {str(k): _flatten(v, f"{path}.{k}", tensors) for k, v in value.items()}}
    raise Unreplayable(type(value).__name__)


def _rebuild(spec: Any, arrays: dict[str, np.ndarray], device: str):
    import torch

    if "t" in spec:  # a local path, or (after compact) another key of the capture or of the model inputs
        return torch.from_numpy(np.asarray(arrays[spec["t"]])).to(device=device, dtype=getattr(torch, spec["dtype"]))
    if "v" in spec:
        return spec["v"]
    if "seq" in spec:
        items = [_rebuild(s, arrays, device) for s in spec["seq"]]
        return tuple(items) if spec["tuple"] else items
    return {k: _rebuild(v, arrays, device) for k, v in spec["map"].items()}


from groot_lib.compare.stage_diff import INPUTS  # noqa: E402 - "<key>#in" (JSON spec), "<key>#in:<path>" (arrays)


class _Recorder:
    """What ``capture``'s forward hooks fill: each stage call's output (and, with ``inputs``, its inputs), keyed
    ``"<seq>:<stage>@<call>"`` in firing order, within a byte budget whose end is noted where it stopped."""

    def __init__(self, limit_bytes: int, inputs: bool):
        self.limit, self.inputs = limit_bytes, inputs
        self.captured: dict[str, np.ndarray] = {}
        self.notes: list[str] = []
        self.calls: dict[str, int] = {}
        self.pending: dict[str, tuple] = {}
        self.used = self.seq = 0

    def next_call(self, stage: str) -> int:
        call = self.calls.get(stage, 0)
        self.calls[stage] = call + 1
        return call

    def keep(self, stage: str, call: int, array: np.ndarray, spec=None, tensors=None) -> None:
        """Store one stage call (and its recorded inputs) under the next key, within the byte budget."""
        import json

        tensors = tensors or {}
        size = array.nbytes + sum(t.nbytes for t in tensors.values())
        if self.used + size > self.limit:
            if not self.notes:
                self.notes.append(f"stage capture stopped at {stage}@{call}: over {self.limit / 2**20:.3g} MiB (STAGE_MB)")
            return
        self.used += size
        key = f"{self.seq:04d}:{stage}@{call}"
        self.seq += 1
        self.captured[key] = array
        if spec is not None:
            self.captured[key + INPUTS] = np.array(json.dumps(spec))
            self.captured.update({f"{key}{INPUTS}:{path}": value for path, value in tensors.items()})

    def pre_hook(self, stage: str):
        """Records a stage call's inputs before it runs (as JSON + arrays; a cache object is left out)."""
        def hook(_module, args, kwargs):
            tensors: dict[str, np.ndarray] = {}
            try:
                spec = {"args": _flatten(list(args), "a", tensors), "kwargs": _flatten(dict(kwargs), "k", tensors)}
            except Unreplayable as exc:
                spec, tensors = {"unreplayable": str(exc)}, {}
            self.pending[stage] = (spec, tensors)
        return hook

    def post_hook(self, stage: str):
        """Records a stage call's output tensor (with its inputs, when they were recorded)."""
        def hook(_module, _args, output):
            call = self.next_call(stage)
            tensor = _first_tensor(output)
            spec, tensors = self.pending.pop(stage, (None, {}))
            if tensor is not None:
                self.keep(stage, call, _numpy(tensor), spec, tensors)
        return hook

    def input_hook(self, stage: str):
        """Records what enters a module as a stage of its own (the action entering each flow step)."""
        def hook(_module, args, kwargs):
            call = self.next_call(stage)
            value = args[0] if args else next(iter(kwargs.values()), None)
            if value is not None and hasattr(value, "detach"):
                self.keep(stage, call, _numpy(value))
        return hook


@contextmanager
def capture(model: Any, *, limit_bytes: int = DEFAULT_LIMIT_BYTES, inputs: bool = False) -> Iterator[dict]:
    """Yield a dict that fills, while the block runs, with ``"<seq>:<stage>@<call>" -> float32 array`` (and,
    with ``inputs``, each call's inputs, so another implementation's module can be re-run on exactly them);
    past ``limit_bytes`` it stops and ``captured["__notes__"]`` says where."""
    modules = dict(model.named_modules())
    recorder = _Recorder(limit_bytes, inputs)
    handles = [modules[path].register_forward_pre_hook(recorder.input_hook(stage), with_kwargs=True)
               for stage, path in INPUT_STAGES if path in modules]
    for stage, path in resolve(model):
        if inputs:
            handles.append(modules[path].register_forward_pre_hook(recorder.pre_hook(stage), with_kwargs=True))
        handles.append(modules[path].register_forward_hook(recorder.post_hook(stage)))
    try:
        yield recorder.captured
    finally:
        for handle in handles:
            handle.remove()
        if recorder.notes:
            recorder.captured["__notes__"] = np.array("; ".join(recorder.notes))


def compact(captured: dict[str, np.ndarray], model_inputs: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """The same capture without repeated arrays: a recorded stage input equal (dtype, shape, bytes) to a stage
    output, an earlier input or one of ``model_inputs`` (the artifact's ``in::`` tensors, referred to as
    ``in::<name>``) is stored once and referred to by key. Lossless; ~60% smaller on the tiny default (the
    vision tower's input is pixel_values, a DiT block's input the previous block's output)."""
    import hashlib
    import json

    def digest(value: np.ndarray) -> tuple:
        value = np.ascontiguousarray(value)
        return value.dtype.str, value.shape, hashlib.blake2b(value.tobytes(), digest_size=16).hexdigest()

    seen = {digest(v): f"in::{k}" for k, v in (model_inputs or {}).items()}
    out: dict[str, np.ndarray] = {}
    for key, value in captured.items():
        if INPUTS not in key and key != "__notes__":
            seen.setdefault(digest(value), key)
            out[key] = value
    for key, value in captured.items():
        if not key.endswith(INPUTS):
            continue
        spec = json.loads(str(value))

        def relink(node):
            if isinstance(node, dict):
                if "t" in node:
                    # a local path ("a.0", "k.temb") lives under this call's key; a key with ":" is already global
                    local = node["t"] if ":" in node["t"] else f"{key}:{node['t']}"
                    array = captured.get(local, out.get(local))
                    if array is not None:
                        found = seen.setdefault(digest(array), local)
                        if found == local:
                            out[local] = array
                        return {**node, "t": found}
                    return node
                return {k: relink(v) for k, v in node.items()}
            if isinstance(node, list):
                return [relink(v) for v in node]
            return node

        out[key] = np.array(json.dumps(relink(spec)))
    if "__notes__" in captured:
        out["__notes__"] = captured["__notes__"]
    return out


def rerun(model: Any, recorded: dict[str, np.ndarray], *, device: str,
          model_inputs: dict[str, np.ndarray] | None = None) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Re-run each of ``model``'s stages on the inputs another run recorded for it: ({key: output}, {key: why
    not}). A stage's output here minus the recording's is the error that stage *adds* (its inputs are
    identical), which tells a source of divergence from a stage that only amplifies what it was given."""
    import json

    import torch

    modules = dict(model.named_modules())
    paths = dict(resolve(model))
    outputs, skipped = {}, {}
    for key in [k for k in recorded if k.endswith(INPUTS)]:
        stage_key = key[: -len(INPUTS)]
        stage = stage_key.split(":", 1)[1].rsplit("@", 1)[0]
        spec = json.loads(str(recorded[key]))
        if "unreplayable" in spec or stage not in paths:
            skipped[stage_key] = spec.get("unreplayable", "no such module here")
            continue
        arrays = {**recorded, **{f"in::{k}": v for k, v in (model_inputs or {}).items()},
                  **{k[len(key) + 1:]: v for k, v in recorded.items() if k.startswith(key + ":")}}
        try:
            with torch.inference_mode():
                out = modules[paths[stage]](*_rebuild(spec["args"], arrays, device), **_rebuild(spec["kwargs"], arrays, device))
        except Exception as exc:  # noqa: BLE001 - a signature the other implementation does not share
            skipped[stage_key] = f"{type(exc).__name__}: {str(exc)[:160]}"
            continue
        tensor = _first_tensor(out)
        if tensor is not None:
            outputs[stage_key] = _numpy(tensor)
    return outputs, skipped
