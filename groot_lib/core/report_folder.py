"""The ``reports/<UTC stamp>/`` layout, owned here: which folders are reports, which of them are finished, and
which are still being written.

Why: a report folder appears when a run starts and is whole only once the workflow has written it. Cleaning,
exporting and exploring must agree on that, and must never delete a run in progress or count a half-written
folder as a report. A run marks its folder with its pid (``.running.json``) from the moment the folder appears
until the report is written. Stdlib only: every environment reads reports.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from groot_lib.core.atomic import atomic_write_text
from groot_lib.core.errors import ParityError
from groot_lib.paths import REPORTS

ROOT = REPORTS
STAMP = re.compile(r"^\d{8}T\d{6}Z(-\d+)?$")  # a second's UTC stamp; -2, -3... when several start in one second
RUNNING = ".running.json"  # {"pid": ..., "started": ...} of the run writing the folder; gone once it is written
INDEX = "index.html"


def _started(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot), None where /proc cannot say: tells a reused pid apart."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def write_marker(path: Path) -> Path:
    """``path`` names this process (pid and start time) until someone removes it."""
    return atomic_write_text(path, json.dumps({"pid": os.getpid(), "started": _started(os.getpid())}) + "\n")


def marker_alive(path: Path) -> bool:
    """True while the process a marker names is running (a pid now held by a later process does not count)."""
    try:
        marker = json.loads(Path(path).read_text())
        pid = int(marker["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return False
    try:
        os.kill(pid, 0)
    except PermissionError:  # someone else's process: it exists
        pass
    except OSError:
        return False
    started = marker.get("started")
    return started is None or _started(pid) in (None, started)


def create(root: Path = ROOT) -> Path:
    """A fresh ``root/<stamp>`` (``<stamp>-2``... if taken) that carries this process's marker from its first
    instant: built under a hidden name, then renamed, so no reader ever sees it unmarked."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    staging = root / f".{stamp}.{os.getpid()}.new"
    staging.mkdir(exist_ok=True)
    write_marker(staging / RUNNING)
    for n in range(1, 1000):
        path = root / (stamp if n == 1 else f"{stamp}-{n}")
        if path.exists():
            continue
        try:
            staging.rename(path)
            return path
        except OSError:  # another run took the name first
            continue
    shutil.rmtree(staging, ignore_errors=True)
    raise ParityError(f"could not create a fresh report folder under {root}")


def finish(folder: Path) -> None:
    """The report in ``folder`` is written: from now on it counts as finished."""
    (Path(folder) / RUNNING).unlink(missing_ok=True)


def report_folders(root: Path = ROOT) -> list[Path]:
    """The ``<UTC stamp>`` folders under ``root``, finished or not, newest first."""
    root = Path(root)
    return sorted((p for p in root.iterdir() if p.is_dir() and STAMP.match(p.name)),
                  key=lambda p: p.name, reverse=True) if root.is_dir() else []


def is_finished(folder: Path) -> bool:
    """Its index.html is written and its run has said it is done (a run that died after writing the index but
    before the rest is not finished)."""
    return (Path(folder) / INDEX).is_file() and not (Path(folder) / RUNNING).exists()


def is_running(folder: Path) -> bool:
    return marker_alive(Path(folder) / RUNNING)


def finished(root: Path = ROOT, having: str = INDEX) -> list[Path]:
    """The finished reports under ``root`` that hold ``having`` (a file or folder), newest first."""
    return [p for p in report_folders(root) if is_finished(p) and (p / having).exists()]


def newest(root: Path = ROOT, having: str = INDEX) -> Path | None:
    """The newest finished report under ``root`` that holds ``having``, or None."""
    return next(iter(finished(root, having)), None)


@dataclass
class Cleaned:
    kept: list[Path] = field(default_factory=list)  # the newest ``keep`` finished reports
    removed: list[Path] = field(default_factory=list)  # finished reports beyond those
    abandoned: list[Path] = field(default_factory=list)  # unfinished, their run over: removed
    in_progress: list[Path] = field(default_factory=list)  # unfinished, their run still going: kept


def clean(root: Path, keep: int) -> Cleaned:
    """Keep the ``keep`` newest finished reports and every run in progress; remove the other finished reports
    and every unfinished folder whose run is over."""
    if keep < 0:
        raise ValueError(f"keep must be >= 0, got {keep}")
    done = Cleaned()
    for folder in report_folders(root):
        if is_running(folder):  # asked first: a run that finishes meanwhile is kept, never taken for abandoned
            done.in_progress.append(folder)
        elif is_finished(folder):
            (done.kept if len(done.kept) < keep else done.removed).append(folder)
        else:
            done.abandoned.append(folder)
    for folder in done.removed + done.abandoned:
        shutil.rmtree(folder, ignore_errors=True)
    return done


# ---------------------------------------------------------------- verdicts.json: the contract between the consumer
# (which writes it) and every reader: the report writer, the terminal summary, compare-reports, export-upstream and
# the explorer. Read once here, checked, and handed out as typed records: a renamed key fails loudly with its name
# instead of showing a default.

VERDICTS = "verdicts.json"
VERDICTS_SCHEMA = "groot-parity-verdicts"
# 1: reports before the schema was stamped (no "where", "not_compared"; first_divergence null for two states).
# 2: schema stamped; where lines, not-compared checks, first_divergence states, precision figures.
VERDICTS_VERSION = 2
_REQUIRED = {1: ("passed", "rows", "precision", "settings", "source", "tags", "first_divergence"),
             2: ("passed", "rows", "precision", "settings", "source", "tags", "first_divergence", "where",
                 "not_compared", "sweep", "lerobot", "replays", "refused")}
_ROW_KEYS = ("tag", "check", "tensor", "verdict")
_PRECISION_KEYS = ("tag", "variant", "verdict", "cross gap", "bound", "k", "reason")


def _status(verdict: str, flag: str | None) -> str:
    return "FAIL" if verdict != "PASS" else ("SUSPECT" if flag == "SUSPECT" else "PASS")


@dataclass(frozen=True)
class Row:
    """One compared tensor of one check (compare.comparison.Comparison.as_row); ``fields`` is the row as written,
    for tables."""

    tag: str
    check: str
    tensor: str
    verdict: str
    max_abs: float | None  # None: no such statistic (a shape mismatch)
    flag: str
    expected_gap_ratio: float | None  # "x expected gap": the gap over what rounding explains for the devices
    reason: str
    fields: dict

    @property
    def status(self) -> str:
        return _status(self.verdict, self.flag)

    @classmethod
    def read(cls, row: dict) -> "Row":
        return cls(row["tag"], row["check"], row["tensor"], row["verdict"], row.get("max|delta|"),
                   row.get("flag") or "", row.get("x expected gap"), row.get("reason") or "", row)


@dataclass(frozen=True)
class PrecisionRow:
    """One embodiment and low-precision variant of the precision study (compare.precision.PrecisionVerdict)."""

    tag: str
    variant: str
    verdict: str
    cross_gap: float | None
    bound: float | None  # k x the larger noise floor
    k: float
    reason: str
    fields: dict

    @property
    def status(self) -> str:
        return self.verdict

    @classmethod
    def read(cls, row: dict) -> "PrecisionRow":
        return cls(row["tag"], row["variant"], row["verdict"], row["cross gap"], row["bound"], row["k"],
                   row["reason"], row)


@dataclass(frozen=True)
class SweepRow:
    """One embodiment and check across the input sweep's cases (compare.sweep_verdicts.SweepSummary)."""

    tag: str
    check: str
    tensor: str
    cases: int
    max_abs: float | None
    verdict: str
    flag: str
    worst_case: str
    fields: dict

    @property
    def status(self) -> str:
        return _status(self.verdict, self.flag)

    @classmethod
    def read(cls, row: dict) -> "SweepRow":
        return cls(row["tag"], row["check"], row["tensor"], row["cases"], row["max"], row["verdict"],
                   row.get("flag") or "", row["worst case"], row)


@dataclass(frozen=True)
class Where:
    """Where one FAIL or SUSPECT cell goes wrong and by how much (compare/where.py)."""

    tag: str
    check: str
    status: str
    text: str


@dataclass(frozen=True)
class NotCompared:
    """A check that could not run, and why ("*" as tag: the whole run)."""

    tag: str
    check: str
    why: str


@dataclass
class Verdicts:
    """A report's verdicts.json, read and checked (``read``); what every reader uses, typed."""

    version: int
    passed: bool
    rows: list[Row]
    precision: list[PrecisionRow]
    sweep: list[SweepRow]
    sweep_cases: int
    where: list[Where]
    not_compared: list[NotCompared]
    settings: dict
    source: dict
    tags: dict  # tag -> the consumer's per-tag summary (stages, violating cells, decoded actions, ...)
    first_divergence: dict  # tag -> {"state": "diverges"|"none"|"not compared"|"unknown", ...}
    figures: dict  # "model" | "decoded" | "training" | "stages" -> tag -> path; "precision" -> tag -> [paths]
    lerobot: dict
    replays: list[dict]
    refused: dict
    notes: list[str]
    timings: dict
    payload: dict  # everything as written

    @property
    def suspect(self) -> list[str]:
        """'tag / check / tensor' of every check within tolerance yet far above rounding (sweep rows included)."""
        return [f"{r.tag} / {r.check} / {r.tensor}" for r in [*self.rows, *self.sweep] if r.status == "SUSPECT"]

    @classmethod
    def empty(cls) -> "Verdicts":
        """No verdicts (the consumer did not finish): what a page or summary shows then."""
        return cls.from_payload({"schema": f"{VERDICTS_SCHEMA}/{VERDICTS_VERSION}", "passed": False,
                                 **{k: [] for k in ("rows", "precision", "where", "not_compared", "replays")},
                                 **{k: {} for k in ("settings", "source", "tags", "first_divergence", "sweep",
                                                    "lerobot", "refused")}})

    @classmethod
    def from_payload(cls, payload: dict, *, where: str = "verdicts") -> "Verdicts":
        """Check a verdicts payload (schema, version, required keys, each row's keys) and type it; ``where`` names
        it in errors (the file)."""
        if not isinstance(payload, dict):
            raise ParityError(f"{where} holds a JSON {type(payload).__name__}; expected the object the consumer "
                              "notebook writes")
        schema = payload.get("schema", f"{VERDICTS_SCHEMA}/1")  # reports before the schema was stamped are v1
        name, _, number = str(schema).partition("/")
        if name != VERDICTS_SCHEMA or not number.isdigit():
            raise ParityError(f"{where} has schema {schema!r}; expected {VERDICTS_SCHEMA}/<version>")
        version = int(number)
        if version > VERDICTS_VERSION:
            raise ParityError(f"{where} was written by a newer gr00t-parity (verdicts version {version}); this one "
                              f"reads up to version {VERDICTS_VERSION}: update the workbench to read it")
        missing = [k for k in _REQUIRED.get(version, _REQUIRED[VERDICTS_VERSION]) if k not in payload]
        if missing:
            raise ParityError(f"{where} lacks {', '.join(missing)} (verdicts version {version}); it was not written by "
                              "the consumer notebook, or was cut short")
        for key, needed in (("rows", _ROW_KEYS), ("precision", _PRECISION_KEYS)):
            for i, row in enumerate(payload[key]):
                lacking = [k for k in needed if not isinstance(row, dict) or k not in row]
                if lacking:
                    raise ParityError(f"{where}: {key}[{i}] lacks {', '.join(lacking)}")
        sweep = payload.get("sweep") or {}
        return cls(
            version=version, passed=bool(payload["passed"]), rows=[Row.read(r) for r in payload["rows"]],
            precision=[PrecisionRow.read(r) for r in payload["precision"]],
            sweep=[SweepRow.read(r) for r in sweep.get("summary", [])], sweep_cases=int(sweep.get("cases", 0)),
            where=[Where(**w) for w in payload.get("where", [])],
            not_compared=[NotCompared(**n) for n in payload.get("not_compared", [])],
            settings=payload["settings"], source=payload["source"], tags=payload["tags"],
            first_divergence={tag: _divergence(first) for tag, first in payload["first_divergence"].items()},
            figures={"model": payload.get("figures") or {}, "decoded": payload.get("decoded_figures") or {},
                     "training": payload.get("training_figures") or {},
                     "stages": payload.get("stage_figures") or {},
                     "precision": payload.get("precision_figures") or {}},
            lerobot=payload.get("lerobot") or {}, replays=payload.get("replays") or [],
            refused=payload.get("refused") or {}, notes=[*payload.get("notes", []), *payload.get("row_notes", [])],
            timings=payload.get("timings") or {}, payload=payload)


def _divergence(first) -> dict:
    """A v2 state as written; a v1 entry: a stage dict (it diverged) or null, which meant both "none diverged" and
    "never compared", so it reads as unknown."""
    if isinstance(first, dict) and "state" in first:
        return first
    if isinstance(first, dict):
        return {"state": "diverges", **first}
    return {"state": "unknown", "why": "this report predates telling 'no stage diverged' from 'stages not compared'"}


def verdicts_path(folder: Path) -> Path:
    return Path(folder) / VERDICTS


def read_verdicts(folder: Path) -> Verdicts:
    """The report's verdicts, checked: one line naming the file and what is wrong when it cannot be read."""
    path = verdicts_path(folder)
    if not path.is_file():
        raise ParityError(f"{folder} is not a finished report: no {VERDICTS} in it (a report whose notebooks did not "
                          "finish has no verdicts)")
    try:
        payload = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ParityError(f"{path} is not valid JSON: {exc}") from None
    return Verdicts.from_payload(payload, where=str(path))


def write_verdicts(folder: Path, payload: dict) -> Path:
    """Stamp the schema and write ``folder/verdicts.json`` atomically (strict JSON: non-finite numbers refused)."""
    stamped = {"schema": f"{VERDICTS_SCHEMA}/{VERDICTS_VERSION}", **payload}
    Verdicts.from_payload(stamped, where=f"the verdicts about to be written to {folder}")  # never write what no reader reads
    return atomic_write_text(verdicts_path(folder), json.dumps(stamped, indent=2, allow_nan=False) + "\n")
