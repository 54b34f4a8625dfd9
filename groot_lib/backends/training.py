"""One training step, run the same way on both implementations so loss and gradients can be compared exactly.

A training forward draws random numbers: the flow-matching noise (``torch.randn``), the timestep's Beta sample,
the state-dropout decisions (``torch.rand``) and every dropout mask. The original's step runs seeded and records
each draw on a tape; LeRobot's step is served the same draws, in the same order and shape, so any difference in
loss or gradient is the code's, never the RNG's. A draw asked for in another order or shape is itself a finding
(``DrawMismatch``). Dropout goes through the tape as a uniform draw and ``u >= p`` masks (the same mathematics as
torch's kernel, whose masks cannot be injected); each side then computes ``(1 - t) * noise_s`` and the rest itself,
so a different ``noise_s``, velocity, mask or frozen set still shows.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

import numpy as np

from groot_lib.backends import torch_io
from groot_lib.compare.training import group
from groot_lib.core.errors import ParityError

KINDS = ("randn", "rand", "beta")


class DrawMismatch(ParityError):
    """LeRobot asked for a random draw the original did not make at that point of its step."""


class Tape:
    """The random draws of one training step, in order: (kind, array). Recording calls through to torch's own
    generators; replaying serves the recorded values, checking each call's kind and shape."""

    def __init__(self, draws: list[tuple[str, np.ndarray]] | None = None):
        self.replay = draws is not None
        self.draws: list[tuple[str, np.ndarray]] = list(draws or [])
        self.position = 0

    def take(self, kind: str, real: Any) -> Any:
        """``real`` (what torch drew) when recording, recorded; the recorded draw in its place when replaying."""
        import torch

        if not self.replay:
            self.draws.append((kind, real.detach().float().cpu().numpy()))
            return real
        if self.position >= len(self.draws):
            raise DrawMismatch(f"draw {self.position}: LeRobot draws torch.{kind}{tuple(real.shape)} after the "
                               f"original's last draw ({len(self.draws)} in its training step)")
        want_kind, value = self.draws[self.position]
        if want_kind != kind or tuple(value.shape) != tuple(real.shape):
            raise DrawMismatch(f"draw {self.position}: LeRobot draws {kind}{tuple(real.shape)} where the original "
                               f"drew {want_kind}{tuple(value.shape)}")
        self.position += 1
        return torch.as_tensor(value, dtype=real.dtype, device=real.device)

    def unused(self) -> int:
        return len(self.draws) - self.position if self.replay else 0

    def arrays(self) -> dict[str, np.ndarray]:
        """``{"<index>.<kind>": array}``: how the tape travels in an artifact."""
        return {f"{i:04d}.{kind}": value for i, (kind, value) in enumerate(self.draws)}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "Tape":
        draws = []
        for name in sorted(arrays):
            index, _, kind = name.partition(".")
            if not index.isdigit() or kind not in KINDS:
                raise ParityError(f"training draw {name!r}: expected '<index>.<kind>' with kind one of {KINDS}")
            draws.append((kind, np.asarray(arrays[name])))
        return cls(draws)


@contextlib.contextmanager
def taped(tape: Tape) -> Iterator[Tape]:
    """torch.randn, torch.rand, Beta.sample and functional dropout go through ``tape`` while inside."""
    import torch
    import torch.nn.functional as F
    from torch.distributions import Beta

    randn, rand, beta_sample, dropout = torch.randn, torch.rand, Beta.sample, F.dropout

    def taped_randn(*args, **kwargs):
        return tape.take("randn", randn(*args, **kwargs))

    def taped_rand(*args, **kwargs):
        return tape.take("rand", rand(*args, **kwargs))

    def taped_beta(self, sample_shape=torch.Size()):
        return tape.take("beta", beta_sample(self, sample_shape))

    def taped_dropout(input, p=0.5, training=True, inplace=False):  # noqa: A002 - torch's own signature
        if not training or p == 0:
            return input
        keep = taped_rand(input.shape, device=input.device) >= p
        return input * keep.to(input.dtype) / (1 - p)

    torch.randn, torch.rand, Beta.sample, F.dropout = taped_randn, taped_rand, taped_beta, taped_dropout
    try:
        yield tape
    finally:
        torch.randn, torch.rand, Beta.sample, F.dropout = randn, rand, beta_sample, dropout


def step(model: Any, forward: Callable[[], dict], *, seed: int, tape: Tape,
         optimizer: dict | None = None) -> dict[str, Any]:
    """One training forward and backward of ``model`` (``forward()`` returns its output dict with ``loss`` and
    ``action_loss``): loss, per-element action loss, every trainable parameter's gradient and the order the
    backward pass produced them in; with ``optimizer`` (a recipe's optimizer settings) also one optimizer step's
    weight changes (``updates``). The model is back in eval mode, weights unchanged, without gradients, on return."""
    import random

    import torch

    trainable = {name: p for name, p in model.named_parameters() if p.requires_grad}
    if not trainable:
        raise ParityError("no parameter of the model is trainable: the training step has nothing to compare")
    order: list[str] = []
    hooks = [p.register_post_accumulate_grad_hook(lambda _p, n=name: order.append(n))
             for name, p in trainable.items()]
    model.zero_grad(set_to_none=True)
    model.train()
    try:
        torch.manual_seed(seed)
        random.seed(seed)
        with torch.enable_grad(), taped(tape):
            out = forward()
            out["loss"].backward()
        if tape.unused():
            raise DrawMismatch(f"LeRobot's training step made {tape.position} random draws; the original made "
                               f"{len(tape.draws)}")
        # the trainable set as the step left it: an implementation may freeze modules inside its forward
        grads = {name: (p.grad.detach().float().cpu().numpy() if p.grad is not None
                        else np.zeros(tuple(p.shape), np.float32)) for name, p in trainable.items() if p.requires_grad}
        updates = one_update({n: p for n, p in trainable.items() if n in grads}, optimizer) if optimizer else None
        return {"loss": np.asarray(out["loss"].detach().float().cpu().numpy(), np.float32).reshape(()),
                "action_loss": torch_io.to_numpy(out["action_loss"].detach().float()),
                "grads": grads, "order": [n for n in order if n in grads] + [n for n in grads if n not in order],
                **({"updates": updates} if updates is not None else {})}
    finally:
        for hook in hooks:
            hook.remove()
        model.zero_grad(set_to_none=True)
        model.eval()


def one_update(params: dict[str, Any], optimizer: dict) -> dict[str, np.ndarray]:
    """One AdamW step over ``params`` (their gradients in place) with a recipe's settings: gradients clipped to its
    norm first, as both trainers do, at its peak learning rate (a warmup schedule's very first step has lr 0).
    Returns {name: weight after - weight before}; the weights are restored."""
    import torch

    before = {name: p.detach().clone() for name, p in params.items()}
    if optimizer.get("grad_clip_norm"):
        torch.nn.utils.clip_grad_norm_(list(params.values()), float(optimizer["grad_clip_norm"]))
    adamw = torch.optim.AdamW(list(params.values()), lr=float(optimizer["lr"]), betas=tuple(optimizer["betas"]),
                              eps=float(optimizer["eps"]), weight_decay=float(optimizer["weight_decay"]))
    adamw.step()
    with torch.no_grad():
        updates = {name: (p.detach() - before[name]).float().cpu().numpy() for name, p in params.items()}
        for name, p in params.items():
            p.copy_(before[name])
    return updates


def dropout_rates(model: Any) -> dict[str, float]:
    """Each dropout rate the model's modules train with, by the module group holding it (``group`` below)."""
    import torch

    rates: dict[str, set] = {}
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Dropout) and module.p > 0:
            rates.setdefault(group(name), set()).add(float(module.p))
    return {g: max(ps) for g, ps in sorted(rates.items())}


def recipe(model: Any, *, optimizer: dict) -> dict[str, Any]:
    """What a fine-tune on this side trains and how: the tune flags, the trainable parameters per group, the
    timestep distribution, state dropout, module dropout and the optimizer defaults this side documents."""
    config = model.config
    trainable: dict[str, int] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            trainable[group(name)] = trainable.get(group(name), 0) + int(p.numel())
    keys = ("tune_llm", "tune_visual", "tune_top_llm_layers", "tune_projector", "tune_diffusion_model", "tune_vlln",
            "noise_beta_alpha", "noise_beta_beta", "noise_s", "num_timestep_buckets", "state_dropout_prob")
    return {**{k: getattr(config, k, None) for k in keys},
            "trainable parameters": trainable, "dropout": dropout_rates(model), "optimizer": optimizer}
