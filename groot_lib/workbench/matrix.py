"""Many reports at once: ``make matrix SPEC=<file>`` fans a declarative matrix out as Ray tasks.

Why Ray: a matrix at real size is hundreds of GPU-minutes; Ray schedules shards on whatever nodes have the CPUs,
GPUs and memory each asks for, and retries a shard whose worker dies. Locally ``ray.init()`` starts a one-machine
cluster (no setup); ``RAY_ADDRESS=`` runs the same spec on a cluster whose nodes share this repo's path (a shared
filesystem: the envs built there with ``make setup``, the artifact store and the matrix folder).

Each shard is one regular report (``workflow report`` in a subprocess, its knobs from the spec) into its own
folder under ``build/matrix/<UTC>/shards/<shard>/``, all sharing one artifact store: a shard whose outputs are
stored (keyed by everything that can change them, the code under test included) reuses them and runs no model
again. The report subprocess dies with its worker (PR_SET_PDEATHSIG: SIGTERM, which a report handles like Ctrl-C:
kernels killed, unfinished folder removed), so a killed worker or a cancelled matrix leaves no orphan kernels.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from groot_lib.core.atomic import atomic_write_text
from groot_lib.core.errors import ParityError
from groot_lib.paths import REPO_ROOT as REPO

MATRIX_ROOT = REPO / "build" / "matrix"
SPEC_KEYS = {"axes": "knob -> list of values; one shard per combination",
             "fixed": "knob -> value, the same for every shard",
             "lerobot": "optional axis: LeRobot sources, each {src: <git checkout>, rev: <revision>}",
             "resources": "per shard: cpus (default 1), gpus (default: 1 when the shard's device is cuda)",
             "retries": "times a shard whose worker died is run again (default 2)"}
EXIT_MEANING = {0: "every shard PASS", 1: "a shard FAILs", 2: "a shard could not run (partial matrix)",
                130: "cancelled"}


@dataclass(frozen=True)
class Shard:
    """One report of the matrix: its knobs (fixed + this combination) and LeRobot source, if not the env's."""

    id: str
    axes: dict  # axis -> value, what distinguishes it (the page's columns)
    knobs: dict
    lerobot: dict | None = None  # {"src", "rev"}

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.axes.items()) or "the only shard"


@dataclass(frozen=True)
class Spec:
    path: Path
    shards: list[Shard]
    axes: list[str]
    cpus: float
    gpus: float | None
    retries: int


def load_spec(path: Path) -> Spec:
    """Read and check a YAML or TOML spec; every error names the file and the key."""
    from groot_lib.core import settings

    raw = _read(path)
    unknown = sorted(set(raw) - set(SPEC_KEYS))
    if unknown:
        raise ParityError(f"{path}: unknown key(s) {unknown}; a spec has " +
                          "; ".join(f"{k} ({v})" for k, v in SPEC_KEYS.items()))
    axes, fixed = raw.get("axes") or {}, raw.get("fixed") or {}
    for section, table in (("axes", axes), ("fixed", fixed)):
        if not isinstance(table, dict):
            raise ParityError(f"{path}: {section} must map knob names to values, not {type(table).__name__}")
        for name, value in table.items():
            knob = settings.BY_NAME.get(name)
            if knob is None:
                raise ParityError(f"{path}: {section}.{name} is not a knob; knobs: {', '.join(settings.BY_NAME)}")
            if section == "axes" and (not isinstance(value, list) or not value):
                raise ParityError(f"{path}: axes.{name} must be a non-empty list of values")
            for one in ([value] if section == "fixed" else value):
                try:
                    knob.parse(one)
                except ValueError as exc:
                    raise ParityError(f"{path}: {section}.{name} = {one!r}: {exc}") from None
    both = sorted(set(axes) & set(fixed))
    if both:
        raise ParityError(f"{path}: {both} both in axes and in fixed; keep each knob in one")
    lerobot = raw.get("lerobot") or [None]
    for i, source in enumerate(lerobot):
        if source is not None and (not isinstance(source, dict) or set(source) != {"src", "rev"}):
            raise ParityError(f"{path}: lerobot[{i}] must be {{src: <git checkout>, rev: <revision>}}")
    resources = raw.get("resources") or {}
    shards = [_shard(dict(zip(axes, combo)), fixed, source, len(lerobot) > 1)
              for combo in itertools.product(*axes.values()) for source in lerobot]
    return Spec(Path(path), shards, [*axes, *(["lerobot"] if len(lerobot) > 1 else [])],
                float(resources.get("cpus", 1)), resources.get("gpus"), int(raw.get("retries", 2)))


def _read(path: Path) -> dict:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ParityError(f"matrix spec {path}: {exc.strerror or exc}") from None
    try:
        if path.suffix == ".toml":
            import tomllib

            data = tomllib.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as exc:  # noqa: BLE001 - YAML and TOML raise their own types; one line either way
        raise ParityError(f"matrix spec {path}: not valid {'TOML' if path.suffix == '.toml' else 'YAML'}: "
                          f"{str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ParityError(f"matrix spec {path}: expected a mapping with {', '.join(SPEC_KEYS)}")
    return data


def _shard(combo: dict, fixed: dict, source: dict | None, lerobot_axis: bool) -> Shard:
    from groot_lib.core.store import content_key

    axes = {**combo, **({"lerobot": f"{source['rev']}"} if lerobot_axis and source else {})}
    knobs = {**fixed, **combo}
    return Shard(content_key({"knobs": knobs, "lerobot": source})[:12], axes, knobs, source)


def report_command(shard: Shard, folder: Path, store: Path) -> list[str]:
    from groot_lib.core import settings

    flags = [part for name, value in shard.knobs.items()
             for part in (settings.BY_NAME[name].flag, _flag_value(value))]
    return [sys.executable, "-m", "groot_lib.workbench.workflow", "report", "--out-root", str(folder),
            "--artifacts-root", str(store), *flags]


def _flag_value(value) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value)


def _die_with_parent() -> None:
    """In the report subprocess: SIGTERM when the worker that started it dies (Linux prctl PR_SET_PDEATHSIG)."""
    import ctypes

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


def run_shard(shard: Shard, root: Path, store: Path, jupyter_path: str) -> dict:
    """One shard's report, in this (Ray worker) process's child; what the page needs about it. A retried shard
    first removes what a killed attempt left unfinished."""
    from groot_lib.core import report_folder

    folder = root / "shards" / shard.id
    folder.mkdir(parents=True, exist_ok=True)
    report_folder.clean(folder, keep=1_000_000)  # only dead runs' unfinished folders go
    with open(folder / "attempts.log", "a", encoding="utf-8") as log:
        log.write(f"{time.time():.3f} pid {os.getpid()} {os.uname().nodename}\n")
    env = {**os.environ, "JUPYTER_PATH": jupyter_path}
    start = time.perf_counter()
    with open(folder / "report.log", "ab") as out:
        proc = subprocess.run(report_command(shard, folder, store), cwd=REPO, env=env, stdout=out,
                              stderr=subprocess.STDOUT, preexec_fn=_die_with_parent, start_new_session=True)
    newest = report_folder.newest(folder)
    return {"shard": shard.id, "exit": proc.returncode, "seconds": round(time.perf_counter() - start, 2),
            "index": str(newest / "index.html") if newest else None, "node": os.uname().nodename,
            "pid": os.getpid(), "log": str(folder / "report.log")}


@dataclass
class ShardResult:
    shard: Shard
    exit: int | None = None
    index: str | None = None
    error: str | None = None  # why it did not run to a report
    seconds: float | None = None
    cells: dict = field(default_factory=dict)  # check -> {"status", "worst", "tensor"}
    attempts: int = 0
    log: str | None = None


def judge_shard(result: ShardResult, overlay: Path | None = None) -> None:
    """Fill ``cells`` from the shard's verdicts.json (the worst row per check), or an error when there is none (or
    when the shard's LeRobot overlay was not the code its report ran)."""
    from groot_lib.core import report_folder
    from groot_lib.workbench.bisect import overlay_mismatch

    if result.error:
        return
    if result.exit == 2 or not result.index:
        result.error = _report_error(result)
        return
    verdicts = report_folder.read_verdicts(Path(result.index).parent)
    wrong = overlay and overlay_mismatch(verdicts, overlay)
    if wrong:
        result.error = f"its report {wrong}"
        return
    rank = {"PASS": 0, "SUSPECT": 1, "FAIL": 2}
    for row in verdicts.rows:
        cell = result.cells.setdefault(row.check, {"status": "PASS", "worst": None, "tensor": None})
        if rank[row.status] > rank[cell["status"]]:
            cell["status"] = row.status
        if row.max_abs is not None and (cell["worst"] is None or row.max_abs > cell["worst"]):
            cell["worst"], cell["tensor"] = row.max_abs, row.tensor
        if row.max_abs is None and row.status == "FAIL":
            cell["worst"], cell["tensor"] = None, f"{row.tensor}: {row.reason}"
    for row in verdicts.precision:  # the bf16 variants' cross gap against k x the noise floor
        cell = result.cells.setdefault(PRECISION_CHECK, {"status": "PASS", "worst": None, "tensor": None})
        status = "PASS" if row.verdict == "PASS" else "FAIL"
        if rank[status] > rank[cell["status"]]:
            cell["status"] = status
        if row.cross_gap is not None and (cell["worst"] is None or row.cross_gap > cell["worst"]):
            cell["worst"], cell["tensor"] = row.cross_gap, f"{row.tag} {row.variant}: {row.reason}"
    for item in verdicts.not_compared:
        result.cells.setdefault(item.check, {"status": "not compared", "worst": None, "tensor": item.why})


def _report_error(result: ShardResult) -> str:
    """The report's own error line: its summary's, or (refused before it made a folder) its log's last one."""
    summary = Path(result.index).parent / "summary.txt" if result.index else None
    lines = summary.read_text().splitlines() if summary and summary.is_file() else []
    if not lines and result.log and Path(result.log).is_file():
        lines = Path(result.log).read_text(errors="replace").splitlines()[::-1]
    errors = [line.strip() for line in lines if "error" in line.lower()]
    return (errors or [f"exit {result.exit}, no report written (see {result.log})"])[0]


def shard_needs(shard: Shard, spec: Spec) -> dict:
    """Ray resources for one shard: CPUs from the spec, a GPU when it runs on cuda, memory from the memory planner
    (what the report reserves at once for its checkpoint, device, schedule and training step)."""
    from groot_lib.core import memory, settings
    from groot_lib.tiny import layout as tiny_layout
    from groot_lib.workbench import preflight

    values, _ = settings.resolve(shard.knobs)
    root = preflight.resolve_checkpoint(values["checkpoint"], tiny_layout.hf_home_for(values["checkpoint"],
                                                                                      values["hf_home"]))
    planned = memory.plan(root, device=values["device"], schedule=values["schedule"], memory_gb=1e6,
                          train=values["train"])
    gpus = spec.gpus if spec.gpus is not None else (1 if str(values["device"]).startswith("cuda") else 0)
    return {"num_cpus": spec.cpus, "num_gpus": gpus, "memory": int(planned.at_once_gb * memory.GB)}


def _fits(needs: dict[str, dict], shards: dict[str, Shard], nodes: list[dict]) -> None:
    """Refuse, before anything runs, a shard no node can hold (Ray would leave it pending for ever)."""
    for sid, need in needs.items():
        if not any(n["Resources"].get("CPU", 0) >= need["num_cpus"] and n["Resources"].get("GPU", 0) >= need["num_gpus"]
                   and n["Resources"].get("memory", 0) >= need["memory"] for n in nodes if n.get("Alive")):
            have = [{k: round(n["Resources"].get(k, 0) / (2**30 if k == "memory" else 1), 1)
                     for k in ("CPU", "GPU", "memory")} for n in nodes if n.get("Alive")]
            raise ParityError(f"shard {shards[sid].label} needs {need['num_cpus']} CPU, {need['num_gpus']} GPU and "
                              f"{need['memory'] / 2**30:.1f} GiB memory (the memory planner's estimate); no node has "
                              f"them: {have} (GiB)")


class Progress:
    """One line whenever the counts change (and every 30 s): done, pending (running or queued), failed, ETA."""

    HEARTBEAT_S = 30.0

    def __init__(self, total: int, slots: int, quiet: bool = False):
        self.total, self.slots, self.quiet = total, max(1, slots), quiet
        self.began, self.last, self.printed = time.perf_counter(), None, 0.0

    def show(self, done: list) -> None:
        elapsed = time.perf_counter() - self.began
        left = self.total - len(done)
        failed = sum(1 for r in done if r.error or r.exit == 2)
        timed = [r.seconds for r in done if r.seconds]
        eta = f", ETA ~{sum(timed) / len(timed) * -(-left // self.slots):.0f} s" if timed and left else ""
        line = f"shards: {len(done)}/{self.total} done ({failed} could not run), {left} running or queued{eta}"
        if not self.quiet and (line != self.last or elapsed - self.printed >= self.HEARTBEAT_S):
            print(f"  [{elapsed:6.1f} s] {line}", file=sys.stderr, flush=True)
            self.printed = elapsed
        self.last = line


def run_matrix(spec_path: Path, *, root: Path = MATRIX_ROOT, store: Path | None = None, quiet: bool = False):
    """Every shard of the spec as a Ray task; returns (exit status, the matrix folder's index.html)."""
    import ray

    from groot_lib.core.store import DEFAULT_ROOT
    from groot_lib.workbench.bisect import overlay_kernels
    from groot_lib.workbench.kernels import jupyter_path

    spec = load_spec(spec_path)
    folder = Path(root) / datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    store = Path(store or DEFAULT_ROOT).resolve()
    shards = {s.id: s for s in spec.shards}
    needs = {sid: shard_needs(s, spec) for sid, s in shards.items()}
    folder.mkdir(parents=True)
    trees = {sid: _checkout(s.lerobot, folder) for sid, s in shards.items() if s.lerobot}
    paths = {sid: os.pathsep.join([*([str(overlay_kernels(trees[sid], folder / "overlays" / sid))]
                                     if sid in trees else []), jupyter_path()]) for sid in shards}
    address = os.environ.get("RAY_ADDRESS") or None
    ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False,
             **({} if address else {"object_store_memory": 80 * 2**20}))
    refs: dict = {}
    try:
        _fits(needs, shards, ray.nodes())
        task = ray.remote(run_shard)
        refs = {task.options(**needs[sid], max_retries=spec.retries, retry_exceptions=False,
                             name=f"shard {s.label}").remote(s, folder, store, paths[sid]): sid
                for sid, s in shards.items()}
        results = _collect(refs, shards, Progress(len(refs), int(ray.cluster_resources().get("CPU", 1) // spec.cpus),
                                                  quiet))
    except KeyboardInterrupt:
        for ref in refs:
            ray.cancel(ref, force=True)
        raise
    finally:
        ray.shutdown()
        _sweep(folder)
    try:
        for r in results:
            judge_shard(r, trees.get(r.shard.id))
            r.attempts = _attempts(folder / "shards" / r.shard.id)
        return write_matrix(folder, spec, results)
    finally:
        _remove_checkouts(shards, trees)


def _sweep(folder: Path, wait_s: float = 15.0) -> None:
    """Once the shards are over (or cancelled): wait for their report processes to be gone, then remove the report
    folders a killed attempt left unfinished (Ray kills a dead or cancelled worker's children before they can)."""
    from groot_lib.core import report_folder

    shards = [p for p in (folder / "shards").iterdir() if p.is_dir()] if (folder / "shards").is_dir() else []
    end = time.monotonic() + wait_s
    while time.monotonic() < end and any(report_folder.is_running(f) for s in shards
                                         for f in report_folder.report_folders(s)):
        time.sleep(0.2)
    for shard in shards:
        report_folder.clean(shard, keep=1_000_000)


def _checkout(source: dict, folder: Path) -> Path:
    """A LeRobot revision for the overlay: a detached worktree of the user's checkout under the matrix folder."""
    from groot_lib.workbench.bisect import git

    src = Path(source["src"]).expanduser().resolve()
    rev = git(src, "rev-parse", "--verify", f"{source['rev']}^{{commit}}")
    tree = folder / "lerobot" / rev[:12]
    if not tree.exists():
        git(src, "worktree", "add", "--detach", str(tree), rev)
    return tree


def _remove_checkouts(shards: dict, trees: dict) -> None:
    """The LeRobot worktrees the matrix added, unregistered from the user's checkouts again."""
    from groot_lib.workbench.bisect import git

    for src, tree in {(Path(shards[sid].lerobot["src"]).expanduser().resolve(), tree) for sid, tree in trees.items()}:
        git(src, "worktree", "remove", "--force", str(tree), check=False)
        git(src, "worktree", "prune", check=False)


def _collect(refs: dict, shards: dict, progress: Progress) -> list[ShardResult]:
    import ray
    from ray.exceptions import RayError

    pending, done = list(refs), []
    progress.show(done)
    while pending:
        ready, pending = ray.wait(pending, num_returns=1, timeout=1.0)
        for ref in ready:
            shard = shards[refs[ref]]
            try:
                out = ray.get(ref)
                done.append(ShardResult(shard, exit=out["exit"], index=out["index"], seconds=out["seconds"],
                                        log=out["log"]))
            except RayError as exc:  # the worker died more often than the retries allow, or the task raised
                done.append(ShardResult(shard, error=f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"))
        progress.show(done)
    return sorted(done, key=lambda r: list(shards).index(r.shard.id))


def _attempts(folder: Path) -> int:
    log = folder / "attempts.log"
    return len(log.read_text().splitlines()) if log.is_file() else 0


PRECISION_CHECK = "precision study"
CHECK_ORDER = ("model parity", "preprocessor parity", "decoded actions", PRECISION_CHECK, "training targets",
               "training loss", "gradients", "optimizer step")


def write_matrix(folder: Path, spec: Spec, results: list[ShardResult]) -> tuple[int, Path]:
    """matrix.json, index.html (axes x checks, each cell linking to its shard's report) and summary.txt."""
    checks = sorted({c for r in results for c in r.cells},
                    key=lambda c: (CHECK_ORDER.index(c) if c in CHECK_ORDER else len(CHECK_ORDER), c))
    # a check no shard compared (TRAIN=0 everywhere, say) is one line under the table, not a column of grey cells
    unrun = {c: next(r.cells[c]["tensor"] for r in results if c in r.cells) for c in checks
             if all((r.cells.get(c) or {}).get("status", "not compared") == "not compared" for r in results)}
    checks = [c for c in checks if c not in unrun]
    broken = [r for r in results if r.error]
    failing = [r for r in results if any(c["status"] == "FAIL" for c in r.cells.values())]
    code = 2 if broken else 1 if failing else 0
    verdict = {0: "PASS", 1: "FAIL", 2: "INCOMPLETE"}[code]
    payload = {"schema": "groot-parity-matrix/1", "verdict": verdict, "exit": code, "spec": str(spec.path),
               "axes": spec.axes, "checks": checks, "compared_nowhere": unrun,
               "shards": [{"id": r.shard.id, "axes": r.shard.axes, "knobs": r.shard.knobs, "lerobot": r.shard.lerobot,
                           "exit": r.exit, "error": r.error, "report": r.index, "seconds": r.seconds,
                           "attempts": r.attempts, "cells": r.cells} for r in results]}
    atomic_write_text(folder / "matrix.json", json.dumps(payload, indent=2, default=str) + "\n")
    lines = _terminal(folder, spec, results, checks, verdict, code)
    lines[-1:-1] = [f"  not compared in any shard: {c} ({why})" for c, why in unrun.items()]
    atomic_write_text(folder / "summary.txt", "\n".join(lines) + "\n")
    index = atomic_write_text(folder / "index.html", _page(folder, spec, results, checks, verdict, lines))
    return code, index


def _cell_text(cell: dict | None) -> str:
    from groot_lib.compare.numbers import fmt

    if cell is None:
        return "-"
    if cell["status"] == "not compared":
        return "not compared"
    worst = f" {fmt(cell['worst'])}" if cell["worst"] is not None else ""
    return f"{cell['status']}{worst}"


def _terminal(folder: Path, spec: Spec, results: list[ShardResult], checks: list[str], verdict: str,
              code: int) -> list[str]:
    from groot_lib.compare.numbers import fmt

    head = (f"gr00t-parity matrix: {verdict} (exit {code}: {EXIT_MEANING[code]}), {len(results)} shards, "
            f"{sum(1 for r in results if r.error)} could not run")
    rows = [[*(str(r.shard.axes.get(a, "")) for a in spec.axes),
             *((["could not run"] + [""] * (len(checks) - 1)) if r.error else [_cell_text(r.cells.get(c)) for c in checks]),
             fmt(r.seconds) if r.seconds is not None else "-", str(r.attempts)] for r in results]
    header = [*spec.axes, *checks, "s", "attempts"]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    table = ["  " + "  ".join(h.ljust(w) for h, w in zip(header, widths))]
    table += ["  " + "  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in rows]
    why = [f"  could not run: {r.shard.label}: {r.error}" for r in results if r.error]
    return [head, *table, *why, f"  page: {folder / 'index.html'}"]


def _page(folder: Path, spec: Spec, results: list[ShardResult], checks: list[str], verdict: str,
          lines: list[str]) -> str:
    import html

    from groot_lib.workbench.report import STYLE

    css = {"PASS": "pass", "FAIL": "fail", "SUSPECT": "suspect", "not compared": "nc"}
    rows = []
    for r in results:
        axes = "".join(f"<td>{html.escape(str(r.shard.axes.get(a, '')))}</td>" for a in spec.axes)
        link = os.path.relpath(r.index, folder) if r.index else None
        if r.error:
            cells = f"<td class='refused' colspan='{max(1, len(checks))}'>could not run: {html.escape(r.error)}</td>"
        else:
            cells = "".join(
                f"<td class='{css.get((r.cells.get(c) or {}).get('status'), 'nc')}' "
                f"title='{html.escape(str((r.cells.get(c) or {}).get('tensor') or ''))}'>"
                + (f"<a href='{html.escape(link)}'>" if link else "") + html.escape(_cell_text(r.cells.get(c)))
                + ("</a>" if link else "") + "</td>" for c in checks)
        report = f"<a href='{html.escape(link)}'>report</a>" if link else "-"
        rows.append(f"<tr>{axes}{cells}<td>{report}</td><td>{r.attempts}</td></tr>")
    header = "".join(f"<th>{html.escape(h)}</th>" for h in [*spec.axes, *checks, "report", "attempts"])
    return (f"<!doctype html><meta charset='utf-8'><title>gr00t-parity matrix {verdict}</title>{STYLE}"
            f"<h1>Matrix: {verdict}</h1><p class='verdict'>{html.escape(lines[0])}</p>"
            f"<p class='links'>spec {html.escape(str(spec.path))}; each cell: the worst status and largest max "
            f"|delta| of that check in that shard's report (click for the report)</p>"
            f"<table class='matrix'><tr>{header}</tr>{''.join(rows)}</table>"
            + "".join(f"<p class='links'>{html.escape(line.strip())}</p>" for line in lines[1:]
                      if line.strip().startswith(("could not run", "not compared in any"))))


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="make matrix", description=__doc__.splitlines()[0],
                                     epilog="exit status: " + "; ".join(f"{k} {v}" for k, v in EXIT_MEANING.items()))
    parser.add_argument("spec", type=Path, help="the matrix spec (YAML or TOML): " +
                        "; ".join(f"{k}: {v}" for k, v in SPEC_KEYS.items()))
    parser.add_argument("--out-root", type=Path, default=MATRIX_ROOT, help="where matrix folders go")
    parser.add_argument("--artifacts-root", type=Path, help="the shared artifact store (default build/artifacts)")
    args = parser.parse_args(argv)
    try:
        code, index = run_matrix(args.spec, root=args.out_root, store=args.artifacts_root)
    except KeyboardInterrupt:
        print("\ngr00t-parity matrix: cancelled; every shard's report stopped with its kernels", file=sys.stderr)
        return 130
    except ParityError as exc:
        print(f"gr00t-parity matrix: error: {exc}", file=sys.stderr)
        return 2
    print((index.parent / "summary.txt").read_text(), end="")
    return code


if __name__ == "__main__":
    sys.exit(main())
