"""Report folders: `make clean-reports` keeps the newest finished reports and every run in progress, removes
abandoned half-written folders, and says so; the newest-report look-ups never pick a half-written folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from groot_lib.compare import explore
from groot_lib.core import report_folder
from groot_lib.workbench import export
from groot_lib.workbench.workflow import REPO


def dead_pid() -> int:
    """A pid that was a process a moment ago and is gone now."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def folder(root: Path, name: str, *, finished: bool = False, pid: int | None = None) -> Path:
    """A report folder as a run leaves it: finished (index.html, summary, verdicts, artifacts) or cut off
    before index.html (verdicts written, the consumer's notebook still temporary), marked with ``pid`` if given."""
    path = root / name
    (path / "artifacts").mkdir(parents=True)
    for page in ("index.html", "summary.txt", "verdicts.json") if finished else ("verdicts.json",):
        (path / page).write_text("{}")
    if not finished:
        (path / f".consumer.{pid or 1}.tmp.ipynb").write_text("{}")
    if pid is not None:
        (path / report_folder.RUNNING).write_text(json.dumps({"pid": pid}))
    return path


def clean_reports(root: Path, keep: str) -> subprocess.CompletedProcess:
    """What `make clean-reports KEEP=... REPORTS_DIR=...` runs."""
    return subprocess.run([sys.executable, "-m", "groot_lib.workbench.report", "clean", "--keep", keep, "--root",
                           str(root)], cwd=REPO, capture_output=True, text=True, timeout=60)


@pytest.fixture
def reports(tmp_path) -> Path:
    """Four finished reports, one cut off by a crash (the newest stamp), one that died after writing its index,
    one still being written (by this test's own process), and a folder that is not a report."""
    gone = dead_pid()
    for name in ("20261101T000000Z", "20261102T000000Z", "20261102T000000Z-2", "20261104T000000Z"):
        folder(tmp_path, name, finished=True)
    folder(tmp_path, "20261103T000000Z", finished=True, pid=gone)
    folder(tmp_path, "20261106T000000Z", pid=gone)
    folder(tmp_path, "20261105T000000Z", pid=os.getpid())
    (tmp_path / "notes").mkdir()
    return tmp_path


def test_keep_counts_finished_reports_and_runs_in_progress_are_kept(reports):
    proc = clean_reports(reports, "1")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert sorted(p.name for p in reports.iterdir()) == ["20261104T000000Z", "20261105T000000Z", "notes"]
    lines = proc.stdout.splitlines()
    assert lines[0] == f"removed 3 finished report folder(s) from {reports}, kept the newest 1: 20261104T000000Z"
    assert lines[1] == ("removed 2 unfinished report folder(s) whose run is over: 20261106T000000Z, "
                        "20261103T000000Z")
    assert lines[2] == "kept 1 report folder(s) still being written: 20261105T000000Z"


@pytest.mark.parametrize("keep", ["-1", "two", "1.5"])
def test_a_bad_keep_is_one_line_and_exit_2(reports, keep):
    before = sorted(p.name for p in reports.iterdir())
    proc = clean_reports(reports, keep)
    assert proc.returncode == 2 and proc.stdout == "", proc.stdout
    assert proc.stderr.splitlines() == [f"clean-reports: error: argument --keep: KEEP must be a whole number >= 0 "
                                        f"(how many finished reports to keep), got '{keep}'"], proc.stderr
    assert sorted(p.name for p in reports.iterdir()) == before


def test_newest_report_is_the_newest_finished_one(reports):
    """export-upstream and the explore notebook skip the half-written and the running folders above it."""
    assert export.newest_report(reports) == reports / "20261104T000000Z"
    assert explore.newest_report(reports) == reports / "20261104T000000Z"


def test_a_marker_whose_pid_now_names_another_process_is_not_a_run_in_progress(tmp_path):
    """After a reboot or a container restart the dead run's pid may be taken: its start time tells them apart."""
    cut_off = folder(tmp_path, "20261101T000000Z")
    report_folder.write_marker(cut_off / report_folder.RUNNING)
    assert report_folder.is_running(cut_off)
    marker = json.loads((cut_off / report_folder.RUNNING).read_text())
    (cut_off / report_folder.RUNNING).write_text(json.dumps({**marker, "started": marker["started"] - 1}))
    assert not report_folder.is_running(cut_off)
    assert report_folder.clean(tmp_path, keep=5).abandoned == [cut_off] and not cut_off.exists()


def test_verdicts_are_read_checked_and_typed(tmp_path):
    """verdicts.json has one owner: its schema and version are stamped, a newer version is refused in one line, a
    missing key is named, an old (unstamped) report still loads, with 'unknown' where it could not tell."""
    from groot_lib.core.errors import ParityError

    empty = report_folder.Verdicts.empty().payload
    row = {"tag": "t", "check": "model parity", "tensor": "action_pred", "verdict": "PASS", "max|delta|": 0.0,
           "flag": "", "x expected gap": 0.0, "reason": ""}
    written = report_folder.write_verdicts(tmp_path, {k: v for k, v in empty.items() if k != "schema"}
                                           | {"rows": [row], "first_divergence": {"t": {"state": "none"}}})
    stamped = json.loads(written.read_text())
    assert stamped["schema"] == f"{report_folder.VERDICTS_SCHEMA}/{report_folder.VERDICTS_VERSION}"
    read = report_folder.read_verdicts(tmp_path)
    assert read.rows[0].status == "PASS" and read.rows[0].max_abs == 0.0 and read.version == 2
    written.write_text(json.dumps({**stamped, "schema": f"{report_folder.VERDICTS_SCHEMA}/99"}))
    with pytest.raises(ParityError, match=r"written by a newer gr00t-parity \(verdicts version 99\).*update"):
        report_folder.read_verdicts(tmp_path)
    written.write_text(json.dumps({k: v for k, v in stamped.items() if k != "where"}))
    with pytest.raises(ParityError, match=r"lacks where \(verdicts version 2\)"):
        report_folder.read_verdicts(tmp_path)
    old = {k: stamped[k] for k in ("passed", "rows", "precision", "settings", "source", "tags")}
    written.write_text(json.dumps({**old, "first_divergence": {"t": None}}))  # as reports before the stamp wrote it
    read = report_folder.read_verdicts(tmp_path)
    assert read.version == 1 and read.where == [] and read.first_divergence["t"]["state"] == "unknown"
    with pytest.raises(ParityError, match="rows\\[0\\] lacks tensor"):
        report_folder.Verdicts.from_payload({**stamped, "rows": [{"tag": "t", "check": "c", "verdict": "PASS"}]})
