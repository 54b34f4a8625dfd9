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


def newest(root: Path = ROOT, having: str = INDEX) -> Path | None:
    """The newest finished report under ``root`` that holds ``having`` (a file or folder), or None."""
    return next((p for p in report_folders(root) if is_finished(p) and (p / having).exists()), None)


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
