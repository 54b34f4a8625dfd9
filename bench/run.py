"""``make bench``: per-phase cost of ``make report`` against a bare script + pytest flow.

Why: the workbench (two kernels, papermill, plots, HTML) is only worth it while it
stays cheap next to the model work it wraps. So one run measures, on the same
machine and minutes:

* every phase of ``make report`` (env check = ``make kernels``; the rest from the
  workflow's ``timings.json``), wall time and peak RSS, on the embedded tiny checkpoint
  (1 tag and all tags) and on a scaled-up random checkpoint generated here;
* the bare seed-style flow (bench/bare_producer.py + bench/test_bare_consumer.py) on the
  same checkpoints, tags and seed: the anchor the ratios are taken against.

Results: build/bench/results-<UTC>.md (also printed) and .json next to it. Every
report gets a fresh artifacts root, so the producer really computes.

    python -m bench.run [--scale 12] [--skip-scaled] [--no-tag-sweep] [--device cpu]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from groot_lib.paths import REPO_ROOT as REPO
BUILD = REPO / "build" / "bench"
ENVS = Path(os.environ.get("ENVS", REPO / ".envs"))
if not ENVS.is_absolute():
    ENVS = REPO / ENVS
PY = {"original": ENVS / "original" / "bin" / "python", "lerobot": ENVS / "lerobot" / "bin" / "python"}
TINY_CKPT = REPO / "checkpoints" / "tiny" / "gr00t-n1.7-tiny"
TINY_HF = REPO / "checkpoints" / "tiny" / "hf_home"
ONE_TAG = "libero_sim"
VARIANT = "fp32-sdpa"
TARGET_RATIO, TARGET_SECONDS = 1.5, 60.0
MIN_TELLING_MB = 100  # below this a second model copy hides in the kernels' import noise
GR00T_HINT = "`make setup GR00T_SRC=/path/to/Isaac-GR00T`"
# timings.json phases, in table order: (row, keys summed, process(es) whose peak RSS applies).
# Rows whose keys no run has are left out; phases this list does not know are appended.
PHASES = [
    ("kernel start", ["producer kernel start", "consumer kernel start"], ["producer kernel", "consumer kernel"]),
    ("producer imports (torch, gr00t)", ["producer imports"], ["producer kernel"]),
    ("consumer imports (LeRobot)", ["consumer imports"], ["consumer kernel"]),
    ("checkpoint load", ["producer checkpoint load", "consumer checkpoint load"], ["producer kernel", "consumer kernel"]),
    ("producer compute", ["producer compute"], ["producer kernel"]),
    ("consumer compute", ["consumer compute"], ["consumer kernel"]),
    ("artifact store (producer / consumer)", ["producer store", "consumer store"], ["producer kernel", "consumer kernel"]),
    ("model release (producer / consumer)", ["producer release", "consumer release"],
     ["producer kernel", "consumer kernel"]),
    ("consumer waited for producer", ["consumer waited for producer"], ["consumer kernel"]),
    ("plots", ["plots"], ["consumer kernel"]),
    ("HTML export", ["html export"], ["workflow"]),
]
WHOLE = ("producer notebook", "consumer notebook", "total")
IDLE = ("consumer waited for producer",)  # wall time, but neither model nor plumbing work


class BenchError(Exception):
    """One actionable line for the user."""


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def measure(name: str, cmd: list[str], logs: Path, *, env: dict | None = None) -> dict:
    """Run ``cmd`` from the repo root; wall seconds and the peak RSS of its process tree.

    ``wait4`` reports the largest RSS among the child and every descendant it reaped
    (the kernels, for a report), so this is the biggest single process, not a sum.
    """
    logs.mkdir(parents=True, exist_ok=True)
    out = logs / f"{name}.log"
    with open(out, "w") as fh:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, **(env or {})}, stdout=fh,
                                stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    result = {"seconds": round(seconds, 2), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
              "rc": proc.returncode, "log": str(out.relative_to(REPO))}
    log(f"{name}: {seconds:.1f} s, tree peak RSS {result['peak_rss_mb']:.0f} MB, exit {proc.returncode}")
    return result


def tail(path: str, lines: int = 15) -> str:
    text = (REPO / path).read_text(errors="replace").splitlines()
    return "\n".join("    " + ln for ln in text[-lines:])


def preflight() -> bool:
    """Envs present (else one line to fix it); returns whether gr00t is importable."""
    for name, python in PY.items():
        if not python.is_file():
            raise BenchError(f"the {name} env is missing ({python}); run `make setup` (or `make bench`, which does)")
    probe = subprocess.run([str(PY["original"]), "-c", "import gr00t"], capture_output=True, text=True)
    return probe.returncode == 0


def scaled_checkpoint(scale: int, seed: int, logs: Path) -> tuple[Path, Path, dict]:
    """Generate (once per generator version) the scaled random checkpoint under build/bench."""
    from groot_lib.tiny.generate import checkpoint_name

    digest = hashlib.sha256()
    for module in ("tiny/generate.py", "tiny/layout.py"):
        digest.update((REPO / "groot_lib" / module).read_bytes())
    key = f"x{scale}-seed{seed}-{digest.hexdigest()[:10]}"
    root = BUILD / "checkpoints" / key
    ckpt, hf_home = root / checkpoint_name(scale), root / "hf_home"
    info = {"scale": scale, "dir": str(ckpt.relative_to(REPO)), "generated": False}
    if not (root / ".complete").is_file():
        for old in (BUILD / "checkpoints").glob("x*"):  # stale generator versions
            shutil.rmtree(old, ignore_errors=True)
        log(f"generating the x{scale} checkpoint into {root.relative_to(REPO)} (once) ...")
        run = measure(f"generate-x{scale}", [str(PY["original"]), "-m", "groot_lib.tiny.generate", "--out",
                                             str(root), "--seed", str(seed), "--scale", str(scale)], logs)
        if run["rc"] != 0:
            raise BenchError(f"generating the scaled checkpoint failed; see {run['log']}:\n{tail(run['log'])}")
        (root / ".complete").write_text(json.dumps(run) + "\n")
        info.update(generated=True, generate_seconds=run["seconds"])
    info["weights_mb"] = round(sum(p.stat().st_size for p in ckpt.glob("*.safetensors")) / 2**20, 1)
    info["backbone_cache_mb"] = round(sum(p.stat().st_size for p in hf_home.rglob("*") if p.is_file()) / 2**20, 1)
    return ckpt, hf_home, info


def run_report(label: str, ckpt: Path, hf_home: Path, tags: str | None, work: Path, device: str,
               variants: str = VARIANT, batch: int | None = None, extra: tuple[str, ...] = ()) -> dict:
    """``python -m groot_lib.workbench.workflow report`` as ``make report`` runs it, with fresh artifacts (``extra``:
    more flags, e.g. ``--train 1``)."""
    out_root, artifacts = work / "reports" / label, work / "artifacts" / label
    cmd = [sys.executable, "-m", "groot_lib.workbench.workflow", "report", "--checkpoint", str(ckpt), "--hf-home", str(hf_home),
           "--variants", variants, "--device", device, "--out-root", str(out_root), "--artifacts-root", str(artifacts),
           *extra]
    if tags:
        cmd += ["--tags", tags]
    if batch:
        cmd += ["--batch-size", str(batch)]
    run = measure(f"report-{label}", cmd, work / "logs")
    # 1 = a verdict failed: the timings still stand. Anything else: the report is incomplete.
    run["verdicts"] = {0: "PASS", 1: "FAIL"}.get(run["rc"], f"DID NOT FINISH (exit {run['rc']})")
    if run["rc"] not in (0, 1):
        run["error"] = f"`make report` ({label}) did not finish (exit {run['rc']}); see {run['log']}"
        log(f"{run['error']}:\n{tail(run['log'])}")
    found = sorted(out_root.glob("*/timings.json"))
    run["sizes_mb"] = {"report folder": round(folder_bytes(out_root) / 2**20, 1),
                       "artifact store": round(folder_bytes(artifacts) / 2**20, 1)}
    if found:
        run["timings"] = json.loads(found[-1].read_text())
        run["timings_source"] = str(found[-1].relative_to(REPO))
        run["cell_seconds"] = cell_seconds(found[-1].parent)
    else:
        run["timings"] = None
        run["timings_source"] = "missing: this workflow writes no timings.json"
    return run


def folder_bytes(root: Path) -> int:
    """Bytes under ``root``, each file once (a report's artifacts are hard links into the store)."""
    seen, total = set(), 0
    for path in root.rglob("*") if root.exists() else ():
        if path.is_file():
            stat = path.stat()
            if (stat.st_dev, stat.st_ino) not in seen:
                seen.add((stat.st_dev, stat.st_ino))
                total += stat.st_size
    return total


REAL_CKPT = REPO / "build" / "real" / "gr00t-n1.7-3b-random"
# (label, variants, tags): batch 1, fp32 alone, then with the bf16 study, then every tag
REAL_RUNS = (("real fp32, 1 tag", "fp32-sdpa", ONE_TAG), ("real fp32+bf16, 1 tag", "fp32-sdpa,bf16-sdpa", ONE_TAG),
             ("real fp32+bf16, all tags", "fp32-sdpa,bf16-sdpa", None))


def page_in(checkpoint: Path) -> str:
    """Read the shards once, so every real-size row starts from a warm page cache (the state a rerun meets). A
    cold first row would spend its model time on disk reads: more wall time, a smaller plumbing share."""
    start, total = time.perf_counter(), 0
    for shard in sorted(checkpoint.glob("*.safetensors")):
        with open(shard, "rb") as handle:
            while chunk := handle.read(64 << 20):
                total += len(chunk)
    return f"warm: {total / 2**30:.1f} GiB read in {time.perf_counter() - start:.1f} s before the first row"


def real_size_section(result: dict) -> list[str]:
    """The real N1.7-3B-size rows: per phase, model vs plumbing on the wall clock, peak RSS per kernel against the
    weights, what the producer still held once it had released its model."""
    runs, info = result.get("real") or {}, result["checkpoints"].get("real") or {}
    if not runs:
        return []
    weights = info.get("weights_mb") or 0
    rows = []
    for label, run in runs.items():
        t = run.get("timings") or {}
        p, d, rss, wall = t.get("phases") or {}, analyze(run) or {}, t.get("peak_rss_mb") or {}, run["seconds"]
        both = lambda phase: " / ".join(fmt(p.get(f"{s} {phase}")) for s in ("producer", "consumer"))  # noqa: E731
        rows.append([label, run["verdicts"], (t.get("schedule") or "n/a"), fmt(wall), both("imports"),
                     both("checkpoint load"), both("compute"), fmt(d.get("model")), fmt(d.get("plumbing")),
                     fmt(None if d.get("plumbing") is None else 100 * d["plumbing"] / wall, 0) + " %",
                     " / ".join(f"{fmt(rss.get(k), 0)} ({fmt(rss[k] / weights, 2)}x)" if rss.get(k) and weights
                                else "n/a" for k in ("producer kernel", "consumer kernel")),
                     fmt((t.get("memory") or {}).get("producer rss after release MB"), 0),
                     fmt(run["sizes_mb"]["artifact store"]), fmt(run["sizes_mb"]["report folder"])])
    return ["## Real N1.7-3B size (random weights, batch 1)", "",
            f"`{info.get('dir')}`: {fmt(weights / 1024, 1)} GiB of fp32 weights; page cache "
            f"{info.get('page cache', 'as found')}. Schedule as `make report` chose it.", "",
            table(["run", "verdicts", "schedule", "wall s", "imports s (producer / consumer)",
                   "load s (producer / consumer)", "compute s (producer / consumer)", "model s (wall)",
                   "plumbing s (wall)", "plumbing / wall", "peak RSS MB (x fp32 weights)",
                   "producer RSS after release MB", "artifact store MB", "report folder MB"], rows), "",
            "model s = wall-clock seconds during which some kernel imported an implementation, loaded a checkpoint "
            "or ran a model (overlaps counted once); plumbing = the rest of the command's wall time (kernel starts, "
            "artifact writes and reads, releasing models, checks, plots, HTML, the workflow process). Per-side "
            "seconds are busy seconds: the consumer's imports overlap the producer. Targets: peak RSS per kernel <= "
            "1.15x the weights, plumbing <= 10% of the wall time.", ""]


def cell_seconds(run_dir: Path) -> dict[str, float]:
    """Sum of papermill's per-cell durations in each executed notebook (what ran inside cells)."""
    from groot_lib.workbench.notebook_runner import cell_timings

    return {name: round(sum(cell_timings(path)["cells"]), 2)
            for name in ("producer", "consumer") if (path := run_dir / f"{name}.ipynb").is_file()}


def run_bare(label: str, ckpt: Path, hf_home: Path, tags: str | None, work: Path, device: str) -> dict:
    """The anchor: bare producer script (original env) then the bare pytest consumer (LeRobot env)."""
    bare = work / "bare" / label
    npz, ptimes, ctimes = bare / "outputs.npz", bare / "producer.json", bare / "consumer.json"
    cmd = [str(PY["original"]), "bench/bare_producer.py", "--checkpoint", str(ckpt), "--hf-home", str(hf_home),
           "--out", str(npz), "--timings", str(ptimes), "--device", device, "--tags", tags or ""]
    producer = measure(f"bare-producer-{label}", cmd, work / "logs")
    if producer["rc"] != 0:
        log(f"bare producer ({label}) failed; see {producer['log']}:\n{tail(producer['log'])}")
        return {"error": f"bare producer ({label}) failed (exit {producer['rc']}); see {producer['log']}"}
    env = {"BARE_NPZ": str(npz), "BARE_CHECKPOINT": str(ckpt), "BARE_HF_HOME": str(hf_home),
           "BARE_TIMINGS": str(ctimes)}
    consumer = measure(f"bare-consumer-{label}", [str(PY["lerobot"]), "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                                  "bench/test_bare_consumer.py"], work / "logs", env=env)
    if consumer["rc"] not in (0, 1) or not ctimes.is_file():
        log(f"bare consumer ({label}) did not run; see {consumer['log']}:\n{tail(consumer['log'])}")
        return {"error": f"bare consumer ({label}) did not run (exit {consumer['rc']}); see {consumer['log']}"}
    producer["detail"] = json.loads(ptimes.read_text())
    consumer["detail"] = json.loads(ctimes.read_text())
    return {"producer": producer, "consumer": consumer, "asserts": "PASS" if consumer["rc"] == 0 else "FAIL",
            "seconds": round(producer["seconds"] + consumer["seconds"], 2),
            "model_seconds": round(producer["detail"]["model_seconds"] + consumer["detail"]["model_seconds"], 2),
            "tags": producer["detail"]["tags"]}


def run_investigate(label: str, ckpt: Path, hf_home: Path, work: Path, device: str, probes: int) -> dict:
    """A live investigation session (bench/investigate.py, LeRobot env): its start, each probe, memory."""
    out = work / "investigate" / f"{label}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    run = measure(f"investigate-{label}", [str(PY["lerobot"]), "-m", "bench.investigate", "--checkpoint", str(ckpt),
                                           "--hf-home", str(hf_home), "--device", device, "--probes", str(probes),
                                           "--json", str(out)], work / "logs")
    if run["rc"] != 0 or not out.is_file():
        log(f"investigate ({label}) failed; see {run['log']}:\n{tail(run['log'])}")
        return {"error": f"investigate ({label}) failed (exit {run['rc']}); see {run['log']}"}
    return {**run, **json.loads(out.read_text())}


# ----------------------------------------------------------------------------- formatting


def fmt(value, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def analyze(run: dict) -> dict | None:
    """Derived seconds of one report: model, plumbing, and how much the two notebooks overlapped.

    The notebooks may run concurrently (the consumer imports LeRobot while the producer works),
    so phases are busy seconds that can add up to more than the wall time.
    """
    p = dict((run.get("timings") or {}).get("phases") or {})
    need = ("producer notebook", "consumer notebook", "total", "html export")
    if any(p.get(k) is None for k in need):
        return None
    parts = {k: v or 0.0 for k, v in p.items() if k not in WHOLE}
    in_producer = sum(v for k, v in parts.items() if k.startswith("producer "))
    in_consumer = sum(v for k, v in parts.items() if k.startswith("consumer ") or k == "plots")
    cells = (p["producer notebook"] - in_producer) + (p["consumer notebook"] - in_consumer)
    # Split that rest into cell time (imports, tables) and papermill's own (saving, kernel shutdown).
    sums = run.get("cell_seconds") or {}
    outside = None
    if set(sums) == {"producer", "consumer"}:
        outside = (p["producer notebook"] - parts.get("producer kernel start", 0.0) - sums["producer"]
                   + p["consumer notebook"] - parts.get("consumer kernel start", 0.0) - sums["consumer"])
    both = p["producer notebook"] + p["consumer notebook"]
    concurrent = max(0.0, both + p["html export"] - p["total"])
    # The workflow process's own time: interpreter start/exit (outside its "total") + gaps between steps.
    workflow = run["seconds"] - p["total"] + max(0.0, p["total"] - (both - concurrent) - p["html export"])
    model = run["timings"].get("model_seconds") or 0.0
    idle = sum(parts.get(k, 0.0) for k in IDLE)
    busy = sum(parts.values()) - idle + cells + workflow - model
    # On the wall clock (timings.json's timeline): the seconds some kernel spent importing an implementation,
    # loading weights or running a model, overlaps counted once; plumbing is the rest of the command's wall time.
    wall = (run["timings"].get("wall") or {}).get("model")
    return {"cells": cells if outside is None else cells - outside, "papermill": outside,
            "concurrent": concurrent, "workflow": workflow, "model": model if wall is None else wall,
            "plumbing": busy if wall is None else run["seconds"] - wall}


def phase_rows(runs: dict[str, dict], env_check: dict) -> list[list[str]]:
    """One row per phase; per run: seconds and the peak RSS of the process(es) it runs in."""
    known = {k for _, keys, _ in PHASES for k in keys}
    extra = sorted({k for r in runs.values() for k in ((r.get("timings") or {}).get("phases") or {})}
                   - known - set(WHOLE))
    phases = [ph for ph in PHASES + [(k, [k], []) for k in extra]
              if any(k in ((r.get("timings") or {}).get("phases") or {}) for r in runs.values() for k in ph[1])]
    rows = [["env check (`make kernels`)"] + sum(([fmt(env_check["seconds"]), fmt(env_check["peak_rss_mb"], 0)]
                                                  for _ in runs), [])]
    for phase, keys, procs in phases:
        row = [phase]
        for run in runs.values():
            t = run.get("timings") or {}
            values, rss = t.get("phases") or {}, t.get("peak_rss_mb") or {}
            parts = [values.get(k) for k in keys]
            seconds = None if any(v is None for v in parts) else sum(parts)
            text = fmt(seconds) + (f" ({' + '.join(fmt(v) for v in parts)})" if len(parts) > 1 and seconds else "")
            row += [text, " / ".join(fmt(rss.get(proc), 0) for proc in procs)]
        rows.append(row)
    derived = {k: analyze(r) or {} for k, r in runs.items()}
    outside = ["papermill outside cells (notebook I/O and saves, kernel shutdown)"]
    cells, outer, overlap, total = (["other time in notebook cells (imports, tables)"],
                                    ["workflow process (start, exit, between steps)"],
                                    ["*overlap: both notebooks running at once*"],
                                    ["**`make report` wall** (env check + report)"])
    for key, run in runs.items():
        d = derived[key]
        cells += [fmt(d.get("cells")), ""]
        outside += [fmt(d.get("papermill")), ""]
        outer += [fmt(d.get("workflow")), fmt(((run.get("timings") or {}).get("peak_rss_mb") or {}).get("workflow"), 0)]
        overlap += [f"*-{fmt(d.get('concurrent'))}*" if d.get("concurrent") else fmt(d.get("concurrent")), ""]
        total += [f"**{fmt(env_check['seconds'] + run['seconds'])}**", fmt(run["peak_rss_mb"], 0) + " (tree)"]
    return rows + [cells] + ([outside] if any(d.get("papermill") is not None for d in derived.values()) else []) \
        + [outer, overlap, total]


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def render(result: dict) -> str:
    reports, env_check = result["reports"], result["env_check"]
    bares = {k: v for k, v in result["bare"].items() if "error" not in v}
    md = [f"# gr00t-parity bench {result['stamp']}", "",
          f"Machine: {result['machine']}. One run of each configuration, so every ratio comes from one run; "
          "other work on the machine (e.g. tests running concurrently) inflates the figures.", ""]
    errors = [r["error"] for r in [*reports.values(), *result["bare"].values()] if r.get("error")]
    for note in result["notes"] + [f"**ERROR**: {e}" for e in errors]:
        md.append(f"> {note}")
    if result["notes"] or errors:
        md.append("")
    labels = {"tiny-all": "tiny, all tags", "tiny-1": f"tiny, 1 tag ({ONE_TAG})", "scaled-all": "scaled, all tags"}
    header = ["phase"] + sum(([f"{labels[k]}: s", "peak RSS MB"] for k in reports), [])
    md += ["## `make report`, per phase (variant fp32-sdpa, fresh artifacts)", "",
           table(header, phase_rows(reports, env_check)), "",
           "Peak RSS is each process's peak (producer kernel / consumer kernel / workflow process), "
           "not a per-phase increment; `(tree)` is the largest single process under the report command.", ""]
    if bares:
        md += ["## The bare flow, per step (same runs)", "", bare_table(bares, labels), ""]
    rows = []
    for key, run in reports.items():
        d = analyze(run) or {}
        model = d.get("model")
        wall = env_check["seconds"] + run["seconds"]
        bare = bares.get(key)
        row = [labels[key], run["verdicts"], fmt(wall), fmt(model), fmt(d.get("plumbing")),
               fmt(None if not model else d["plumbing"] / model, 2)]
        if bare:
            plumbing = bare["seconds"] - bare["model_seconds"]
            row += [bare["asserts"], fmt(bare["seconds"]), fmt(bare["model_seconds"]),
                    fmt(plumbing / bare["model_seconds"], 2)]
            if run.get("error"):
                row.append("n/a (report incomplete)")
            else:
                ratio = wall / bare["seconds"]
                row.append(f"**{ratio:.2f}x**" + (" (target <= 1.5x: met)" if ratio <= TARGET_RATIO else
                                                   " (target <= 1.5x: NOT met)"))
        else:
            row += ["-"] * 5
        rows.append(row)
    md += ["## Workbench vs the bare seed-style flow (same run, same checkpoint, tags and seed)", "",
           table(["checkpoint", "verdicts", "`make report` s", "model s", "plumbing s", "plumbing / model",
                  "bare asserts", "bare s", "bare model s", "bare plumbing / model", "report / bare"], rows), "",
           "model s = the wall-clock seconds during which some kernel was importing an implementation, loading a "
           "checkpoint or running a model (timings.json's timeline, overlaps counted once; bare: the same calls, "
           "timed in the scripts, which run one after the other). plumbing s = the rest of the wall time (kernel "
           "starts, artifact I/O, checks, plots, HTML, the workflow process). The `make report` column adds the env "
           "check. Bare = `bench/bare_producer.py` (original env) then `pytest bench/test_bare_consumer.py` "
           "(LeRobot env), sequential as a seed script + test would be, each timed from process start; it checks "
           "model parity only (the workbench also runs LeRobot's preprocessor parity, plots and HTML).", ""]
    if "tiny-all" in reports and not reports["tiny-all"].get("error"):
        wall = env_check["seconds"] + reports["tiny-all"]["seconds"]
        met = "met" if wall <= TARGET_SECONDS else "NOT met"
        md += [f"Warm `make report` on tiny: **{wall:.1f} s** (target <= {TARGET_SECONDS:.0f} s on 2 cores: {met}).", ""]
    if "tiny-1" in reports and "tiny-all" in reports:
        n = len(bares.get("tiny-all", {}).get("tags") or []) or 4
        r1, rn = reports["tiny-1"]["seconds"], reports["tiny-all"]["seconds"]
        rows = [["`make report` (wall)", fmt(r1), fmt(rn), fmt((rn - r1) / (n - 1), 2), fmt(rn / n, 2)]]
        per_tag = [per_tag_seconds(reports[k]) for k in ("tiny-1", "tiny-all")]
        if None not in per_tag:
            rows.append(["`make report` (producer + consumer compute + plots)", fmt(per_tag[0]), fmt(per_tag[1]),
                         fmt((per_tag[1] - per_tag[0]) / (n - 1), 2), fmt(per_tag[1] / n, 2)])
        if "tiny-1" in bares and "tiny-all" in bares:
            b1, bn = bares["tiny-1"]["seconds"], bares["tiny-all"]["seconds"]
            rows.append(["bare flow (wall)", fmt(b1), fmt(bn), fmt((bn - b1) / (n - 1), 2), fmt(bn / n, 2)])
            c1, cn = (bare_compute(bares[k]) for k in ("tiny-1", "tiny-all"))
            rows.append(["bare flow (preprocess + sample + assert)", fmt(c1), fmt(cn), fmt((cn - c1) / (n - 1), 2),
                         fmt(cn / n, 2)])
        md += ["## Cost vs number of tags (tiny)", "",
               table(["flow", "1 tag s", f"{n} tags s", "s per extra tag", "s per tag (average)"], rows), ""]
    md += memory_section(result), ""
    md += investigate_section(result)
    md += training_section(result)
    md += real_size_section(result)
    md += ["Raw numbers, logs and executed notebooks: " + f"`{result['json']}`, `{result['work']}/`."]
    return "\n".join(md) + "\n"


def per_tag_seconds(run: dict) -> float | None:
    """The phases that grow with the number of tags."""
    p = (run.get("timings") or {}).get("phases") or {}
    parts = [p.get(k) for k in ("producer compute", "consumer compute", "plots")]
    return None if any(v is None for v in parts) else sum(parts)


def bare_compute(bare: dict) -> float:
    return sum(sum(bare[side]["detail"].get(k, {}).values()) for side in ("producer", "consumer")
               for k in ("preprocess", "sample"))


def bare_table(bares: dict, labels: dict) -> str:
    """The anchor's own split: process start + imports + save, model load, compute; per process."""
    header = ["step"] + sum(([f"{labels[k]}: s", "peak RSS MB"] for k in bares), [])
    rows = []
    for side, compute in (("producer", "preprocess + sample"), ("consumer", "sample + assert")):
        start, load, work = [f"{side}: interpreter, imports, I/O"], [f"{side}: checkpoint load"], [f"{side}: {compute}"]
        for bare in bares.values():
            run, d = bare[side], bare[side]["detail"]
            comp = sum(d["sample"].values()) + sum(d.get("preprocess", {}).values())
            start += [fmt(run["seconds"] - d["load"] - comp), ""]
            load += [fmt(d["load"]), ""]
            work += [fmt(comp, 2), fmt(d["peak_rss_mb"], 0)]
        rows += [start, load, work]
    rows.append(["**total**"] + sum(([f"**{fmt(b['seconds'])}**", ""] for b in bares.values()), []))
    return table(header, rows)


def memory_section(result: dict) -> str:
    """Peak RSS per process vs the bare scripts, which provably hold exactly one model each."""
    rows, verdicts = [], []
    for key, run in result["reports"].items():
        bare, rss = result["bare"].get(key), ((run.get("timings") or {}).get("peak_rss_mb") or {})
        if not bare or "error" in bare:
            continue
        weights = result["checkpoints"][key.split("-")[0]].get("weights_mb")
        for side in ("producer", "consumer"):
            # The bare scripts' own peak (the process holding the model), like the kernels report theirs.
            kernel, anchor = rss.get(f"{side} kernel"), bare[side]["detail"]["peak_rss_mb"]
            delta = None if kernel is None else kernel - anchor
            one = None if delta is None or weights < MIN_TELLING_MB else delta < 0.5 * weights
            rows.append([key, side, fmt(kernel, 0), fmt(anchor, 0), fmt(delta, 0), fmt(weights, 0),
                         "can't tell (weights too small)" if one is None and delta is not None else
                         "-" if one is None else ("yes" if one else "NO")])
            if key.startswith("scaled") and one is not None:
                verdicts.append(one)
        rows.append([key, "workflow (tools env)", fmt(rss.get("workflow"), 0), "-", "-", "-",
                     "no model (plumbing only)"])
    text = ["## One model per process (peak RSS)", "",
            table(["checkpoint", "process", "kernel peak MB", "bare script peak MB", "kernel - bare MB",
                   "weights MB", "one model?"], rows), "",
            "Each bare script loads exactly one model, so a kernel holding a second copy would exceed its bare "
            "peak by about the weights' size; `one model?` = the excess is under half of it. Only the scaled "
            "checkpoint can tell (the tiny weights are a few MB, below the noise of kernel/plotting imports)."]
    if verdicts:
        text.append(f"Scaled checkpoint: {'one model per process' if all(verdicts) else 'MORE than one model in some process'}.")
    return "\n".join(text)


def training_section(result: dict) -> list[str]:
    """TRAIN=1 against the same report without it, back to back: wall and each kernel's peak RSS."""
    rows = []
    for label, run in {**result["reports"], **result.get("real", {})}.items():
        trained = result.get("train", {}).get(label)
        if not trained or run.get("error") or trained.get("error"):
            continue
        rss = [((r.get("timings") or {}).get("peak_rss_mb") or {}) for r in (run, trained)]
        rows.append([label, fmt(run["seconds"]), fmt(trained["seconds"]), f"{trained['seconds'] / run['seconds']:.2f}x",
                     *(f"{fmt(rss[0].get(k), 0)} -> {fmt(rss[1].get(k), 0)}" for k in ("producer kernel", "consumer kernel"))])
    if not rows:
        return []
    return ["## Training step (TRAIN=1)", "",
            table(["run", "report s", "with TRAIN=1 s", "ratio", "producer peak MB", "consumer peak MB"], rows), "",
            "Each pair ran back to back with fresh stores; TRAIN=1 adds one training forward and backward per tag on "
            "each side, the gradients of every trainable parameter stored and compared.", ""]


def investigate_section(result: dict) -> list[str]:
    """Investigating live against one `make report` per question (same run, same machine)."""
    rows = []
    for label, found in result.get("investigate", {}).items():
        if "error" in found:
            rows.append([label] + ["n/a: " + found["error"]] + ["-"] * 7)
            continue
        summary = found["summary"]
        key = next((k for k in (f"{label}-1", f"{label}-all") if k in result["reports"]), None)
        report = result["reports"].get(key)
        growth = summary["rss growth %"]
        rows.append([f"{label} ({found['mode']}, {len(found['probes'])} probes)", fmt(found["open s"]),
                     f"{report['seconds']:.1f} ({key})" if report else "-", fmt(summary["median probe s"], 2),
                     fmt(summary["p90 probe s"], 2),
                     fmt(summary["median original compute s"] + summary["median lerobot compute s"], 2),
                     fmt(summary["probe / compute"], 2) + "x",
                     " / ".join(f"{v:+.1f}%" for v in growth.values())])
    if not rows:
        return []
    return ["## Investigating live (bench/investigate.py)", "",
            table(["checkpoint", "session start s", "`make report` s", "probe s (median)", "probe s (p90)",
                   "both sides' compute s (median)", "probe / compute", "RSS last vs first probe (LeRobot / "
                   "original)"], rows), "",
            "Targets: session start <= one `make report`; a probe <= 1 s on 2 cores (tiny) and <= 1.2x the two sides' "
            "compute at size. Probes after the first (which pays one-time warm-up), cycling the fixed observation "
            "and (gr00t live) a prompt, a frame region and a state edit.", ""]


# ----------------------------------------------------------------------------- main


def machine() -> str:
    mem = ""
    try:
        kb = int(next(ln for ln in open("/proc/meminfo") if ln.startswith("MemTotal")).split()[1])
        mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        pass
    return f"{os.cpu_count()}-core CPU ({platform.machine()}){mem}, no GPU used (device cpu)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=12, help="width multiplier of the scaled checkpoint (12: ~290 MB)")
    parser.add_argument("--skip-scaled", action="store_true", help="tiny checkpoint only")
    parser.add_argument("--no-tag-sweep", action="store_true", help=f"skip the 1-tag ({ONE_TAG}) runs")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0, help="seed of the scaled checkpoint's weights")
    parser.add_argument("--real-size", action="store_true",
                        help=f"also the real N1.7-3B size ({REAL_CKPT.relative_to(REPO)}: `make real-size-checkpoint`)"
                             ": fp32 and fp32+bf16 on 1 tag, fp32+bf16 on all tags, batch 1 (~10 min on 2 cores)")
    parser.add_argument("--only-real-size", action="store_true", help="the real-size rows alone")
    parser.add_argument("--train", action="store_true",
                        help="also run each report with TRAIN=1 (the training step), right after the one without")
    parser.add_argument("--probes", type=int, default=100,
                        help="probes of the live investigation session on tiny (0: skip it; 10 on the scaled one)")
    args = parser.parse_args(argv)

    from groot_lib.workbench.kernels import ensure_jupyter_path

    ensure_jupyter_path()
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    work = BUILD / stamp
    result: dict = {"stamp": stamp, "machine": machine(), "work": str(work.relative_to(REPO)), "notes": [],
                    "reports": {}, "bare": {}, "checkpoints": {}}
    try:
        has_gr00t = preflight()
        if not has_gr00t:
            result["notes"].append(
                "gr00t is not importable in the original env: the scaled-up run is SKIPPED (it needs "
                f"{GR00T_HINT}), and on tiny both flows use the committed recordings instead of a live original.")
            log(result["notes"][-1])
        result["env_check"] = measure("env-check", ["make", "--no-print-directory", "kernels"], work / "logs")
        if result["env_check"]["rc"] != 0:
            raise BenchError(f"`make kernels` failed; see {result['env_check']['log']}")
        # Page-cache the biggest files (torch's libraries) once, so the first flow timed doesn't pay alone.
        result["warmup"] = [measure(f"warmup-{name}", [str(python), "-c", "import torch"], work / "logs")
                            for name, python in PY.items()]
        result["checkpoints"]["tiny"] = {"dir": str(TINY_CKPT.relative_to(REPO)), "weights_mb": round(
            sum(p.stat().st_size for p in TINY_CKPT.glob("*.safetensors")) / 2**20, 1)}
        plan = [("tiny-all", None)] + ([] if args.no_tag_sweep else [("tiny-1", ONE_TAG)])
        if args.only_real_size:
            plan, args.skip_scaled, args.real_size = [], True, True
        if args.real_size:
            if not (REAL_CKPT / "config.json").is_file():
                raise BenchError(f"no real-size checkpoint at {REAL_CKPT.relative_to(REPO)}: "
                                 "`make real-size-checkpoint` builds it (12.6 GB, ~3.5 min, needs gr00t)")
            result["checkpoints"]["real"] = {"dir": str(REAL_CKPT.relative_to(REPO)), "weights_mb": round(
                sum(p.stat().st_size for p in REAL_CKPT.glob("*.safetensors")) / 2**20, 1),
                "page cache": page_in(REAL_CKPT)}
            result["real"] = {label: run_report(label.replace(" ", "-").replace(",", "").replace("+", "-"), REAL_CKPT,
                                                REAL_CKPT.parent / "hf_home", tags, work, args.device, variants, batch=1)
                              for label, variants, tags in REAL_RUNS if not args.train or label == REAL_RUNS[0][0]}
            if args.train:
                label, variants, tags = REAL_RUNS[0]
                result.setdefault("train", {})[label] = run_report(
                    label.replace(" ", "-").replace(",", "").replace("+", "-") + "-train", REAL_CKPT,
                    REAL_CKPT.parent / "hf_home", tags, work, args.device, variants, batch=1, extra=("--train", "1"))
        for label, tags in plan:
            result["bare"][label] = run_bare(label, TINY_CKPT, TINY_HF, tags, work, args.device)
            result["reports"][label] = run_report(label, TINY_CKPT, TINY_HF, tags, work, args.device)
            if args.train:
                result.setdefault("train", {})[label] = run_report(f"{label}-train", TINY_CKPT, TINY_HF, tags, work,
                                                                   args.device, extra=("--train", "1"))
        if args.probes and plan:
            result.setdefault("investigate", {})["tiny"] = run_investigate("tiny", TINY_CKPT, TINY_HF, work, args.device, args.probes)
        if has_gr00t and not args.skip_scaled:
            ckpt, hf_home, info = scaled_checkpoint(args.scale, args.seed, work / "logs")
            result["checkpoints"]["scaled"] = info
            result["bare"]["scaled-all"] = run_bare("scaled-all", ckpt, hf_home, None, work, args.device)
            result["reports"]["scaled-all"] = run_report("scaled-all", ckpt, hf_home, None, work, args.device)
            if args.train:
                result.setdefault("train", {})["scaled-all"] = run_report("scaled-all-train", ckpt, hf_home, None, work,
                                                                          args.device, extra=("--train", "1"))
            if args.probes:
                result.setdefault("investigate", {})["scaled"] = run_investigate("scaled", ckpt, hf_home, work, args.device,
                                                                  min(args.probes, 10))
        elif args.skip_scaled:
            result["notes"].append("scaled-up run skipped (--skip-scaled).")
        if any(r.get("timings") is None for r in result["reports"].values()):
            result["notes"].append("the workflow wrote no timings.json, so the per-phase rows are n/a; "
                                   "only whole-run figures are measured.")
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = REPO / "build" / "bench" / f"results-{stamp}"
    result["json"] = str(out.with_suffix(".json").relative_to(REPO))
    md = render(result)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    out.with_suffix(".md").write_text(md)
    print(md)
    print(f"written: {out.with_suffix('.md').relative_to(REPO)} and .json")
    failed = [r for r in [*result["reports"].values(), *result["bare"].values(),
                          *result.get("investigate", {}).values()] if r.get("error")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
