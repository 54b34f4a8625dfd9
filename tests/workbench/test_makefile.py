"""The Makefile as a new user meets it: `make` alone explains, the knobs' help comes from settings, and the
reports folder and artifact store can be moved from make (real make invocations)."""
from __future__ import annotations

import subprocess

import pytest

from groot_lib.core import settings
from groot_lib.workbench import makehelp
from tests.conftest import REPO


def make(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "--no-print-directory", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300)


def test_make_alone_is_help_and_builds_nothing():
    """`make` used to run setup (the first target): minutes and ~5 GB for someone who only wanted to look."""
    dry = make("-n")
    assert dry.returncode == 0 and "groot_lib.workbench.makehelp" in dry.stdout, dry.stdout + dry.stderr
    assert "envs build" not in dry.stdout and "venv" not in dry.stdout
    shown = make()
    assert shown.returncode == 0, shown.stderr
    for knob in settings.KNOBS:
        if knob.make:
            assert f"\n  {knob.make}=" in shown.stdout and knob.flag in shown.stdout, knob.name
    listed = makehelp.targets()
    assert {"help", "setup", "kernels", "doctor", "report", "test"} <= {name for name, _ in listed}
    assert all(f"\n  {name} " in shown.stdout for name, _ in listed)


def test_jupyter_checkpoints_are_ignored_anywhere():
    for path in ("notebooks/.ipynb_checkpoints/explore-checkpoint.ipynb", ".ipynb_checkpoints/x.ipynb"):
        assert subprocess.run(["git", "check-ignore", "-q", path], cwd=REPO).returncode == 0, path


@pytest.mark.parametrize("variable, what", [("REPORTS_DIR", "reports folder"), ("STORE_DIR", "artifact store")])
def test_unwritable_folders_name_the_make_variable(tmp_path, variable, what):
    """The error suggested --out-root, which `make report` could not pass: it now takes REPORTS_DIR= / STORE_DIR=."""
    folders = {"REPORTS_DIR": tmp_path / "reports", "STORE_DIR": tmp_path / "store", variable: "/proc/gr00t-parity"}
    proc = make("report", *(f"{k}={v}" for k, v in folders.items()))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"{what} /proc/gr00t-parity is not writable" in proc.stderr and f"/ {variable}=" in proc.stderr
    assert "Traceback" not in proc.stderr
