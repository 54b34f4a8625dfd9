"""The training-step check's two halves, written once against the backend contract: the original records one
training step on a training sample (the tag's fixed observation plus an action chunk), LeRobot replays it.

The original's half stores, in the artifact's ``train::`` section: the action chunk, the collated inputs its own
training preprocessing made of the sample (with the encoded target ``action`` and ``action_mask``), the random
draws of its step (backends/training.py), the loss, the per-element action loss and every trainable parameter's
gradient; its recipe and the backward order go in ``meta::extra``. LeRobot's half runs its own preprocessing on
the same sample (target-encoding parity) and its own training step on the original's collated inputs with the
original's draws (loss and gradient parity), plus its recipe.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from groot_lib.core.observations import build_action_chunk

PREFIX = "train."  # LeRobot's replay arrays of this check: train.target.<key>, train.loss, train.grad.<name> ...


def record(backend: Any, loaded: Any, layout: Any, raw: dict[str, np.ndarray], *, seed: int,
           statistics: dict, update: bool) -> tuple[dict[str, np.ndarray], dict]:
    """The original's training step on ``raw`` plus a chunk drawn from the checkpoint's statistics (and, with
    ``update``, one optimizer step): (the artifact's ``train::`` arrays, {"order", "recipe"})."""
    from groot_lib.backends.training import Tape

    batch = int(next(iter(raw.values())).shape[0])
    chunk = build_action_chunk(layout, seed=seed, batch_size=batch, statistics=statistics)
    inputs = backend.preprocess(loaded, layout, {**raw, **chunk})
    tape, recipe = Tape(), backend.recipe(loaded)
    out = backend.train_step(loaded, inputs, seed=seed, tape=tape, optimizer=recipe["optimizer"] if update else None)
    arrays = {**chunk, **{f"in.{k}": v for k, v in inputs.items()}, **{f"draw.{k}": v for k, v in tape.arrays().items()},
              "loss": out["loss"], "action_loss": out["action_loss"], **_named(out)}
    return arrays, {"order": out["order"], "recipe": recipe}


def _named(out: dict) -> dict[str, np.ndarray]:
    """A step's gradients (and optimizer-step weight changes) keyed ``grad.<name>`` (``update.<name>``)."""
    return {**{f"grad.{name}": g for name, g in out["grads"].items()},
            **{f"update.{name}": u for name, u in out.get("updates", {}).items()}}


def replay(backend: Any, loaded: Any, layout: Any, artifact: Any, *, update: bool) -> tuple[dict[str, np.ndarray], dict]:
    """LeRobot's half: its preprocessing of the same sample, its step on the original's inputs and draws, its
    recipe: (``train.``-prefixed arrays, {"recipe", "order", "error", "targets_error"}). A step that asks for other
    draws than the original made, or preprocessing that refuses the sample, is recorded, not raised: it is the
    finding."""
    from groot_lib.backends.training import DrawMismatch, Tape

    section = artifact.training
    chunk = {k: v for k, v in section.items() if k.startswith("action.")}
    recipe = backend.recipe(loaded)
    info: dict = {"recipe": recipe, "order": [], "error": None, "targets_error": None}
    try:
        own = backend.preprocess(loaded, layout, {**artifact.raw, **chunk})
    except Exception as exc:  # noqa: BLE001 - a sample one side cannot encode is a finding of the targets check
        own, info["targets_error"] = {}, f"{type(exc).__name__}: {exc}"
    inputs = {k[len("in."):]: v for k, v in section.items() if k.startswith("in.")}
    tape = Tape.from_arrays({k[len("draw."):]: v for k, v in section.items() if k.startswith("draw.")})
    arrays = {f"{PREFIX}target.{k}": v for k, v in own.items() if k in ("action", "action_mask", "state")}
    try:
        out = backend.train_step(loaded, inputs, seed=artifact.seed, tape=tape,
                                 optimizer=recipe["optimizer"] if update else None)
    except DrawMismatch as exc:
        info["error"] = str(exc)
        return arrays, info
    arrays |= {f"{PREFIX}loss": out["loss"], f"{PREFIX}action_loss": out["action_loss"],
               **{PREFIX + k: v for k, v in _named(out).items()}}
    info["order"] = out["order"]
    return arrays, info
