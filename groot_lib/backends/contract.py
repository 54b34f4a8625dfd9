"""The contract both implementations honour, so the pipeline (and stage capture) is written once against it.

Polygraphy's runner contract, for a flow-matching policy. A backend module (``backends.original``,
``backends.lerobot``) defines, with exactly these signatures (a test checks them):

* ``NAME``, ``KERNEL``: how reports and refusals name it;
* ``identity() -> dict``: is it importable, and which code is it (version, commit, content hash);
* ``load(checkpoint, layout, *, variant, device)``: a context manager yielding a ``Loaded`` model and
  freeing it on exit (one model held at a time);
* ``preprocess(loaded, layout, raw) -> {dotted key: ndarray}``: raw observations to the model's inputs (with
  ``action.<group>`` chunks in ``raw``, also the encoded training target ``action`` and ``action_mask``);
* ``sample(loaded, inputs, *, seed, noise=None) -> {"action_pred", "initial_noise"}``: flat inputs
  in, seeded or noise-injected flow-matching sample out;
* ``decode(loaded, layout, raw, action_pred) -> ndarray``: what the robot gets: ``action_pred`` unnormalised,
  relative groups made absolute against ``raw``'s state, groups concatenated in the checkpoint's order;
* ``provenance(loaded) -> dict``: what really ran (dtype, attention read back, machine, code);
* ``train_step(loaded, inputs, *, seed, tape, optimizer=None) -> {"loss", "action_loss", "grads", "order"[,
  "updates"]}``: one training forward and backward, its random draws recorded on or served from ``tape``
  (backends/training.py), and with ``optimizer`` one optimizer step's weight changes;
* ``recipe(loaded) -> dict``: what a fine-tune on this side trains and how (tune flags, trainable set, timestep
  distribution, dropout, optimizer defaults).

What the two share (attention read-back, the sampling tail, provenance basics) lives here, once.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterator, Protocol

import numpy as np

from groot_lib.backends import math_stack, noise, process
from groot_lib.core import runinfo, settings
from groot_lib.core.errors import ParityError, VariantUnavailableError
from groot_lib.core.variants import Variant, check_attention_ran

FUNCTIONS = ("identity", "require", "import_stack", "load", "preprocess", "sample", "decode", "decode_as_configured",
             "provenance", "train_step", "recipe")
DEFAULT_STAGE_MB = settings.default("stage_mb")


class Backend(Protocol):
    """What ``backends.original`` and ``backends.lerobot`` are (modules satisfy it structurally; ``backend`` checks
    each against it at load, tests/test_architecture.py statically)."""

    NAME: str
    KERNEL: str

    def identity(self) -> dict: ...

    def require(self) -> Any: ...

    def import_stack(self) -> None: ...

    def load(self, checkpoint: Path, layout: Any, *, variant: Variant, device: str) -> ContextManager[Loaded]: ...

    def preprocess(self, loaded: Loaded, layout: Any, raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    def sample(self, loaded: Loaded, inputs: dict[str, np.ndarray], *, seed: int, noise: np.ndarray | None = None,
               capture_stages: bool = False, stage_inputs: bool = False,
               stage_mb: float = DEFAULT_STAGE_MB) -> dict[str, Any]: ...

    def decode(self, loaded: Loaded, layout: Any, raw: dict[str, np.ndarray],
               action_pred: np.ndarray) -> np.ndarray: ...

    def decode_as_configured(self, loaded: Loaded, layout: Any, raw: dict[str, np.ndarray],
                             action_pred: np.ndarray) -> tuple[str | None, np.ndarray]: ...

    def provenance(self, loaded: Loaded) -> dict: ...

    def train_step(self, loaded: Loaded, inputs: dict[str, np.ndarray], *, seed: int, tape: Any,
                   optimizer: dict | None = None) -> dict[str, Any]: ...

    def recipe(self, loaded: Loaded) -> dict[str, Any]: ...


def mismatches(module: Any) -> list[str]:
    """How ``module`` departs from ``Backend``: a missing name, or a function whose parameters (names, kinds,
    defaults) differ from the contract's. Empty when it honours it."""
    import inspect

    found = [f"{name} is missing" for name in ("NAME", "KERNEL", *FUNCTIONS) if not hasattr(module, name)]
    for name in FUNCTIONS:
        if not hasattr(module, name):
            continue
        want = [(p.name, p.kind, p.default) for p in list(inspect.signature(getattr(Backend, name)).parameters.values())[1:]]
        have = [(p.name, p.kind, p.default) for p in inspect.signature(getattr(module, name)).parameters.values()]
        if have != want:
            found.append(f"{name}{inspect.signature(getattr(module, name))} is not the contract's "
                         f"{name}({', '.join(p[0] for p in want)})")
    return found


def backend(name: str) -> Any:
    """The backend module ``name`` ("original" | "lerobot"), checked against the contract: the pipeline reaches
    an implementation only through here."""
    import importlib

    module = importlib.import_module(f"groot_lib.backends.{name}")
    wrong = mismatches(module)
    if wrong:
        raise ParityError(f"groot_lib.backends.{name} does not honour the backend contract: {'; '.join(wrong)}")
    return module


@contextmanager
def flow_steps(loaded: "Loaded", steps: int | None) -> Iterator[None]:
    """Sample with ``steps`` flow-matching steps instead of the checkpoint's (None: unchanged); both implementations
    keep the count on their action head."""
    head = loaded.model.action_head
    before = head.num_inference_timesteps
    if steps is not None:
        if int(steps) < 1:
            raise ParityError(f"steps must be a whole number >= 1, got {steps!r}")
        head.num_inference_timesteps = int(steps)
    try:
        yield
    finally:
        head.num_inference_timesteps = before


def rerun_stages(loaded: "Loaded", recorded: dict[str, np.ndarray], *,
                 model_inputs: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Each of the loaded model's named stages re-run on the inputs another run recorded for it (backends/
    stage_hooks.rerun): ({key: output}, {key: why not}); the same for both implementations."""
    from groot_lib.backends import stage_hooks

    return stage_hooks.rerun(loaded.model, recorded, device=loaded.device, model_inputs=model_inputs)


@dataclass
class Loaded:
    """A loaded model under one variant: what ``load`` yields and every other call takes."""

    model: Any  # the nn.Module with ``config`` and ``get_action``
    checkpoint: Path
    variant: Variant
    device: str
    attention: str | None
    extra: dict = field(default_factory=dict)  # backend-specific handles (processor, policy)


def attention_implementation(model: Any) -> str | None:
    """The attention kernel transformers actually bound (LeRobot and gr00t fall back silently)."""
    config = getattr(model, "config", None)
    return getattr(config, "_attn_implementation", None) if config is not None else None


def checked_attention(backbone: Any, variant: Variant, *, what: str) -> str | None:
    """Read back the attention the backbone really runs; refuse when it is not the variant's."""
    attention = attention_implementation(backbone)
    check_attention_ran(variant, attention, what=what)
    return attention


@contextmanager
def holding(loaded: Loaded) -> Iterator[Loaded]:
    """Yield a loaded model, then let it go and give its memory back (the next variant, or the consumer once
    the producer has published, loads alone). The caller keeps no other reference to the model: one left in
    a frame would be freed only after the trim, and glibc would keep its pages."""
    try:
        yield loaded
    finally:
        loaded.model = None
        loaded.extra.clear()
        process.free_memory()


def check_sdpa_backend(variant: Variant, device: str) -> None:
    """A forced FLASH_ATTENTION SDPA backend needs an sm80+ GPU: refuse anything less, naming it."""
    import torch

    from groot_lib.core.errors import VariantUnavailableError

    if variant.sdpa_backend != "FLASH_ATTENTION":
        return
    index = torch.device(device).index or 0
    capability = torch.cuda.get_device_capability(index)
    if capability < (8, 0):
        raise VariantUnavailableError(
            f"variant {variant.name!r} forces torch SDPA's FLASH_ATTENTION backend, which needs an sm80+ GPU; "
            f"{torch.cuda.get_device_name(index)} is sm{capability[0]}{capability[1]}. Not falling back.")


def sdpa_backend(variant: Variant):
    """Only the variant's SDPA backend may run while sampling (nothing forced: no restriction)."""
    import contextlib

    if not variant.sdpa_backend:
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel(getattr(SDPBackend, variant.sdpa_backend))


@contextmanager
def forced_backend_refusal(variant: Variant) -> Iterator[None]:
    """A forced SDPA backend that has no kernel for some call raises torch's bare "No available kernel";
    turn it into a VariantUnavailableError carrying torch's own reasons (its warnings, e.g. "Flash Attention
    does not support non-null attn_mask"), so the report says why and the other variants still run."""
    import warnings

    if not variant.sdpa_backend:
        yield
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        except RuntimeError as exc:
            # CUDA says "No available kernel", the CPU "No viable backend ... was found"
            if "No available kernel" not in str(exc) and "No viable backend" not in str(exc):
                raise
            reasons = list(dict.fromkeys(str(w.message).split(" (Triggered internally")[0].strip().rstrip(".")
                                         for w in caught
                                         if "kernel not used because" not in str(w.message)
                                         and "runtime disabled" not in str(w.message)))
            raise VariantUnavailableError(
                f"variant {variant.name!r}: torch SDPA forced to {variant.sdpa_backend} has no kernel for an "
                f"attention call this model makes; torch says: {'; '.join(reasons) or exc}. Not falling back to "
                "another backend: that would be a different variant.") from None


def stage_capture(capture_stages: bool, stage_inputs: bool, stage_mb: float) -> dict | None:
    """``sample``'s three stage arguments as ``sample_actions`` takes them: None, or what to capture."""
    return {"inputs": stage_inputs, "mb": stage_mb} if capture_stages else None


def sample_actions(loaded: Loaded, call: Callable[[], Any], batch: int, *, seed: int,
                   noise_in: np.ndarray | None, context: Any = None, stages: dict | None = None) -> dict[str, Any]:
    """The shared tail of ``sample``: seed or inject the initial noise, run, return numpy action_pred + noise
    (+ ``stages``: the named stages' outputs, backends/stage_hooks.py, when ``stages`` says what to capture:
    ``stage_capture``)."""
    import contextlib

    import torch

    from groot_lib.backends import stage_hooks

    config = loaded.model.config
    shape = (batch, config.action_horizon, config.max_action_dim)
    capture = (stage_hooks.capture(loaded.model, inputs=stages["inputs"], limit_bytes=int(stages["mb"] * 2**20))
               if stages else contextlib.nullcontext({}))
    with forced_backend_refusal(loaded.variant), torch.inference_mode(), (context or contextlib.nullcontext()), \
            sdpa_backend(loaded.variant), capture as captured:
        out, used = noise.sample_initial_noise(call, shape, seed=seed, noise=noise_in)
    result: dict[str, Any] = {"action_pred": out["action_pred"].float().cpu().numpy()}
    if stages:
        result["stages"] = captured
    if used is not None:
        result["initial_noise"] = np.asarray(used, dtype=np.float32)
    return result


def concat_action_groups(groups: dict[str, Any], layout: Any, *, who: str) -> np.ndarray:
    """A decoder's per-group output as one float32 (B, horizon, dim) array in the checkpoint's group order;
    a group missing or extra is an error that names both lists."""
    expected = list(layout.action_dims)
    if sorted(groups) != sorted(expected):
        raise ValueError(f"{who}'s decoded actions for {layout.tag!r} have groups {sorted(groups)}; the checkpoint's "
                         f"modality config lists {expected}")
    return np.concatenate([np.asarray(groups[key], dtype=np.float32) for key in expected], axis=-1)


def provenance_once(backend: Any, loaded: Loaded) -> dict[str, Any]:
    """``backend.provenance(loaded)``, computed once per loaded model (it reads the machine's math stack)."""
    if "provenance" not in loaded.extra:
        loaded.extra["provenance"] = backend.provenance(loaded)
    return loaded.extra["provenance"]


def base_provenance(loaded: Loaded, implementation: str, dtype: str) -> dict[str, Any]:
    """What every backend records: interpreter, stack versions, device, dtype, attention, machine."""
    import torch

    return {"implementation": implementation, "python": sys.version.split()[0], "torch": torch.__version__,
            **runinfo.versions("transformers"), "device": loaded.device, "dtype": dtype,
            "attention": (f"{loaded.attention} ({loaded.variant.sdpa_backend} backend forced)"
                          if loaded.variant.sdpa_backend else loaded.attention), "variant": loaded.variant.name,
            "machine": math_stack.machine_info(loaded.device)}
