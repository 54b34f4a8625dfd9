"""``make report``: producer in the original kernel, consumer in the LeRobot kernel, HTML.

    python -m groot_lib.workflow report [--checkpoint DIR|ID] [--tags a,b] [--seed N]
        [--atol X] [--rtol X] [--device cpu|cuda|auto] [--variants fp32-sdpa,...]

Exit status: 0 when every verdict passes, 1 when any fails, 2 when a notebook
could not finish. The report is written in every case.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from . import tiny_layout
from .errors import ParityError

REPO = tiny_layout.REPO_ROOT
NOTEBOOKS = REPO / "notebooks"
ORIGINAL_KERNEL, LEROBOT_KERNEL = "groot-original", "groot-lerobot"


def artifacts_key(params: dict) -> str:
    """Artifacts are reusable across runs that differ only in tolerances or plotting."""
    keyed = {k: params.get(k) for k in ("checkpoint", "tags", "seed", "batch_size", "device", "variants")}
    return hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:12]


def run_report(*, checkpoint=None, hf_home=None, tags=None, seed=0, batch_size=2, atol=None, rtol=None,
               device=None, variants=None, noise_mode="seed", out_root: Path | None = None,
               artifacts_root: Path | None = None) -> tuple[int, Path]:
    from .notebook_runner import NotebookExecutionError, run_notebook
    from .producer import read_source
    from .report import export_html, write_index

    checkpoint = str(checkpoint or tiny_layout.TINY_CHECKPOINT)
    if hf_home is None and tiny_layout.is_embedded_default(checkpoint):
        hf_home = str(tiny_layout.TINY_HF_HOME)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    run_dir = Path(out_root or REPO / "reports") / stamp
    run_dir.mkdir(parents=True, exist_ok=True)
    common = {"checkpoint": checkpoint, "hf_home": hf_home, "tags": tags or "", "seed": int(seed), "device": device or ""}
    produce_params = {**common, "batch_size": int(batch_size), "variants": variants or ""}
    artifacts_dir = Path(artifacts_root or REPO / "build" / "artifacts") / artifacts_key(produce_params)
    settings = {**common, "atol": atol, "rtol": rtol, "noise_mode": noise_mode, "artifacts": str(artifacts_dir)}
    pages, errors, timings = {}, [], {}
    steps = [
        ("producer", ORIGINAL_KERNEL, {**produce_params, "output_dir": str(artifacts_dir)}),
        ("consumer", LEROBOT_KERNEL, {**common, "artifacts_dir": str(artifacts_dir), "atol": atol, "rtol": rtol,
                                      "noise_mode": noise_mode, "output_dir": str(run_dir)}),
    ]
    for name, kernel, params in steps:
        executed = run_dir / f"{name}.ipynb"
        start = time.perf_counter()
        try:
            run_notebook(NOTEBOOKS / f"{name}.ipynb", executed, kernel_name=kernel, parameters=params, cwd=REPO)
        except NotebookExecutionError as exc:
            errors.append(str(exc))
        except ParityError as exc:  # e.g. missing kernel: nothing ran
            errors.append(str(exc))
        timings[name] = round(time.perf_counter() - start, 1)
        if executed.exists():
            pages[f"{name} ({kernel})"] = export_html(executed)
        if errors:
            break
    verdicts_path = run_dir / "verdicts.json"
    verdicts = json.loads(verdicts_path.read_text()) if verdicts_path.exists() else None
    banner = read_source(artifacts_dir).get("banner", "original outputs: unknown")
    index = write_index(run_dir, banner=banner, verdicts=verdicts, pages=pages, errors=errors,
                        settings={**settings, "seconds": timings})
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
    rec = sub.add_parser("record", help="re-record references/tiny with the live original (needs gr00t)")
    rec.add_argument("--variants", default="fp32-sdpa,bf16-sdpa")
    args = parser.parse_args(argv)
    if args.command == "record":
        print(record_references(variants=args.variants))
        return 0
    try:
        code, index = run_report(checkpoint=args.checkpoint, hf_home=args.hf_home, tags=args.tags, seed=args.seed,
                                 batch_size=args.batch_size, atol=args.atol, rtol=args.rtol, device=args.device,
                                 variants=args.variants, noise_mode=args.noise_mode)
    except ParityError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    verdict = {0: "all checks PASS", 1: "some checks FAIL", 2: "a notebook did not finish"}[code]
    print(f"report: {index}\n{verdict}")
    return code


if __name__ == "__main__":
    sys.exit(main())
