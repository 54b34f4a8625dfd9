"""``make report``: producer in the original kernel, consumer in the LeRobot kernel, HTML.

    python -m groot_lib.workbench.workflow report [--checkpoint DIR|ID] [--tags a,b] [--seed N]
        [--atol X] [--rtol X] [--device cpu|cuda|auto] [--variants fp32-sdpa,bf16-sdpa,...]
        [--noise-mode seed|inject] [--precision-k 2] [--out-root DIR] [--artifacts-root DIR]

Exit status: 0 when every verdict passes, 1 when any fails (or a variant was refused),
2 when a setting is invalid or a notebook could not finish, 128 + the signal's number when
stopped (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP; summary.EXIT_MEANING). The report is written
in every case but a bad setting (refused before anything runs) and a stop signal.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from groot_lib.tiny import layout as tiny_layout
from groot_lib.core import report_folder
from groot_lib.core.errors import ParityError

# jsonschema (under nbformat and papermill) imports rfc3987_syntax when it is installed (jupyter-events brings it
# for JupyterLab), and that module builds a Lark grammar at import: 1.2 s of every report, for an IRI format check
# no notebook schema uses. jsonschema treats the module as optional; the workflow process goes without it.
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]

from groot_lib.paths import NOTEBOOKS, REFERENCES, REPO_ROOT as REPO  # noqa: E402
ORIGINAL_KERNEL, LEROBOT_KERNEL = "groot-original", "groot-lerobot"
PHASES_FILE = "phases.jsonl"  # every process's phase spans (pipeline.progress): timings.json's timeline


def _phase_timings(run_dir: Path, timings: dict, source: dict, verdicts, zero: float,
                   schedule: str | None = None) -> dict:
    """Per-phase seconds, the timeline and peak RSS of one report (bench/ reads this file).

    ``wall`` splits the report's wall time on the timeline: ``model`` is the seconds during which some kernel was
    importing an implementation, loading weights or running a model (overlaps counted once), ``plumbing`` every
    other second (kernel starts, artifact I/O, checks, plots, HTML, waiting on papermill). Busy seconds per phase
    can add up to more than the wall time, since the kernels overlap.
    """
    from groot_lib.core.runinfo import peak_rss_mb
    from groot_lib.pipeline import progress
    from groot_lib.workbench.notebook_runner import cell_timings

    kernels = {"producer": source.get("timings", {}), "consumer": verdicts.timings if verdicts is not None else {}}
    spans = progress.read_spans(run_dir / PHASES_FILE)
    phases: dict[str, float | None] = {}
    for name, done in kernels.items():
        executed = run_dir / f"{name}.ipynb"
        if executed.exists():
            phases[f"{name} kernel start"] = cell_timings(executed)["kernel start"]
        for phase in ("checkpoint load", "compute", "store", "release"):
            phases[f"{name} {phase}"] = done.get(phase)
    phases["producer imports"] = kernels["producer"].get("imports")
    phases["consumer imports"] = kernels["consumer"].get("imports")
    phases["consumer waited for producer"] = kernels["consumer"].get("waited for producer")
    phases["plots"] = kernels["consumer"].get("plots")
    phases["html export"] = round(sum(s["end"] - s["start"] for s in spans if s["phase"] == "html export"), 2)
    phases["producer notebook"] = timings.get("producer")
    phases["consumer notebook"] = timings.get("consumer")
    phases["total"] = timings.get("total")
    model = sum(v or 0.0 for k, v in phases.items() if k.endswith(tuple(progress.MODEL_PHASES)))
    on_wall = progress.busy_seconds(spans)
    total = timings.get("total") or 0.0
    return {"phases": {k: (round(v, 2) if isinstance(v, (int, float)) else v) for k, v in phases.items()},
            "schedule": schedule, "model_seconds": round(model, 2),
            "wall": {"total": round(total, 2), "model": round(on_wall, 2), "plumbing": round(total - on_wall, 2)},
            "timeline": [{**s, "start": round(s["start"] - zero, 3), "end": round(s["end"] - zero, 3)}
                         for s in sorted(spans, key=lambda s: s["start"])],
            "memory": {"producer rss after release MB": kernels["producer"].get("rss_after_release_mb")},
            "peak_rss_mb": {**{f"{name} kernel": done.get("peak_rss_mb") for name, done in kernels.items()},
                            "workflow": peak_rss_mb()}}


class Interrupted(ParityError):
    """A stop signal (notebook_runner.STOP_SIGNALS): both kernels were killed and the unfinished report folder
    removed; the process exits 128 + ``signum``."""

    def __init__(self, message: str, *, signum: int):
        super().__init__(message)
        self.signum = signum


@contextmanager
def kernel_environment(run_dir: Path):
    """What the kernels inherit while they run: where to append progress lines, where their stderr goes.
    Restored afterwards, so a later notebook run in this process never writes into this report."""
    from groot_lib.pipeline import progress
    from groot_lib.workbench.notebook_runner import KERNEL_LOG_ENV

    wanted = {progress.ENV: str(run_dir / "progress.log"), progress.PHASES_ENV: str(run_dir / PHASES_FILE),
              KERNEL_LOG_ENV: str(run_dir / "kernels.log")}
    saved = {name: os.environ.get(name) for name in wanted}
    os.environ.update(wanted)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class ProgressPrinter:
    """Prints the kernels' progress lines (pipeline.progress) to stderr as they appear, with elapsed time."""

    def __init__(self, path: Path, began: float, *, quiet: bool = False,
                 kernels: str = "the groot-original and groot-lerobot kernels"):
        import threading

        self.path, self.began, self.quiet, self.offset = path, began, quiet, 0
        self.done = threading.Event()
        self.say(f"starting {kernels}")
        self.thread = threading.Thread(target=self.run, daemon=True, name="progress")
        self.thread.start()

    def say(self, line: str) -> None:
        if not self.quiet:
            print(f"  [{time.perf_counter() - self.began:6.1f} s] {line}", file=sys.stderr, flush=True)

    def poll(self) -> None:
        try:
            with open(self.path, encoding="utf-8") as handle:
                handle.seek(self.offset)
                chunk = handle.read()
        except OSError:
            return
        complete = chunk[: chunk.rfind("\n") + 1]
        self.offset += len(complete.encode())
        for line in complete.splitlines():
            self.say(line)

    def run(self) -> None:
        while not self.done.wait(0.25):
            self.poll()

    def stop(self) -> None:
        if not self.done.is_set():
            self.done.set()
            self.thread.join(timeout=1)
            self.poll()


@dataclass
class ReportRun:
    """One report in the making: its folder, the notebooks to run in their kernels (producer, consumer) with their
    parameters, what each left (an error line or None), the pages exported so far, and the clock."""

    run_dir: Path
    notebooks: Path
    steps: list  # (name, kernel, parameters), in order; the consumer alone when the original's outputs are given
    recorded: dict  # the effective settings the report records
    overlap: bool  # both kernels at once (core/memory.py)
    tail: "ProgressPrinter"
    began: float = field(default_factory=time.perf_counter)
    zero: float = field(default_factory=time.time)  # the timeline's zero
    timings: dict = field(default_factory=dict)
    outcome: dict = field(default_factory=dict)
    pages: dict = field(default_factory=dict)

    @property
    def artifacts_dir(self) -> Path:  # this run's artifacts, published (hard-linked) from the store
        return self.run_dir / "artifacts"

    def run_notebook(self, name: str, kernel: str, params: dict) -> None:
        """One notebook in its kernel; a failing cell, a dead kernel or no kernel at all is recorded, never raised."""
        from groot_lib.pipeline import progress
        from groot_lib.workbench.notebook_runner import run_notebook

        start = time.perf_counter()
        try:
            with progress.span(name, "notebook"):
                run_notebook(self.notebooks / f"{name}.ipynb", self.run_dir / f"{name}.ipynb", kernel_name=kernel,
                             parameters=params, cwd=REPO)
            self.outcome[name] = None
        except ParityError as exc:
            self.outcome[name] = str(exc)
        except BaseException as exc:  # noqa: BLE001 - after Ctrl-C the killed kernel surfaces here; never a traceback
            self.outcome[name] = f"{name}.ipynb: {type(exc).__name__}: {exc}"
        finally:
            self.timings[name] = round(time.perf_counter() - start, 2)

    def run_kernels(self, consumer, stop: dict) -> None:
        """Both notebooks at once when one model at a time fits beside the other kernel (core/memory.py): the
        consumer imports LeRobot while the producer works, then waits for the producer's source.json, written once
        the producer has released its models (or for the failure marker written here). Otherwise the consumer
        starts once the producer's kernel is gone."""
        from groot_lib.core.atomic import atomic_write_text
        from groot_lib.pipeline.handoff import FAILED_FILE

        if self.overlap or len(self.steps) == 1:
            consumer.start()
        if len(self.steps) == 2:
            self.run_notebook(*self.steps[0])
        if not consumer.ident and not stop["signal"]:
            consumer.start()
        if self.outcome.get("producer") and not stop["signal"]:
            atomic_write_text(self.artifacts_dir / FAILED_FILE, self.outcome["producer"].splitlines()[0] + "\n")
        if len(self.steps) == 2 and consumer.is_alive():  # the producer's page, while the consumer works
            _html_pages(self.run_dir, self.steps[:1], self.pages)
        if consumer.ident is not None:
            consumer.join()

    def finish(self) -> tuple[int, Path]:
        """The report written (an internal error of ours still leaves one that says so), the folder finished."""
        from groot_lib.pipeline.handoff import RUNNING_FILE

        self.tail.stop()
        (self.artifacts_dir / RUNNING_FILE).unlink(missing_ok=True)
        try:
            written = _write_report(self)
        except Exception as exc:  # noqa: BLE001 - a bug of ours must still leave a report that says so
            written = _internal_error(self.run_dir, exc)
        report_folder.finish(self.run_dir)
        return written

    def abandon(self, stop: dict, consumer) -> "Interrupted":
        """A stop signal: every kernel killed, the unfinished folder removed; the one line to say."""
        import shutil

        from groot_lib.workbench.notebook_runner import kill_kernels

        self.tail.stop()  # a repeated signal only kills again, so the folder goes in full
        killed = stop["killed"] + kill_kernels()
        if consumer.ident is not None:
            consumer.join(timeout=1.0)
        shutil.rmtree(self.run_dir, ignore_errors=True)
        return Interrupted(f"interrupted by {stop['signal'].name}: {killed} kernel(s) stopped; the unfinished report "
                           f"folder {self.run_dir} was removed (stored artifacts are kept and reused next time)",
                           signum=stop["signal"])


def _prepare(out_root: Path | None, artifacts_root: Path | None, notebooks: Path | None, quiet: bool,
             given: dict) -> ReportRun:
    """Every setting checked before any kernel starts, the report folder made, each notebook's parameters: the knobs
    of its side (settings.Knob.sides) plus where to read and write; the original's outputs imported when given."""
    from groot_lib.core import settings
    from groot_lib.core.store import DEFAULT_ROOT
    from groot_lib.pipeline.handoff import RUNNING_FILE
    from groot_lib.workbench import preflight

    began, zero = time.perf_counter(), time.time()
    out_root, store_dir = Path(out_root or report_folder.ROOT), Path(artifacts_root or DEFAULT_ROOT)
    values, sources = settings.resolve(given)
    plan = preflight.check(values, out_root=out_root, store_root=store_dir)
    run_dir = report_folder.create(out_root)  # marked as this run's until the report is written
    artifacts_dir = run_dir / "artifacts"
    artifacts_dir.mkdir(parents=True, exist_ok=True)
    resolved = {**values, "checkpoint": str(plan.checkpoint), "hf_home": plan.hf_home, "tags": ",".join(plan.tags)}
    steps = [("producer", ORIGINAL_KERNEL, {**settings.for_side(resolved, "producer"), "store_dir": str(store_dir),
                                            "output_dir": str(artifacts_dir)}),
             ("consumer", LEROBOT_KERNEL, {**settings.for_side(resolved, "consumer"), "store_dir": str(store_dir),
                                           "artifacts_dir": str(artifacts_dir), "output_dir": str(run_dir)})]
    if values["artifacts"]:  # ARTIFACTS=dir: the original's outputs are given; only the consumer runs
        from groot_lib.pipeline.sources import use_artifacts

        use_artifacts(Path(values["artifacts"]).expanduser(), artifacts_dir, plan.tags)
        steps = steps[1:]
    else:  # tells the consumer a producer is on its way (it fails fast when none is)
        report_folder.write_marker(artifacts_dir / RUNNING_FILE)
    tail = ProgressPrinter(run_dir / "progress.log", began, quiet=quiet,
                           **({"kernels": "the groot-lerobot kernel (the original's outputs are given)"}
                              if len(steps) == 1 else {}))
    for note in plan.notes:
        tail.say(f"warning: {note}")
    if plan.memory.mode == "sequential":
        tail.say(f"memory: running the producer, then the consumer (not at once): {plan.memory.reason}")
    recorded = {**resolved, "store_dir": str(store_dir), "sources": sources, "preflight seconds": plan.seconds,
                "notes": plan.notes, "memory": plan.memory.as_dict()}
    return ReportRun(run_dir, Path(notebooks or NOTEBOOKS), steps, recorded, plan.memory.mode == "overlap", tail,
                     began=began, zero=zero)


def run_report(*, out_root: Path | None = None, artifacts_root: Path | None = None,
               notebooks: Path | None = None, quiet: bool = False, **given) -> tuple[int, Path]:
    """Validate, then producer + consumer + HTML; returns (exit status, index.html).

    ``given`` holds settings by knob name (see ``settings.KNOBS``); everything is checked before a kernel starts.
    The report folder also gets summary.txt, the text ``main`` prints. A stop signal kills both kernels and removes
    the unfinished folder (Interrupted); the report is written inside the signal block too, so one that lands
    while it is written removes the folder as well.
    """
    import threading

    from groot_lib.workbench.notebook_runner import stop_signals_kill_kernels

    report = _prepare(out_root, artifacts_root, notebooks, quiet, given)
    consumer = threading.Thread(target=report.run_notebook, args=report.steps[-1], daemon=True, name="consumer")
    with stop_signals_kill_kernels() as stop, kernel_environment(report.run_dir):
        try:
            report.run_kernels(consumer, stop)
            if not stop["signal"]:  # (run_notebook swallows the KeyboardInterrupt when it lands in a notebook)
                return report.finish()
        except KeyboardInterrupt:
            stop["signal"] = stop["signal"] or signal.SIGINT
        raise report.abandon(stop, consumer)


def _internal_error(run_dir: Path, exc: Exception) -> tuple[int, Path]:
    """The last resort: index.html and summary.txt name the error, internal-error.txt keeps the traceback."""
    import html
    import traceback

    from groot_lib.core.atomic import atomic_write_text

    atomic_write_text(run_dir / "internal-error.txt", "".join(traceback.format_exception(exc)))
    line = f"internal error while writing the report: {type(exc).__name__}: {exc} (traceback in internal-error.txt)"
    index = atomic_write_text(run_dir / "index.html", f"<!doctype html><meta charset='utf-8'><title>gr00t-parity "
                                                      f"report</title><h1>gr00t-parity: ERROR</h1><pre>{html.escape(line)}</pre>"
                                                      "<p>The executed notebooks in this folder hold the results.</p>")
    atomic_write_text(run_dir / "summary.txt", f"gr00t-parity: ERROR (exit 2)\n{line}\nreport: {index}\n")
    return 2, index


def _html_pages(run_dir: Path, steps: list, pages: dict[str, Path]) -> dict[str, Path]:
    """Each executed notebook of ``steps`` not yet in ``pages`` as HTML, added to it; its span goes on the
    timeline."""
    from groot_lib.pipeline import progress
    from groot_lib.workbench.report import export_html

    for name, kernel, _ in steps:
        executed, title = run_dir / f"{name}.ipynb", f"{name} ({kernel})"
        if title not in pages and executed.exists():
            with progress.span("workflow", "html export"):
                pages[title] = export_html(executed)
    return pages


def _write_report(report: ReportRun) -> tuple[int, Path]:
    """HTML pages, index.html, timings.json and summary.txt from what the notebooks left in the report's folder
    (``report.pages`` holds the pages already exported: the producer's, while the consumer ran)."""
    from groot_lib.core.atomic import atomic_write_text
    from groot_lib.pipeline import progress
    from groot_lib.pipeline.handoff import read_source
    from groot_lib.workbench.report import write_index
    from groot_lib.workbench.summary import terminal_summary

    run_dir = report.run_dir
    errors = [e for e in (report.outcome.get("producer"), report.outcome.get("consumer")) if e]
    pages = _html_pages(run_dir, report.steps, dict(report.pages))
    verdicts = None
    if not errors and report_folder.verdicts_path(run_dir).exists():
        try:
            verdicts = report_folder.read_verdicts(run_dir)
        except ParityError as exc:  # the consumer wrote something no reader can read: an error, never a PASS
            errors.append(f"consumer.ipynb wrote unreadable verdicts: {exc}")
    source = read_source(report.artifacts_dir)
    banner = source.get("banner", "original outputs: unknown")
    code = 2 if errors else (0 if verdicts is not None and verdicts.passed else 1)
    with progress.span("workflow", "html export"):
        index = write_index(run_dir, banner=banner, verdicts=verdicts, pages=pages, errors=errors,
                            settings=report.recorded, source=source)
    report.timings["total"] = round(time.perf_counter() - report.began, 2)
    atomic_write_text(run_dir / "timings.json",
                      json.dumps(_phase_timings(run_dir, report.timings, source, verdicts, report.zero,
                                                 report.recorded.get("memory", {}).get("mode")), indent=2) + "\n")
    refused = {**source.get("refused", {}), **(verdicts.refused if verdicts is not None else {})}
    atomic_write_text(run_dir / "summary.txt", terminal_summary(code=code, index=index, banner=banner,
                                                                verdicts=verdicts, errors=errors,
                                                                refused=refused) + "\n")
    return code, index


def record_references(*, variants: str | None = None, seed: int | None = None, batch_size: int | None = None,
                      device: str = "cpu", artifacts_root: Path | None = None,
                      checkpoint: Path = tiny_layout.TINY_CHECKPOINT, stages: str | None = None, sweep: int = 0) -> Path:
    """Run the producer LIVE on the tiny default into references/tiny (cpu) or references/tiny-cuda (a CUDA
    device), plus provenance.json.

    Needs gr00t in the original kernel (`make setup GR00T_SRC=...`); refuses to "record" recordings.
    """
    from groot_lib.core import settings

    variants = variants or settings.BY_NAME["variants"].default
    seed, batch_size = settings.value("seed", seed), settings.value("batch_size", batch_size)
    device = settings.value("device", device)
    which = "cuda" if device.startswith("cuda") else "cpu"
    out = tiny_layout.recorded_root(which, checkpoint)
    if out is None:
        raise ParityError(f"{checkpoint} is not a committed checkpoint with {which} recordings "
                          f"({sorted(str(p) for p in tiny_layout.EMBEDDED)})")
    params = {"checkpoint": str(checkpoint), "hf_home": str(tiny_layout.TINY_HF_HOME), "tags": "",
              "seed": seed, "batch_size": batch_size, "device": device, "variants": variants,
              "store_dir": str(artifacts_root or ""), "stages": stages, "sweep": sweep}
    command = (("bench/gpu/check.sh" if device.startswith("cuda") else "make record-references")
               + f" (python -m groot_lib.workbench.workflow record --device {device} --variants {variants}"
               + (f" --sweep {sweep}" if sweep else "") + ")")
    return _record_into(out, params, command)


def record_training_references(artifacts_root: Path | None = None) -> Path:
    """Run the producer LIVE with the training and optimizer step (TRAIN=1 TRAIN_UPDATE=1) on one tag of the tiny
    default, fp32 only, into references/tiny-train: what CI replays LeRobot's training half against. One tag: the
    gradients and weight changes of every trainable parameter make a file ~7.5 MB."""
    from groot_lib.core import settings
    from groot_lib.core.variants import DEFAULT_VARIANT

    params = {"checkpoint": str(tiny_layout.TINY_CHECKPOINT), "hf_home": str(tiny_layout.TINY_HF_HOME),
              "tags": ",".join(TRAINING_REFERENCE_TAGS), "seed": settings.value("seed"),
              "batch_size": settings.value("batch_size"), "device": "cpu", "variants": DEFAULT_VARIANT,
              "store_dir": str(artifacts_root or ""), "stages": "off", "sweep": 0, "train": True,
              "train_update": True}
    return _record_into(TRAINING_REFERENCES, params, "make record-references (python -m groot_lib.workbench.workflow "
                                                     "record-training)")


TRAINING_REFERENCE_TAGS = ("libero_sim",)
TRAINING_REFERENCES = REFERENCES / "tiny-train"


def _record_into(out: Path, params: dict, command: str) -> Path:
    """Run the producer notebook live with ``params`` into ``out`` (staged, then swapped in) with provenance.json."""
    from groot_lib.core.artifact import find_artifacts, find_variants, load_artifact
    from groot_lib.workbench.notebook_runner import run_notebook
    from groot_lib.pipeline.handoff import read_source

    staging = out.with_name(out.name + ".staging")
    run_notebook(NOTEBOOKS / "producer.ipynb", staging / "producer.ipynb", kernel_name=ORIGINAL_KERNEL,
                 parameters={**params, "output_dir": str(staging)}, cwd=REPO)
    source = read_source(staging)
    if source.get("mode") != "live":
        raise ParityError(f"the producer did not run live ({source.get('banner')}); install gr00t with "
                          "`make setup GR00T_SRC=/path/to/Isaac-GR00T` first")
    first = load_artifact(next(iter(find_artifacts(staging).values())))
    provenance = {
        "gr00t_commit": source["gr00t"].get("commit"),
        "producer": {**first.producer, "gpu": (first.producer.get("machine") or {}).get("gpu")},
        "checkpoint": first.checkpoint,
        "seed": params["seed"], "batch_size": params["batch_size"],
        "variants": find_variants(staging),  # refused ones are absent
        "sweep": params["sweep"], **({"train": True, "train_update": bool(params.get("train_update"))} if params.get("train") else {}),
        "refused": source.get("refused", {}),
        "command": command,
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


UPSTREAM_DUMP_SCRIPT = "tests/policies/groot/utils/dump_original_n1_7.py"
UPSTREAM_DUMPS = REFERENCES / "upstream-dumps"


def record_upstream_dumps(lerobot_src: Path, device: str = "cpu") -> Path:
    """Run LeRobot's own ``dump_original_n1_7.py`` (from the user's huggingface/lerobot checkout, never copied
    here) in the groot-original kernel on the tiny default: references/upstream-dumps, the real files its
    upstream format reader is tested on, plus provenance.json (which script, which commit, which gr00t)."""
    import hashlib
    import shutil
    import subprocess

    from groot_lib.core import checkpoint as ckpt
    from groot_lib.workbench.kernels import interpreter

    script = Path(lerobot_src).expanduser().resolve() / UPSTREAM_DUMP_SCRIPT
    if not script.is_file():
        raise ParityError(f"no {UPSTREAM_DUMP_SCRIPT} in {lerobot_src}: LEROBOT_SRC= takes a huggingface/lerobot checkout")
    python = interpreter(ORIGINAL_KERNEL)
    staging = UPSTREAM_DUMPS.with_name(UPSTREAM_DUMPS.name + ".staging")
    shutil.rmtree(staging, ignore_errors=True)
    command = [str(python), str(script), "--ckpt", str(tiny_layout.TINY_CHECKPOINT), "--out-dir", str(staging),
               "--device", device]
    env = {**os.environ, "HF_HOME": str(tiny_layout.TINY_HF_HOME), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(command, cwd=script.parents[4], env=env, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0 or not list(staging.glob("*.npz")):
        raise ParityError(f"{script.name} failed ({proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}")
    commit = subprocess.run(["git", "-C", str(script.parent), "rev-parse", "HEAD"], capture_output=True,
                            text=True).stdout.strip() or None
    gr00t = subprocess.run([str(python), "-c", "import json; from groot_lib.backends import original; "
                            "s = original.identity(); print(json.dumps({k: s.get(k) for k in ('commit', 'code')}))"],
                           cwd=REPO, capture_output=True, text=True)
    provenance = {"script": UPSTREAM_DUMP_SCRIPT, "lerobot_commit": commit,
                  "script_sha256": hashlib.sha256(script.read_bytes()).hexdigest(),
                  "gr00t": json.loads(gr00t.stdout.strip().splitlines()[-1]) if gr00t.returncode == 0 else None,
                  "checkpoint": str(tiny_layout.TINY_CHECKPOINT.relative_to(REPO)),
                  "checkpoint_fingerprint": ckpt.fingerprint(tiny_layout.TINY_CHECKPOINT)["fingerprint"],
                  "device": device, "command": "make record-upstream-dumps LEROBOT_SRC=... "
                                               f"({script.name} --ckpt <tiny default> --device {device})",
                  "output": proc.stdout.strip().splitlines()[-2:],
                  "recorded_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    (staging / "provenance.json").write_text(json.dumps(provenance, indent=2) + "\n")
    shutil.rmtree(UPSTREAM_DUMPS, ignore_errors=True)
    staging.rename(UPSTREAM_DUMPS)
    return UPSTREAM_DUMPS


def main(argv: list[str] | None = None) -> int:
    from groot_lib.core import settings
    from groot_lib.workbench.summary import EXIT_MEANING

    parser = argparse.ArgumentParser(prog="gr00t-parity", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    exits = "exit status:\n" + "\n".join(f"  {code:<4} {meaning}" for code, meaning in EXIT_MEANING.items())
    rep = sub.add_parser("report", help="run producer + consumer and write reports/<UTC>/index.html", epilog=exits,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    for knob in settings.KNOBS:
        env = f"; ${knob.env}" if knob.env else ""
        rep.add_argument(knob.flag, dest=knob.name, help=f"{knob.help} (default {knob.default}{env})")
    rep.add_argument("--out-root", type=Path, help="reports folder (default reports/)")
    rep.add_argument("--artifacts-root", type=Path, help="artifact store (default build/artifacts)")
    rec = sub.add_parser("record", help="re-record references/tiny with the live original (needs gr00t)")
    rec.add_argument("--variants", default=settings.BY_NAME["variants"].default)
    rec.add_argument("--device", default="cpu", help="cpu -> references/tiny; cuda -> references/tiny-cuda")
    rec.add_argument("--artifacts-root", type=Path, help="artifact store (default build/artifacts)")
    rec.add_argument("--checkpoint", type=Path, default=tiny_layout.TINY_CHECKPOINT,
                     help=f"a committed checkpoint (default the tiny default; {tiny_layout.VARIANTS_CHECKPOINT.name} "
                          "records into references/tiny-variants)")
    rec.add_argument("--sweep", type=int, default=0, help="also record this many input-sweep cases per tag")
    rec.add_argument("--stages", default=settings.default("stages"), choices=settings.STAGE_MODES,
                     help="off: no named stages in the recordings (smaller; no divergence localisation on them)")
    sub.add_parser("record-training", help="re-record references/tiny-train: the training step on two tags (needs "
                                           "gr00t)")
    up = sub.add_parser("record-upstream", help="run LeRobot's dump_original_n1_7.py (from LEROBOT_SRC) on the tiny "
                                                "default into references/upstream-dumps (needs gr00t)")
    up.add_argument("--lerobot-src", type=Path, required=True, help="a huggingface/lerobot checkout")
    up.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    if args.command == "record-upstream":
        print(record_upstream_dumps(args.lerobot_src, args.device))
        return 0
    if args.command == "record-training":
        print(record_training_references())
        return 0
    if args.command == "record":
        print(record_references(variants=args.variants, device=args.device, artifacts_root=args.artifacts_root,
                                checkpoint=args.checkpoint, stages=args.stages, sweep=args.sweep))
        return 0
    given = {knob.name: getattr(args, knob.name) for knob in settings.KNOBS}
    try:
        code, index = run_report(out_root=args.out_root, artifacts_root=args.artifacts_root, **given)
    except Interrupted as exc:
        newline = "\n" if exc.signum == signal.SIGINT else ""  # past the terminal's ^C
        print(f"{newline}gr00t-parity: {exc}", file=sys.stderr, flush=True)
        os._exit(128 + exc.signum)  # the killed consumer's thread must not hold the exit
    except ParityError as exc:
        print(f"gr00t-parity: error: {exc}", file=sys.stderr)
        return 2
    print((index.parent / "summary.txt").read_text(), end="")
    return code


if __name__ == "__main__":
    sys.exit(main())
