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
* ``optimizer step`` (TRAIN_UPDATE=1): one AdamW step with each side's own recipe, the weight changes compared
  like the gradients (elements whose gradient's sign rounding decides are left out, counted).
Each side's fine-tuning recipe is compared key by key (``recipe_rows``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from groot_lib.compare.action_cells import name_action_cells
from groot_lib.compare.comparison import Comparison, compare_close, compare_close_parts, compare_exact

TARGETS_CHECK, LOSS_CHECK, GRADIENTS_CHECK = "training targets", "training loss", "gradients"
UPDATE_CHECK = "optimizer step"
TARGET_KEYS = ("action", "action_mask", "state")
# A gradient is scaled by its own largest |g|, or by this fraction of the largest |g| of any parameter when its own is
# smaller: some gradients are zero in exact arithmetic (a key projection's bias: softmax ignores a constant shift)
# and hold rounding alone, ~1e-8, which their own scale would turn into a 100% error.
GRADIENT_FLOOR = 1e-3
# An AdamW first step of a weight whose two gradients differ relatively by r differs by up to ~r/4 x lr, so elements
# whose gradients agree only worse than this are left out of the optimizer-step verdict (counted)
UPDATE_AGREEMENT = 1e-3


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


def _named(arrays: dict, kind: str) -> dict[str, np.ndarray]:
    return {k[len(kind) + 1:]: v for k, v in arrays.items() if k.startswith(kind + ".")}


@dataclass
class Scaled:
    """Per-parameter tensors of both sides for one check (gradients, or an optimizer step's weight changes)."""

    check: str
    what: str  # "gradient" | "weight change"
    mine: dict
    recorded: dict
    order: list[str]  # backward order (the original's)
    skip: dict = field(default_factory=dict)  # name -> bool mask of elements left out of the verdict, with why
    why_skipped: str = ""


def gradients(ours: dict, theirs: dict, *, tag: str, atol: float, rtol: float, order: list[str]) -> Comparison:
    """All common trainable parameters' gradients as one comparison (each scaled by its max |g|), with notes
    naming the first diverging parameter in backward order and the worst relative error per module group."""
    return scaled_parity(Scaled(GRADIENTS_CHECK, "gradient", _named(ours, "grad"), _named(theirs, "grad"), order),
                         tag=tag, atol=atol, rtol=rtol)


def updates(ours: dict, theirs: dict, *, tag: str, atol: float, rtol: float, order: list[str]) -> Comparison:
    """One optimizer step's weight changes, each side with its own recipe's optimizer. AdamW's first step moves
    each weight by about lr x g / (|g| + eps), whatever |g|: an element whose two gradients differ relatively by
    more than UPDATE_AGREEMENT (rounding decides a key bias's exactly-zero gradient, judged by the gradients check
    only down to its floor) has no agreed step, so it is left out of the verdict and counted in a note."""
    mine_g, rec_g = _named(ours, "grad"), _named(theirs, "grad")
    skip = {n: np.abs(mine_g[n].astype(np.float64) - g) > UPDATE_AGREEMENT * np.abs(g) for n, g in rec_g.items()
            if n in mine_g and mine_g[n].shape == g.shape}
    return scaled_parity(Scaled(UPDATE_CHECK, "weight change", _named(ours, "update"), _named(theirs, "update"), order,
                                skip, f"their two gradients differ by more than {UPDATE_AGREEMENT:g} of their size, "
                                      "a direction AdamW's first step (about lr x g / (|g| + eps)) turns into an "
                                      "error of up to 2 x lr; they passed the gradients check at its floor"),
                         tag=tag, atol=atol, rtol=rtol)


def scaled_parity(s: Scaled, *, tag: str, atol: float, rtol: float) -> Comparison:
    """``s``'s common parameters as one comparison, each tensor scaled by its largest |value| (floored at
    GRADIENT_FLOOR of the largest of all); notes name the first parameter to diverge in backward order, the worst
    relative error per module group, parameters present on one side only, and elements left out."""
    common = [n for n in s.order if n in s.mine and n in s.recorded] + sorted(set(s.mine) & set(s.recorded) - set(s.order))
    for name in common:
        if s.mine[name].shape != s.recorded[name].shape:
            return _failed(name, tag, s.check, f"{s.what} of {name} has shape {s.mine[name].shape} in LeRobot, "
                                               f"{s.recorded[name].shape} in the original")
    floor = GRADIENT_FLOOR * max((float(np.abs(s.recorded[n]).max()) for n in common), default=0.0)
    rel, skipped = {}, []

    def scaled():  # one parameter at a time: at real size the gradients are 1.6e9 elements per side
        for name in common:
            scale = max(float(np.abs(s.recorded[name]).max()), floor) or 1.0
            keep = ~s.skip[name] if name in s.skip else np.ones(s.recorded[name].shape, bool)
            skipped.append(int((~keep).sum()))
            mine, rec = np.where(keep, s.mine[name], 0) / scale, np.where(keep, s.recorded[name], 0) / scale
            rel[name] = float(np.abs(mine.astype(np.float64) - rec).max()) if mine.size else 0.0
            yield mine, rec

    c = compare_close_parts(scaled(), name=f"{s.what} / max|{s.what}| per parameter", atol=atol, rtol=rtol,
                            tag=tag, check=s.check)
    skipped = sum(skipped)
    bounds = np.cumsum([0, *(s.recorded[n].size for n in common)])
    c.name_index = lambda idx: _element(common, bounds, int(idx[0]), {n: s.recorded[n].shape for n in common})
    first = next((n for n in common if rel[n] > atol), None)
    if first:
        c.notes.append(f"first diverging {s.what} in backward order: {first} ({group(first)}), relative error "
                       f"{rel[first]:.3g}")
    worst: dict[str, tuple[float, str]] = {}
    for name, err in rel.items():
        worst[group(name)] = max(worst.get(group(name), (-1.0, "")), (err, name))
    c.notes.append(f"largest relative {s.what} error per module group: " + "; ".join(
        f"{g} {e:.2g} ({n})" for g, (e, n) in sorted(worst.items())))
    if skipped:
        c.notes.append(f"{skipped} element(s) left out: {s.why_skipped}")
    only = {"the original": sorted(set(s.recorded) - set(s.mine)), "LeRobot": sorted(set(s.mine) - set(s.recorded))}
    for side, names in only.items():
        if names:
            c.passed, c.reason = False, "the trainable sets differ"
            c.notes.append(f"{len(names)} parameter(s) train in {side} only ({', '.join(sorted({group(n) for n in names}))}): "
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
        order = (artifact.extra.get("training") or {}).get("order", [])
        out.append(gradients(ours, theirs, tag=tag, atol=atol, rtol=rtol, order=order))
        if any(k.startswith("update.") for k in theirs) and any(k.startswith("update.") for k in ours):
            out.append(updates(ours, theirs, tag=tag, atol=atol, rtol=rtol, order=order))
    recipe = recipe_rows(info.get("recipe") or {}, (artifact.extra.get("training") or {}).get("recipe") or {})
    differing = [r["setting"] for r in recipe if r["differs"]]
    if differing and out:
        out[-1].notes.append(f"recipes differ in: {', '.join(differing)} (the report's recipe table)")
    return out, recipe, ""
