"""Bare seed-style producer: the least a parity check needs on the original side.

It is the bench's anchor, so it does nothing the workbench could be blamed for:
no papermill, notebooks, plots or HTML. Load gr00t once, and per tag build the same
observations, preprocess, sample with the seed, then one ``np.savez``. Run it with
the original env's interpreter:

    .envs/original/bin/python bench/bare_producer.py --checkpoint DIR --hf-home DIR --out x.npz

Without gr00t (only allowed on the embedded tiny default) it copies the committed
recordings' inputs and outputs instead, as the workbench itself does, and says so.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

T_START = time.perf_counter()


def rss_mb() -> float:
    """Current resident set size of this process (Linux /proc)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _isolate_hf(hf_home: str) -> None:
    """What every seed script does first: point HF at the checkpoint's cache, offline."""
    os.environ["HF_HOME"] = str(Path(hf_home).resolve())
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ["NO_ALBUMENTATIONS_UPDATE"] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _recorded(checkpoint: Path, tags: list[str], seed: int, batch_size: int, reason: str) -> tuple[dict, dict]:
    """No gr00t: the committed recordings' collated inputs and action_pred (tiny default only)."""
    import numpy as np

    from groot_lib.tiny import layout as tiny_layout

    if not tiny_layout.is_embedded_default(checkpoint):
        sys.exit(f"error: gr00t is not importable ({reason}); only the embedded tiny default has recordings. "
                 "Install it: `make setup GR00T_SRC=/path/to/Isaac-GR00T`.")
    provenance = json.loads((tiny_layout.RECORDED_ROOT / "provenance.json").read_text())
    if (provenance.get("seed"), provenance.get("batch_size")) != (seed, batch_size):
        sys.exit(f"error: gr00t is not importable and the recordings cover seed={provenance.get('seed')}, "
                 f"batch_size={provenance.get('batch_size')} only")
    arrays: dict = {}
    for tag in tags:
        with np.load(tiny_layout.RECORDED_ROOT / f"{tag}.npz", allow_pickle=False) as rec:
            for key in rec.files:
                if key.startswith(("in::", "out::")):
                    arrays[f"{tag}::{key}"] = rec[key]
    return arrays, {"mode": "recorded", "reason": reason}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--hf-home", required=True)
    parser.add_argument("--tags", default="", help="comma list; empty = every tag of the checkpoint")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", required=True, type=Path, help="the .npz to write")
    parser.add_argument("--timings", type=Path, help="JSON with load/sample seconds and RSS")
    args = parser.parse_args(argv)

    _isolate_hf(args.hf_home)
    import numpy as np

    from groot_lib.core import checkpoint as ckpt
    from groot_lib.backends import original as ob
    from groot_lib.core import runinfo
    from groot_lib.core.observations import build_observations
    from groot_lib.core.variants import get_variant

    checkpoint = Path(args.checkpoint).resolve()
    tags = [t for t in args.tags.split(",") if t] or ckpt.embodiment_tags(checkpoint)
    timings: dict = {"tags": tags, "sample": {}, "preprocess": {}}
    status = ob.identity()
    if not status["available"]:
        arrays, info = _recorded(checkpoint, tags, args.seed, args.batch_size, status["error"])
        timings.update(info, load=0.0)
    else:
        import torch  # noqa: F401  (imports counted apart from the load)

        timings["import"] = time.perf_counter() - T_START
        timings["rss_before_load_mb"] = rss_mb()
        start = time.perf_counter()
        loading = ob.load(checkpoint, None, variant=get_variant("fp32-sdpa"), device=args.device)
        bundle = loading.__enter__()  # held to the end of the script, like a bare script would
        timings["load"] = time.perf_counter() - start
        timings["rss_after_load_mb"] = rss_mb()
        stats = json.loads((checkpoint / "statistics.json").read_text())
        arrays = {}
        for tag in tags:
            layout = ckpt.embodiment_layout(checkpoint, tag)
            raw = build_observations(layout, seed=args.seed, batch_size=args.batch_size, statistics=stats[tag])
            start = time.perf_counter()
            inputs = ob.preprocess(bundle, layout, raw)
            timings["preprocess"][tag] = time.perf_counter() - start
            start = time.perf_counter()
            out = ob.sample(bundle, inputs, seed=args.seed)
            timings["sample"][tag] = time.perf_counter() - start
            arrays.update({f"{tag}::in::{k}": v for k, v in inputs.items()})
            arrays.update({f"{tag}::out::{k}": v for k, v in out.items()})
        timings["mode"] = "live"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.out, **arrays)
    # Like the workbench's model_seconds: every call into the model library (load, preprocess, sample).
    timings["model_seconds"] = timings["load"] + sum(timings["preprocess"].values()) + sum(timings["sample"].values())
    timings["peak_rss_mb"] = runinfo.peak_rss_mb()
    timings["wall_in_process"] = time.perf_counter() - T_START
    if args.timings:
        args.timings.write_text(json.dumps(timings, indent=2) + "\n")
    print(f"bare producer: {len(tags)} tag(s) -> {args.out} ({timings['mode']}, "
          f"model {timings['model_seconds']:.1f} s, peak RSS {timings['peak_rss_mb']:.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
