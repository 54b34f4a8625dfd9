"""Training-step parity: the same training sample and random draws through both implementations.

Three checks, each with the report's verdict rule:
* ``training targets``: LeRobot's training preprocessing of the sample against the original's (the encoded
  ``action`` target, ``action_mask`` and ``state``), elements named by action group;
* ``training loss``: the loss and the per-element action loss on the original's collated inputs;
* ``gradients``: every trainable parameter's gradient, each scaled by its own largest |g| (floored at
  ``GRADIENT_FLOOR`` of the largest of all) so one rule fits tensors of any size (rounding in a backward pass is
  relative to the gradient's scale); the first parameter to
  diverge in backward order and the worst relative error per module group are named, and a parameter that
  trains on one side only fails the check.
Each side's fine-tuning recipe is compared key by key (``recipe_differences``).
"""

from __future__ import annotations

import numpy as np

from groot_lib.compare.action_cells import name_action_cells
from groot_lib.compare.comparison import Comparison, compare_close, compare_exact

TARGETS_CHECK, LOSS_CHECK, GRADIENTS_CHECK = "training targets", "training loss", "gradients"
TARGET_KEYS = ("action", "action_mask", "state")
# A gradient is scaled by its own largest |g|, or by this fraction of the largest |g| of any parameter when its own is
# smaller: some gradients are zero in exact arithmetic (a key projection's bias: softmax ignores a constant shift)
# and hold rounding alone, ~1e-8, which their own scale would turn into a 100% error.
GRADIENT_FLOOR = 1e-3


GROUPS = (("backbone.model.model.visual", "backbone: vision"), ("backbone.", "backbone: language model"),
          ("action_head.vlln", "VL layer norm"), ("action_head.vl_self_attention", "VL self-attention"),
          ("action_head.model.", "DiT"), ("action_head.state_encoder", "state encoder"),
          ("action_head.action_encoder", "action encoder"), ("action_head.position_embedding", "action encoder"),
          ("action_head.action_decoder", "action decoder"))


def group(name: str) -> str:
    """The module group a parameter (or module) belongs to, as the report names it."""
    for prefix, label in GROUPS:
        if name.startswith(prefix):
            return label
    return "other"


def _failed(name: str, tag: str, check: str, reason: str) -> Comparison:
    c = compare_exact(np.zeros(0), np.zeros(1), name=name, tag=tag, check=check)
    c.passed, c.reason = False, reason
    return c


def targets(ours: dict, theirs: dict, *, tag: str, atol: float, rtol: float, layout) -> list[Comparison]:
    """LeRobot's encoded training sample against the original's, tensor by tensor."""
    out = []
    for key in TARGET_KEYS:
        mine, recorded = ours.get(f"target.{key}"), theirs.get(f"in.inputs.{key}")
        if recorded is None:
            continue
        if mine is None:
            out.append(_failed(key, tag, TARGETS_CHECK, f"LeRobot's training preprocessing made no {key!r}"))
            continue
        compare = compare_exact if key == "action_mask" else compare_close
        kwargs = {} if key == "action_mask" else {"atol": atol, "rtol": rtol}
        c = compare(mine, recorded, name=key, tag=tag, check=TARGETS_CHECK, **kwargs)
        if key == "action" and c.comparable and c.n_total and not c.passed:
            name_action_cells(c, layout, mine, recorded)
        out.append(c)
    return out


def loss(ours: dict, theirs: dict, *, tag: str, atol: float, rtol: float) -> list[Comparison]:
    """The loss and the per-element action loss on identical inputs and draws."""
    return [compare_close(ours[k], theirs[k], name=k, atol=atol, rtol=rtol, tag=tag, check=LOSS_CHECK)
            for k in ("loss", "action_loss")]


def _grads(arrays: dict) -> dict[str, np.ndarray]:
    return {k[len("grad."):]: v for k, v in arrays.items() if k.startswith("grad.")}


def gradients(ours: dict, theirs: dict, *, tag: str, atol: float, rtol: float, order: list[str]) -> Comparison:
    """All common trainable parameters' gradients as one comparison (each scaled by its max |g|), with notes
    naming the first diverging parameter in backward order and the worst relative error per module group."""
    mine, recorded = _grads(ours), _grads(theirs)
    common = [n for n in order if n in mine and n in recorded] + sorted(set(mine) & set(recorded) - set(order))
    rel, scaled_mine, scaled_rec = {}, [], []
    for name in common:
        if mine[name].shape != recorded[name].shape:
            return _failed(name, tag, GRADIENTS_CHECK, f"gradient of {name} has shape {mine[name].shape} in LeRobot, "
                                                       f"{recorded[name].shape} in the original")
    floor = GRADIENT_FLOOR * max((float(np.abs(recorded[n]).max()) for n in common), default=0.0)
    for name in common:
        scale = max(float(np.abs(recorded[name]).max()), floor) or 1.0
        scaled_mine.append((mine[name] / scale).ravel())
        scaled_rec.append((recorded[name] / scale).ravel())
        rel[name] = float(np.abs(mine[name].astype(np.float64) - recorded[name]).max()) / scale
    c = compare_close(np.concatenate(scaled_mine), np.concatenate(scaled_rec), name="gradient / max|g| per parameter",
                      atol=atol, rtol=rtol, tag=tag, check=GRADIENTS_CHECK)
    bounds = np.cumsum([0, *(x.size for x in scaled_rec)])
    c.name_index = lambda idx: _element(common, bounds, int(idx[0]), {n: recorded[n].shape for n in common})
    first = next((n for n in common if rel[n] > atol), None)
    if first:
        c.notes.append(f"first diverging gradient in backward order: {first} ({group(first)}), relative error "
                       f"{rel[first]:.3g}")
    worst: dict[str, tuple[float, str]] = {}
    for name, err in rel.items():
        worst[group(name)] = max(worst.get(group(name), (-1.0, "")), (err, name))
    c.notes.append("largest relative gradient error per module group: " + "; ".join(
        f"{g} {e:.2g} ({n})" for g, (e, n) in sorted(worst.items())))
    only = {"the original": sorted(set(recorded) - set(mine)), "LeRobot": sorted(set(mine) - set(recorded))}
    for side, names in only.items():
        if names:
            c.passed = False
            c.reason = "the trainable sets differ"
            groups = sorted({group(n) for n in names})
            c.notes.append(f"{len(names)} parameter(s) train in {side} only ({', '.join(groups)}): "
                           f"{', '.join(names[:4])}{' ...' if len(names) > 4 else ''}")
    return c


def _element(names: list[str], bounds: np.ndarray, flat: int, shapes: dict) -> str:
    i = int(np.searchsorted(bounds, flat, side="right")) - 1
    index = np.unravel_index(flat - int(bounds[i]), shapes[names[i]]) if shapes[names[i]] else ()
    return f"{names[i]}[{', '.join(map(str, index))}]"


COMPARED = ("tune_llm", "tune_visual", "tune_top_llm_layers", "tune_projector", "tune_diffusion_model", "tune_vlln",
            "noise_beta_alpha", "noise_beta_beta", "noise_s", "num_timestep_buckets", "state_dropout_prob",
            "trainable parameters", "dropout")
OPTIMIZER = ("lr", "betas", "eps", "weight_decay", "grad_clip_norm", "scheduler", "warmup_ratio", "bf16")


def recipe_rows(ours: dict, theirs: dict) -> list[dict]:
    """Each recipe setting side by side: {"setting", "original", "lerobot", "differs"}."""
    rows = []
    for key in COMPARED:
        rows.append((key, theirs.get(key), ours.get(key)))
    for key in OPTIMIZER:
        rows.append((f"optimizer {key}", (theirs.get("optimizer") or {}).get(key), (ours.get("optimizer") or {}).get(key)))
    return [{"setting": k, "original": _plain(o), "lerobot": _plain(m), "differs": _plain(o) != _plain(m)}
            for k, o, m in rows]


def _plain(value):
    """JSON-comparable: tuples as lists, numbers as floats where equal."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in sorted(value.items())}
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    return float(value)


def training_parity(replay, artifact, *, atol: float, rtol: float, layout) -> tuple[list[Comparison], list[dict], str]:
    """(comparisons, recipe rows, why not compared): the three training checks for one tag."""
    theirs, ours = artifact.training, replay.training
    if not theirs:
        return [], [], ("the original's file records no training step" + (
            " (LeRobot's dump records none)" if artifact.extra.get("upstream") else " (recorded without it, or TRAIN=0)"))
    info = replay.info.get("training")
    if info is None:
        return [], [], "LeRobot's replay ran no training step (TRAIN=0)"
    tag = artifact.embodiment_tag
    out = ([_failed("action", tag, TARGETS_CHECK, f"LeRobot's training preprocessing raised {info['targets_error']}; "
                                                  "the original's encodes this sample")]
           if info.get("targets_error") else targets(ours, theirs, tag=tag, atol=atol, rtol=rtol, layout=layout))
    if info.get("error"):
        out.append(_failed("random draws", tag, LOSS_CHECK, info["error"]))
    else:
        out += loss(ours, theirs, tag=tag, atol=atol, rtol=rtol)
        out.append(gradients(ours, theirs, tag=tag, atol=atol, rtol=rtol,
                             order=(artifact.extra.get("training") or {}).get("order", [])))
    recipe = recipe_rows(info.get("recipe") or {}, (artifact.extra.get("training") or {}).get("recipe") or {})
    differing = [r["setting"] for r in recipe if r["differs"]]
    if differing and out:
        out[-1].notes.append(f"recipes differ in: {', '.join(differing)} (the report's recipe table)")
    return out, recipe, ""
