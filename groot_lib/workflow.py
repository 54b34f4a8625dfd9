"""``make report``: producer in the original kernel, consumer in the LeRobot kernel, HTML.

    python -m groot_lib.workflow report [--checkpoint DIR|ID] [--tags a,b] [--seed N]
        [--atol X] [--rtol X] [--device cpu|cuda|auto] [--variants fp32-sdpa,bf16-sdpa,...]
        [--noise-mode seed|inject] [--precision-k 2] [--out-root DIR] [--artifacts-root DIR]

Exit status: 0 when every verdict passes, 1 when any fails, 2 when a notebook
could not finish. The report is written in every case.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

from . import tiny_layout
from .errors import ParityError

REPO = tiny_layout.REPO_ROOT
NOTEBOOKS = REPO / "notebooks"
ORIGINAL_KERNEL, LEROBOT_KERNEL = "groot-original", "groot-lerobot"


DEFAULT_VARIANTS = "fp32-sdpa,bf16-sdpa"  # fp32 parity + the bf16 precision study


def _phase_timings(run_dir: Path, timings: dict, source: dict, verdicts: dict | None) -> dict:
    """Per-phase wall time and peak RSS of one report (bench/ reads this file)."""
    from .notebook_runner import cell_timings
    from .runtime import peak_rss_mb

    kernels = {"producer": source.get("timings", {}), "consumer": (verdicts or {}).get("timings", {})}
    phases: dict[str, float | None] = {}
    for name, done in kernels.items():
        executed = run_dir / f"{name}.ipynb"
        if executed.exists():
            phases[f"{name} kernel start"] = cell_timings(executed)["kernel start"]
        phases[f"{name} checkpoint load"] = done.get("checkpoint load")
        phases[f"{name} compute"] = done.get("compute")
    phases["consumer imports"] = kernels["consumer"].get("imports")
    phases["consumer waited for producer"] = kernels["consumer"].get("waited for producer")
    phases["plots"] = kernels["consumer"].get("plots")
    phases["html export"] = timings.get("html export")
    phases["producer notebook"] = timings.get("producer")
    phases["consumer notebook"] = timings.get("consumer")
    phases["total"] = timings.get("total")
    model = sum(v or 0.0 for k, v in phases.items() if k.endswith(("checkpoint load", "compute", "imports")))
    return {"phases": {k: (round(v, 2) if isinstance(v, (int, float)) else v) for k, v in phases.items()},
            "model_seconds": round(model, 2),
            "peak_rss_mb": {**{f"{name} kernel": done.get("peak_rss_mb") for name, done in kernels.items()},
                            "workflow": peak_rss_mb()}}


def _fresh_dir(root: Path, stamp: str) -> Path:
    """``root/<stamp>``, or ``<stamp>-2``... : a report never overwrites an earlier one."""
    root.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        path = root / (stamp if n == 1 else f"{stamp}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise ParityError(f"could not create a fresh report folder under {root}")


def run_report(*, checkpoint=None, hf_home=None, tags=None, seed=0, batch_size=2, atol=None, rtol=None,
               device=None, variants=None, noise_mode="seed", precision_k=None, out_root: Path | None = None,
               artifacts_root: Path | None = None, notebooks: Path | None = None) -> tuple[int, Path]:
    """Producer, consumer, HTML; returns (exit status, index.html). ``notebooks`` overrides the folder."""
    from .atomic import atomic_write_text
    from .notebook_runner import run_notebook
    from .producer import FAILED_FILE, read_source
    from .report import export_html, write_index
    from .store import DEFAULT_ROOT

    began = time.perf_counter()
    notebooks = Path(notebooks or NOTEBOOKS)
    checkpoint = str(checkpoint or tiny_layout.TINY_CHECKPOINT)
    if hf_home is None and tiny_layout.is_embedded_default(checkpoint):
        hf_home = str(tiny_layout.TINY_HF_HOME)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    run_dir = _fresh_dir(Path(out_root or REPO / "reports"), stamp)
    store_dir = Path(artifacts_root or DEFAULT_ROOT)
    artifacts_dir = run_dir / "artifacts"  # this run's artifacts, published (hard-linked) from the store
    common = {"checkpoint": checkpoint, "hf_home": hf_home, "tags": tags or "", "device": device or "",
              "store_dir": str(store_dir)}
    variants = variants or DEFAULT_VARIANTS
    settings = {**common, "seed": int(seed), "batch_size": int(batch_size), "variants": variants, "atol": atol,
                "rtol": rtol, "noise_mode": noise_mode, "precision_k": precision_k}
    pages, timings = {}, {}
    steps = [
        ("producer", ORIGINAL_KERNEL, {**common, "seed": int(seed), "batch_size": int(batch_size),
                                       "variants": variants, "output_dir": str(artifacts_dir)}),
        ("consumer", LEROBOT_KERNEL, {**common, "artifacts_dir": str(artifacts_dir), "atol": atol, "rtol": rtol,
                                      "noise_mode": noise_mode, "precision_k": precision_k,
                                      "output_dir": str(run_dir)}),
    ]
    artifacts_dir.mkdir(parents=True, exist_ok=True)

    def run(name: str, kernel: str, params: dict) -> str | None:
        start = time.perf_counter()
        try:
            run_notebook(notebooks / f"{name}.ipynb", run_dir / f"{name}.ipynb", kernel_name=kernel,
                         parameters=params, cwd=REPO)
            return None
        except ParityError as exc:  # a failing cell, a dead kernel, or no kernel at all
            return str(exc)
        finally:
            timings[name] = round(time.perf_counter() - start, 2)

    # Both notebooks start at once: the consumer imports LeRobot while the producer works, then waits
    # for the producer's source.json (or for the failure marker written here).
    with ThreadPoolExecutor(max_workers=2) as pool:
        consumer_run = pool.submit(run, *steps[1])
        producer_error = run(*steps[0])
        if producer_error:
            atomic_write_text(artifacts_dir / FAILED_FILE, producer_error.splitlines()[0] + "\n")
        consumer_error = consumer_run.result()
    errors = [e for e in (producer_error, consumer_error) if e]
    export_seconds = 0.0
    for name, kernel, _ in steps:
        executed = run_dir / f"{name}.ipynb"
        if executed.exists():
            start = time.perf_counter()
            pages[f"{name} ({kernel})"] = export_html(executed)
            export_seconds += time.perf_counter() - start
    verdicts_path = run_dir / "verdicts.json"
    verdicts = json.loads(verdicts_path.read_text()) if verdicts_path.exists() and not errors else None
    source = read_source(artifacts_dir)
    start = time.perf_counter()
    index = write_index(run_dir, banner=source.get("banner", "original outputs: unknown"), verdicts=verdicts,
                        pages=pages, errors=errors, settings=settings, source=source)
    timings["html export"] = round(export_seconds + time.perf_counter() - start, 2)
    timings["total"] = round(time.perf_counter() - began, 2)
    atomic_write_text(run_dir / "timings.json",
                      json.dumps(_phase_timings(run_dir, timings, source, verdicts), indent=2) + "\n")
    code = 2 if errors else (0 if verdicts and verdicts.get("passed") else 1)
    return code, index


def record_references(*, variants: str = "fp32-sdpa,bf16-sdpa", seed: int = 0, batch_size: int = 2) -> Path:
    """Run the producer LIVE on the tiny default (CPU) into references/tiny, plus provenance.json.

    Needs gr00t in the original kernel (`make setup GR00T_SRC=...`); refuses to "record" recordings.
    """
    from .artifact import find_artifacts, load_artifact
    from .notebook_runner import run_notebook
    from .producer import read_source

    out = tiny_layout.RECORDED_ROOT
    staging = out.with_name(out.name + ".staging")
    params = {"checkpoint": str(tiny_layout.TINY_CHECKPOINT), "hf_home": str(tiny_layout.TINY_HF_HOME), "tags": "",
              "seed": seed, "batch_size": batch_size, "device": "cpu", "variants": variants,
              "output_dir": str(staging)}
    run_notebook(NOTEBOOKS / "producer.ipynb", staging / "producer.ipynb", kernel_name=ORIGINAL_KERNEL,
                 parameters=params, cwd=REPO)
    source = read_source(staging)
    if source.get("mode") != "live":
        raise ParityError(f"the producer did not run live ({source.get('banner')}); install gr00t with "
                          "`make setup GR00T_SRC=/path/to/Isaac-GR00T` first")
    first = load_artifact(next(iter(find_artifacts(staging).values())))
    provenance = {
        "gr00t_commit": source["gr00t"].get("commit"),
        "producer": first.producer,
        "checkpoint": first.checkpoint,
        "seed": seed, "batch_size": batch_size, "variants": variants.split(","),
        "command": f"make record-references (python -m groot_lib.workflow record --variants {variants})",
        "recorded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    (staging / "provenance.json").write_text(json.dumps(provenance, indent=2) + "\n")
    (staging / "producer.ipynb").unlink()
    (staging / "source.json").unlink()
    if out.exists():
        import shutil

        shutil.rmtree(out)
    staging.rename(out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m groot_lib.workflow", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rep = sub.add_parser("report", help="run producer + consumer and write reports/<UTC>/index.html")
    rep.add_argument("--checkpoint")
    rep.add_argument("--hf-home")
    rep.add_argument("--tags")
    rep.add_argument("--seed", type=int, default=0)
    rep.add_argument("--batch-size", type=int, default=2)
    rep.add_argument("--atol", type=float)
    rep.add_argument("--rtol", type=float)
    rep.add_argument("--device")
    rep.add_argument("--variants")
    rep.add_argument("--noise-mode", choices=("seed", "inject"), default="seed")
    rep.add_argument("--precision-k", type=float, help="precision verdict: cross gap <= k x noise floor (default 2)")
    rep.add_argument("--out-root", type=Path, help="reports folder (default reports/)")
    rep.add_argument("--artifacts-root", type=Path, help="artifact store (default build/artifacts)")
    rec = sub.add_parser("record", help="re-record references/tiny with the live original (needs gr00t)")
    rec.add_argument("--variants", default="fp32-sdpa,bf16-sdpa")
    args = parser.parse_args(argv)
    if args.command == "record":
        print(record_references(variants=args.variants))
        return 0
    try:
        code, index = run_report(checkpoint=args.checkpoint, hf_home=args.hf_home, tags=args.tags, seed=args.seed,
                                 batch_size=args.batch_size, atol=args.atol, rtol=args.rtol, device=args.device,
                                 variants=args.variants, noise_mode=args.noise_mode,
                                 precision_k=args.precision_k, out_root=args.out_root,
                                 artifacts_root=args.artifacts_root)
    except ParityError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    verdict = {0: "all checks PASS", 1: "some checks FAIL", 2: "a notebook did not finish"}[code]
    print(f"report: {index}\n{verdict}")
    return code


if __name__ == "__main__":
    sys.exit(main())
