"""The flow-matching sampler's initial noise: seed it, record it, or inject a recorded one.

A seed alone cannot align two runs: CPU and CUDA generators, and different dtypes, draw different
noise. Recording the first run's noise and injecting it into every other run makes the comparison
about the model, not the RNG. Both backends sample through ``sample_initial_noise``.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np

from groot_lib.core.errors import ParityError


def seed_everything(seed: int) -> None:
    """Seed every generator the flow-matching sampler could touch, right before sampling."""
    import random

    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def _randn_shape(args: tuple, kwargs: dict) -> tuple[int, ...]:
    size = kwargs.get("size")
    if size is None:
        size = args[0] if len(args) == 1 and isinstance(args[0], (tuple, list)) else args
    return tuple(int(s) for s in size)


@contextmanager
def capture_initial_noise(shape: tuple[int, ...]) -> Iterator[dict]:
    """Record (in fp32) the first ``torch.randn`` of ``shape``: the sampler's initial noise."""
    import torch

    captured: dict = {}
    real = torch.randn

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        if "noise" not in captured and tuple(out.shape) == tuple(shape):
            captured["noise"] = out.detach().float().cpu().numpy()
        return out

    torch.randn = spy
    try:
        yield captured
    finally:
        torch.randn = real


@contextmanager
def inject_initial_noise(noise: np.ndarray) -> Iterator[None]:
    """Make the sampler start from ``noise`` (cast to its dtype/device) instead of drawing.

    RNG streams differ across devices and dtypes; injecting the recorded noise is
    what makes a CPU-vs-CUDA or fp32-vs-bf16 comparison meaningful.
    """
    import torch

    real = torch.randn
    used = []

    def replay(*args, **kwargs):
        if not used and _randn_shape(args, kwargs) == tuple(noise.shape):
            used.append(True)
            return torch.from_numpy(np.ascontiguousarray(noise)).to(
                device=kwargs.get("device") or "cpu", dtype=kwargs.get("dtype") or torch.float32
            )
        return real(*args, **kwargs)

    torch.randn = replay
    try:
        yield
    finally:
        torch.randn = real
    if not used:
        raise ParityError(
            f"injected initial noise of shape {tuple(noise.shape)} was never drawn by the model: "
            "its sampler no longer calls torch.randn with that shape"
        )


def sample_initial_noise(get_action, shape: tuple[int, ...], *, seed: int, noise: np.ndarray | None) -> tuple[Any, np.ndarray | None]:
    """Seed, then run ``get_action()`` either from injected ``noise`` or recording the noise it draws."""
    seed_everything(seed)
    if noise is not None:
        with inject_initial_noise(noise):
            return get_action(), np.asarray(noise, dtype=np.float32)
    with capture_initial_noise(shape) as captured:
        out = get_action()
    return out, captured.get("noise")
