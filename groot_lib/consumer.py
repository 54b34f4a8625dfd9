"""Consumer: model parity and preprocessor parity of LeRobot against the artifacts.

Runs in the groot-lerobot kernel. Every check yields a ``Comparison``; the
notebook only displays what this module returns.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import checkpoint as ckpt
from .artifact import Artifact, find_artifacts, load_artifact
from .compare import Comparison, cell_max_abs_delta, compare_close, compare_exact, violation_mask
from .errors import ParityError

VERDICTS_FILE = "verdicts.json"
# Collated tensor names that must match exactly (token-level); the rest within atol/rtol.
EXACT_INPUTS = ("input_ids", "attention_mask", "image_grid_thw", "embodiment_id")
CLOSE_INPUTS = ("pixel_values", "state")


def tolerances(atol=None, rtol=None) -> tuple[float, float]:
    """Parameters win; else GROOT_PARITY_ATOL / GROOT_PARITY_RTOL; else 1e-3."""
    def pick(value, env):
        if value not in (None, ""):
            return float(value)
        return float(os.environ.get(env) or 1e-3)

    return pick(atol, "GROOT_PARITY_ATOL"), pick(rtol, "GROOT_PARITY_RTOL")


def device_setting(device=None) -> str:
    return device or os.environ.get("GROOT_PARITY_DEVICE") or "auto"


@dataclass
class TagResult:
    tag: str
    layout: ckpt.EmbodimentLayout
    model: Comparison
    preprocessor: list[Comparison]
    lerobot_action: np.ndarray
    original_action: np.ndarray
    noise_mode: str
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def comparisons(self) -> list[Comparison]:
        return [self.model, *self.preprocessor]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.comparisons)

    def heatmap_data(self) -> dict:
        """|delta| max over batch on (horizon x action dim), violations, and the valid region."""
        if self.lerobot_action.shape != self.original_action.shape:
            return {}
        return {
            "delta_hd": cell_max_abs_delta(self.lerobot_action, self.original_action),
            "violations_hd": violation_mask(self.lerobot_action, self.original_action,
                                            self.model.atol, self.model.rtol).any(axis=0),
            "valid_horizon": self.layout.action_horizon,
            "valid_dim": self.layout.action_dim,
        }


def load_artifacts(artifacts_dir, checkpoint: Path, tags=None) -> dict[str, Artifact]:
    """Default-variant artifacts per tag, validated against the checkpoint's fingerprint."""
    found = find_artifacts(artifacts_dir)
    wanted = tags or sorted(found)
    missing = [t for t in wanted if t not in found]
    if missing:
        raise ParityError(f"no artifact for tag(s) {missing} in {artifacts_dir}; found {sorted(found)}. "
                          "Re-run the producer for them.")
    expected = ckpt.fingerprint(checkpoint)["fingerprint"]
    return {t: load_artifact(found[t], expected_fingerprint=expected) for t in wanted}


def model_parity(bundle, artifact: Artifact, *, atol: float, rtol: float, noise_mode: str = "seed"):
    """Replay the artifact's byte-identical inputs; compare full ``action_pred`` (no cropping)."""
    from . import lerobot_backend as lb

    if noise_mode not in ("seed", "inject"):
        raise ParityError(f"noise_mode must be 'seed' or 'inject', got {noise_mode!r}")
    noise = artifact.initial_noise if noise_mode == "inject" else None
    if noise_mode == "inject" and noise is None:
        raise ParityError(f"{artifact.path}: noise_mode='inject' but the artifact has no out::initial_noise")
    out = lb.sample(bundle, artifact.inputs, seed=artifact.seed, noise=noise)
    comparison = compare_close(out["action_pred"], artifact.action_pred, name="action_pred", atol=atol, rtol=rtol,
                               tag=artifact.embodiment_tag, check="model parity")
    if noise_mode == "seed" and artifact.initial_noise is not None and "initial_noise" in out:
        same = out["initial_noise"].shape == artifact.initial_noise.shape and np.array_equal(out["initial_noise"], artifact.initial_noise)
        comparison.notes.append("seeded initial noise identical to the producer's" if same else
                                "seeded initial noise DIFFERS from the producer's (RNG/device/dtype): use noise_mode='inject'")
    return comparison, out["action_pred"]


def preprocessor_parity(checkpoint: Path, layout, artifact: Artifact, *, atol: float, rtol: float,
                        device: str = "cpu") -> list[Comparison]:
    """LeRobot's own preprocessor on the raw observations vs the original's collated inputs."""
    from . import lerobot_backend as lb

    ours = lb.preprocess(checkpoint, layout, artifact.raw, device=device)
    theirs = {k.split(".", 1)[1] if k.startswith("inputs.") else k: v for k, v in artifact.inputs.items()}
    results = []
    for name in EXACT_INPUTS + CLOSE_INPUTS:
        if name not in theirs:
            continue
        if name not in ours:
            c = compare_exact(np.zeros(0), theirs[name], name=name, tag=layout.tag, check="preprocessor parity")
            c.passed, c.reason = False, f"LeRobot's preprocessor produced no {name!r}"
        elif name in EXACT_INPUTS:
            c = compare_exact(ours[name], theirs[name], name=name, tag=layout.tag, check="preprocessor parity")
        else:
            c = compare_close(ours[name], theirs[name], name=name, atol=atol, rtol=rtol, tag=layout.tag,
                              check="preprocessor parity")
        results.append(c)
    extra_ours = sorted(set(ours) - set(theirs))
    extra_theirs = sorted(set(theirs) - set(ours))
    if results and (extra_ours or extra_theirs):
        results[0].notes.append(f"extra keys: LeRobot only {extra_ours or '-'}; original only {extra_theirs or '-'}")
    return results


def run_all(checkpoint, artifacts_dir, *, tags=None, atol=None, rtol=None, device=None,
            noise_mode: str = "seed") -> list[TagResult]:
    """Load LeRobot once, then model + preprocessor parity for every tag."""
    from . import lerobot_backend as lb
    from . import runtime
    from .variants import get_variant

    checkpoint = ckpt.resolve_checkpoint(checkpoint)
    atol, rtol = tolerances(atol, rtol)
    device = runtime.resolve_device(device_setting(device))
    artifacts = load_artifacts(artifacts_dir, checkpoint, tags)
    variant = get_variant("fp32-sdpa")
    first = next(iter(artifacts))
    bundle = lb.load(checkpoint, ckpt.embodiment_layout(checkpoint, first), variant=variant, device=device)
    results = []
    for tag, artifact in artifacts.items():
        start = time.perf_counter()
        layout = ckpt.embodiment_layout(checkpoint, tag)
        model, ours = model_parity(bundle, artifact, atol=atol, rtol=rtol, noise_mode=noise_mode)
        pre = preprocessor_parity(checkpoint, layout, artifact, atol=atol, rtol=rtol, device=device)
        results.append(TagResult(tag, layout, model, pre, ours, artifact.action_pred, noise_mode,
                                 seconds=time.perf_counter() - start))
    return results


def _tag_summary(result: TagResult, limit: int = 200) -> dict:
    data = result.heatmap_data()
    cells = np.argwhere(data["violations_hd"]).tolist() if data else []
    return {"passed": result.passed, "noise_mode": result.noise_mode, "seconds": round(result.seconds, 2),
            "n_violating_cells": len(cells), "violating_cells": cells[:limit],
            "valid_horizon": result.layout.action_horizon, "valid_dim": result.layout.action_dim}


def write_verdicts(results: list[TagResult], output_dir, *, source: dict, settings: dict) -> Path:
    """Machine-readable summary the report's index page is built from (atomic write)."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    payload = {
        "passed": all(r.passed for r in results) and bool(results),
        "source": source,
        "settings": settings,
        "rows": [c.as_row() for r in results for c in r.comparisons],
        "tags": {r.tag: _tag_summary(r) for r in results},
    }
    path = output_dir / VERDICTS_FILE
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=float) + "\n")
    os.replace(tmp, path)
    return path
