"""``make export-upstream``: a report's fp32 artifacts in LeRobot's own parity format (core/upstream.py), so
upstream's ``tests/policies/groot/test_groot_vs_original.py`` runs on them unchanged. ``upstream_test_command``
spells the command that runs it, once: the export prints it with the report's paths, the README shows the same text.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

from groot_lib.core import report_folder, settings, upstream
from groot_lib.core.artifact import DEFAULT_VARIANT, find_artifacts, find_variants, load_artifact
from groot_lib.core.atomic import atomic_write_text
from groot_lib.core.errors import ParityError
from groot_lib.tiny import layout as tiny_layout
from groot_lib import paths

DEFAULT_OUT = paths.BUILD / "upstream"
UPSTREAM_TEST = "tests/policies/groot/test_groot_vs_original.py"  # in LeRobot's repository, not in its wheel
LEROBOT_PLACEHOLDER = "<lerobot>"  # printed (and shown in the README) until LEROBOT_SRC names a checkout
CHECKPOINT_PLACEHOLDER = "<checkpoint>"  # printed when the report does not say which checkpoint it ran
MANIFEST = "export.json"  # in the export folder: the files the last export wrote there (a re-export replaces them)
SEED = upstream.UPSTREAM_SEED


def newest_report(root: Path | None = None) -> Path:
    from groot_lib.core import report_folder

    root = Path(root or report_folder.ROOT)
    found = report_folder.newest(root, having="artifacts")
    if found is None:
        raise ParityError(f"no finished report folder with artifacts under {root}: run `make report SEED=42` first")
    return found


def _shown(path: str | os.PathLike) -> str:
    """A path for a command run from the repo root: relative inside the repo, absolute outside; shell-quoted.
    Symlinks stay (a venv's python is one: resolved, it would run outside the venv)."""
    absolute = Path(os.path.abspath(Path(path).expanduser()))
    try:
        text = str(absolute.relative_to(paths.REPO_ROOT))
    except ValueError:
        text = str(absolute)
    return shlex.quote(text)


def lerobot_python() -> Path:
    from groot_lib.workbench.kernels import interpreter

    return interpreter("groot-lerobot") or paths.REPO_ROOT / ".envs" / "lerobot" / "bin" / "python"


def upstream_test_command(out: str | os.PathLike, checkpoint: str | os.PathLike | None,
                          hf_home: str | os.PathLike | None, device: str,
                          lerobot_src: str | os.PathLike | None = None) -> str:
    """The command (run from the repo root) that runs upstream's test on an export in the LeRobot env:
    ``--noconftest`` because LeRobot's conftest imports test helpers its wheel lacks, the checkpoint's HF cache
    offline (the tiny default's own ``checkpoints/tiny/hf_home``) and the producer's device. ``None`` leaves the
    checkpoint or the LeRobot checkout as a placeholder; no ``hf_home`` means the default HF cache."""
    knob = settings.BY_NAME
    words = [f"{knob['artifacts'].env}={_shown(out)}",
             f"{knob['checkpoint'].env}={_shown(checkpoint) if checkpoint else CHECKPOINT_PLACEHOLDER}"]
    if hf_home:
        words.append(f"HF_HOME={_shown(hf_home)}")
    words += ["HF_HUB_OFFLINE=1", f"{knob['device'].env}={shlex.quote(device)}", _shown(lerobot_python()),
              "-m", "pytest", "--noconftest",
              f"{_shown(lerobot_src) if lerobot_src else LEROBOT_PLACEHOLDER}/{UPSTREAM_TEST}"]
    return " ".join(words)


def _artifacts_dir(report: Path) -> Path:
    """``<report>/artifacts``, or ``report`` itself when it is a folder of artifacts."""
    if not report.is_dir():
        raise ParityError(f"{report} is not a folder: REPORT= takes a report folder (reports/<stamp>) of "
                          f"`make report SEED={SEED}`")
    if (report / "artifacts").is_dir():
        return report / "artifacts"
    if any(report.glob("*.npz")):
        return report
    raise ParityError(f"{report} has no artifacts/ folder and holds no artifact, so it is not a report: REPORT= "
                      f"takes a report folder (reports/<stamp>) of `make report SEED={SEED}`")


def _producer_failure(report: Path, directory: Path) -> str | None:
    """Refuses a report whose producer is still running, or whose run died before the producer published;
    returns why a producer failed (such a report may still hold the tags it finished), else None."""
    from groot_lib.pipeline.handoff import FAILED_FILE, RUNNING_FILE, SOURCE_FILE, _producer_alive

    if (directory / FAILED_FILE).is_file():
        return (directory / FAILED_FILE).read_text().strip() or "no reason recorded"
    if (directory / RUNNING_FILE).is_file() and not (directory / SOURCE_FILE).is_file():
        if _producer_alive(directory):
            raise ParityError(f"{report} is unfinished: its producer is still running; export it once its "
                              "`make report` is done, or pass REPORT= a finished report")
        raise ParityError(f"{report} is unfinished: its `make report` was stopped before the producer published its "
                          f"outputs (no {SOURCE_FILE}); run `make report SEED={SEED}` again and export that report")
    return None


def _why_nothing(report: Path, directory: Path, failed: str | None, dumps: list[Path]) -> ParityError:
    """Why ``directory`` holds no fp32 artifact of the workbench's own to export."""
    from groot_lib.pipeline.handoff import read_source

    if dumps:
        source = read_source(directory)
        origin = Path(source["imported_from"]) if source.get("imported_from") else directory
        where = origin if origin.is_dir() else directory
        how = f"imported from {origin} with ARTIFACTS=" if source.get("imported_from") else "found there"
        return ParityError(
            f"nothing to export: {report}'s fp32 artifacts are all LeRobot's own dumps ({len(dumps)}, {how}), "
            f"upstream's format already; run upstream's test on them as they are: "
            f"{settings.BY_NAME['artifacts'].env}={where}")
    if failed:
        return ParityError(f"nothing to export: {report}'s producer did not finish, so it left no fp32 artifact "
                           f"({failed.splitlines()[0]}); fix that, run `make report SEED={SEED}` again and export "
                           "that report")
    variants = find_variants(directory)
    if variants:
        return ParityError(f"nothing to export: {report} holds only {', '.join(variants)} artifacts and upstream's "
                           f"test replays the {DEFAULT_VARIANT} reference; run `make report SEED={SEED}` with "
                           f"{DEFAULT_VARIANT} among VARIANTS (the default) and export that report")
    return ParityError(f"nothing to export: {directory} holds no artifact; run `make report SEED={SEED}` and export "
                       "that report")


def _replaceable(out: Path) -> set[str]:
    """Upstream-named files in ``out`` this export may replace or remove: the ones an earlier export wrote
    (its manifest), or all of them in the workbench's own DEFAULT_OUT."""
    present = {p.name for p in out.glob(f"{upstream.PREFIX}*{upstream.SUFFIX}")} if out.is_dir() else set()
    if out.resolve() == DEFAULT_OUT.resolve():
        return present
    try:
        return present & set(json.loads((out / MANIFEST).read_text())["files"])
    except (OSError, ValueError, KeyError, TypeError):
        return set()


def export_upstream(report: Path, out: Path = DEFAULT_OUT, *, lerobot_src: str | os.PathLike | None = None
                    ) -> list[Path]:
    """One ``original_n1_7_<tag>.npz`` per fp32 artifact of ``report``, then the command that runs upstream's test
    on them (stderr). Refuses (ParityError, nothing written) whatever would leave upstream's test nothing or the
    wrong thing to run: no report, an unfinished one, no fp32 artifact of the workbench's own (LeRobot dumps are
    upstream's format already), another seed than the one upstream's test reseeds with, a folder holding other
    parity files."""
    report, out = Path(report), Path(out)
    directory = _artifacts_dir(report)
    failed = _producer_failure(report, directory)
    found = find_artifacts(directory)
    dumps = [path for path in found.values() if upstream.is_upstream(path)]
    loaded = {tag: load_artifact(path) for tag, path in found.items() if not upstream.is_upstream(path)}
    if not loaded:
        raise _why_nothing(report, directory, failed, dumps)
    seeds = {tag: a.seed for tag, a in loaded.items() if a.seed != SEED}
    if seeds:
        raise ParityError(
            f"{report}'s artifacts were made with seed(s) {sorted(set(seeds.values()))}; upstream's "
            f"test_groot_vs_original.py reseeds with SEED = {SEED} right before sampling, so it "
            f"would draw other noise and fail. Run `make report SEED={SEED}` (the producer live: "
            "the committed recordings cover seed 0 only), then export that report")
    devices = sorted({str(a.producer.get("device", "cpu")) for a in loaded.values()})
    if len(devices) > 1:
        raise ParityError(f"{report}'s artifacts were made on {' and '.join(devices)}; upstream's test replays on one "
                          f"device ({settings.BY_NAME['device'].env}): export a report made on one")
    if out.exists() and not out.is_dir():
        raise ParityError(f"the export folder {out} is a file; pick another EXPORT_DIR")
    if out.resolve() == directory.resolve():
        raise ParityError(f"the export folder {out} is the report's own artifacts folder; pick another EXPORT_DIR")
    ours = _replaceable(out)
    foreign = sorted({p.name for p in out.glob(f"{upstream.PREFIX}*{upstream.SUFFIX}")} - ours) \
        if out.is_dir() else []
    if foreign:
        raise ParityError(f"{out} already holds {len(foreign)} LeRobot parity file(s) this export did not write "
                          f"({', '.join(foreign)}): upstream's test would run them too, or they would be overwritten; "
                          "pick an empty EXPORT_DIR or remove them")

    written = [upstream.export(a, out) for a in loaded.values()]
    for stale in sorted(ours - {p.name for p in written}):  # an earlier export's tags this report does not have
        (out / stale).unlink(missing_ok=True)
    atomic_write_text(out / MANIFEST, json.dumps({"report": str(report.resolve()), "seed": SEED,
                                                  "files": sorted(p.name for p in written)}, indent=2) + "\n")
    print(export_message(report, out, written, loaded, dumps=dumps, failed=failed, lerobot_src=lerobot_src),
          file=sys.stderr)
    return written


def export_message(report: Path, out: Path, written: list[Path], loaded: dict, *, dumps: list[Path],
                   failed: str | None, lerobot_src: str | os.PathLike | None) -> str:
    """What was exported, then, on a line of its own, the command that runs upstream's test on it."""
    first = next(iter(loaded.values()))
    environment = first.extra.get("environment") or {}
    checkpoint = environment.get("checkpoint") or _report_checkpoint(report)
    hf_home = tiny_layout.hf_home_for(checkpoint, environment.get("hf_home")) if checkpoint else None
    source = Path(lerobot_src).expanduser() if lerobot_src else None
    notes = []
    if failed:
        notes.append(f"note: its producer did not finish ({failed.splitlines()[0]}): exported the "
                     f"{len(written)} tag(s) it completed")
    if dumps:
        notes.append(f"note: left out {len(dumps)} LeRobot dump(s) ({', '.join(p.name for p in dumps)}): they are "
                     "upstream's format already")
    if not checkpoint:
        notes.append(f"note: the report does not name its checkpoint: put its path in place of "
                     f"{CHECKPOINT_PLACEHOLDER}")
    elif not Path(checkpoint).exists():
        notes.append(f"note: the report's checkpoint {checkpoint} is gone: put its path in the command")
    if source is not None and not (source / UPSTREAM_TEST).is_file():
        notes.append(f"note: LEROBOT_SRC={source} holds no {UPSTREAM_TEST}: it must be a huggingface/lerobot "
                     "checkout")
        source = None
    if source is None:
        notes.append(f"{LEROBOT_PLACEHOLDER} is a huggingface/lerobot checkout (the test is not in its wheel); "
                     f"`make export-upstream LEROBOT_SRC=<dir>` fills it in")
    command = upstream_test_command(out, checkpoint, hf_home, str(first.producer.get("device", "cpu")), source)
    return "\n".join([f"exported {len(written)} artifact(s) ({', '.join(sorted(loaded))}) from {report} to {out}",
                      *notes, f"run upstream's test on them from {paths.REPO_ROOT} (expect {len(written)} "
                      "passed):", command])


def _report_checkpoint(report: Path) -> str | None:
    try:
        return report_folder.read_verdicts(report).settings["checkpoint"]
    except (ParityError, KeyError):  # no (readable) verdicts: the command says <checkpoint>
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make export-upstream", description=__doc__.splitlines()[0])
    parser.add_argument("--report", type=Path, help="a reports/<stamp> folder (default: the newest)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"where to write (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    try:
        for path in export_upstream(args.report or newest_report(), args.out,
                                    lerobot_src=os.environ.get("LEROBOT_SRC") or None):
            print(path)
    except (ParityError, OSError) as exc:  # one line: the messages' hints are joined onto it
        print("export-upstream: error: " + " ".join(line.strip() for line in str(exc).splitlines() if line.strip()),
              file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
