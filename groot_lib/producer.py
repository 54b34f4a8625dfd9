"""Producer: per embodiment, build observations, run the original, write one artifact.

Runs in the groot-original kernel. When ``gr00t`` is not importable and the
checkpoint is the embedded tiny one, it serves the committed recordings instead
and says so; for any other checkpoint it stops with instructions.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import checkpoint as ckpt
from . import tiny_layout
from .artifact import artifact_path, load_artifact, save_artifact
from .errors import MissingPackageError
from .observations import OBSERVATION_RECIPE, build_observations
from .variants import DEFAULT_VARIANT, get_variant

SOURCE_FILE = "source.json"


@dataclass
class ProducerResult:
    mode: str  # "live" | "recorded"
    banner: str
    artifacts: dict[str, dict[str, Path]] = field(default_factory=dict)  # tag -> variant -> path
    timings: dict[str, float] = field(default_factory=dict)

    def summary_rows(self) -> list[dict]:
        return [{"tag": t, "variant": v, "artifact": p.name} for t, vs in self.artifacts.items() for v, p in vs.items()]


def parse_list(value) -> list[str] | None:
    """Notebook/CLI parameters arrive as 'a,b' strings or lists; empty means default."""
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return list(value)


def _write_source(output_dir: Path, info: dict) -> None:
    tmp = output_dir / f".{SOURCE_FILE}.tmp"
    tmp.write_text(json.dumps(info, indent=2) + "\n")
    os.replace(tmp, output_dir / SOURCE_FILE)


def read_source(artifacts_dir: str | os.PathLike) -> dict:
    path = Path(artifacts_dir) / SOURCE_FILE
    return json.loads(path.read_text()) if path.is_file() else {"mode": "unknown", "banner": f"no {SOURCE_FILE} in {artifacts_dir}"}


def use_recordings(checkpoint: Path, output_dir: Path, tags: list[str], variants: list[str], reason: str,
                   *, seed: int, batch_size: int) -> ProducerResult:
    """Copy the committed recordings (validated against the checkpoint) into ``output_dir``."""
    expected = ckpt.fingerprint(checkpoint)["fingerprint"]
    provenance = json.loads((tiny_layout.RECORDED_ROOT / "provenance.json").read_text())
    recorded = (provenance.get("seed"), provenance.get("batch_size"))
    missing = [v for v in variants if v not in provenance.get("variants", [])]
    if recorded != (seed, batch_size) or missing:
        raise MissingPackageError(
            f"gr00t is not importable ({reason}) and the recordings in {tiny_layout.RECORDED_ROOT} cover only "
            f"seed={recorded[0]}, batch_size={recorded[1]}, variants={provenance.get('variants')}; asked for "
            f"seed={seed}, batch_size={batch_size}, variants={variants}. Use those settings, or provide gr00t: "
            "`make setup GR00T_SRC=/path/to/Isaac-GR00T`."
        )
    banner = (f"original outputs: recorded with gr00t {provenance.get('gr00t_commit', '?')[:12]}, not run live "
              f"({reason})")
    result = ProducerResult(mode="recorded", banner=banner)
    for tag in tags:
        for variant in variants:
            src = artifact_path(tiny_layout.RECORDED_ROOT, tag, variant)
            load_artifact(src, expected_fingerprint=expected)  # refuse stale recordings early
            dst = artifact_path(output_dir, tag, variant)
            tmp = dst.with_name(f".{dst.name}.tmp")
            shutil.copyfile(src, tmp)
            os.replace(tmp, dst)
            result.artifacts.setdefault(tag, {})[variant] = dst
    _write_source(output_dir, {"mode": "recorded", "banner": banner, "recording": provenance})
    return result


def produce(checkpoint: str | os.PathLike, output_dir: str | os.PathLike, *, tags=None, seed: int = 0,
            batch_size: int = 2, device: str = "auto", variants=None, allow_recorded: bool = True,
            environment: dict | None = None) -> ProducerResult:
    """Run the original on every requested tag and variant; one artifact per (tag, variant)."""
    from . import original_backend as ob

    checkpoint = ckpt.resolve_checkpoint(checkpoint)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    tags = parse_list(tags) or ckpt.embodiment_tags(checkpoint)
    variants = parse_list(variants) or [DEFAULT_VARIANT]
    status = ob.gr00t_status()
    if not status["available"]:
        if allow_recorded and tiny_layout.is_embedded_default(checkpoint):
            return use_recordings(checkpoint, output_dir, tags, variants, seed=seed, batch_size=batch_size,
                                  reason=f"gr00t not importable: {status['error']}")
        ob.require_gr00t()  # raises with the how-to

    from . import runtime

    device = runtime.resolve_device(device)
    fp = ckpt.fingerprint(checkpoint)
    stats = json.loads((checkpoint / "statistics.json").read_text())
    banner = f"original outputs: run live with gr00t {(status.get('commit') or 'unknown commit')[:12]} from {status['source']}"
    result = ProducerResult(mode="live", banner=banner)
    layouts = {tag: ckpt.embodiment_layout(checkpoint, tag) for tag in tags}
    raws = {tag: build_observations(layouts[tag], seed=seed, batch_size=batch_size, statistics=stats[tag]) for tag in tags}
    first_noise: dict[str, object] = {}
    for variant_name in variants:
        variant = get_variant(variant_name)
        start = time.perf_counter()
        bundle = ob.load(checkpoint, variant=variant, device=device)
        result.timings[f"load {variant_name}"] = time.perf_counter() - start
        provenance = ob.provenance(bundle, status)
        for tag in tags:
            start = time.perf_counter()
            collated = ob.preprocess(bundle, layouts[tag], raws[tag])
            inputs = {k: runtime.to_numpy(v) for k, v in runtime.flatten(collated).items()}
            # Later variants start from the first variant's noise: precision is then the only change.
            out = ob.sample(bundle, collated, seed=seed, noise=first_noise.get(tag))
            first_noise.setdefault(tag, out["initial_noise"])
            path = save_artifact(
                artifact_path(output_dir, tag, variant_name), embodiment_tag=tag, seed=seed,
                producer=provenance, checkpoint=fp, raw=raws[tag], inputs=inputs, outputs=out,
                variant=variant_name,
                extra={"observation_recipe": OBSERVATION_RECIPE, "batch_size": batch_size,
                       "noise": "drawn after seeding" if variant_name == variants[0] else
                                f"injected from {variants[0]}",
                       "environment": environment or {}},
            )
            result.artifacts.setdefault(tag, {})[variant_name] = path
            result.timings[f"{tag} {variant_name}"] = time.perf_counter() - start
        del bundle
    _write_source(output_dir, {"mode": "live", "banner": banner, "gr00t": status})
    return result
