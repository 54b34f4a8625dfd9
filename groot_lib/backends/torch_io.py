"""Nested batches <-> the artifact's flat dotted keys, and tensors -> numpy in their native dtype."""

from __future__ import annotations

from typing import Any

import numpy as np


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts -> {'a.b': leaf} (the artifact's dotted ``in::`` keys)."""
    if hasattr(tree, "items"):
        out: dict[str, Any] = {}
        for key, value in tree.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: tree}


def unflatten(flat: dict[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for dotted, value in flat.items():
        *parents, leaf = dotted.split(".")
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def to_numpy(value: Any) -> np.ndarray:
    """Tensor -> numpy in its native dtype (bf16, which numpy lacks, becomes fp32)."""
    import torch

    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        if value.dtype == torch.bfloat16:
            value = value.float()
        return value.numpy()
    return np.asarray(value)


def to_torch_tree(flat: dict[str, np.ndarray]) -> dict[str, Any]:
    """The artifact's flat dotted arrays -> the nested CPU tensors a model's ``get_action`` takes
    (both models move their inputs to their own device)."""
    import torch

    return unflatten({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in flat.items()})
