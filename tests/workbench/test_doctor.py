"""Real probes of both kernels' interpreters; missing kernels become rows, not crashes."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from groot_lib.tiny import layout as tiny_layout
from groot_lib.workbench import doctor
from tests.conftest import REPO, run_in_env

pytestmark = pytest.mark.integration


def test_probe_both_kernels():
    rows = {r["kernel"]: r for r in doctor.rows()}
    orig, lero = rows["groot-original"], rows["groot-lerobot"]
    assert "error" not in orig and "error" not in lero, rows
    assert orig["python"].startswith("3.10.") and lero["python"].startswith("3.12.")
    assert orig["torch"]["version"].startswith("2.7.1") and lero["torch"]["version"].startswith("2.11.0")
    assert orig["transformers"]["version"] == "4.57.3" and lero["transformers"]["version"].startswith("5.")
    assert lero["lerobot"]["ok"] and "gr00t" in orig and "flash_attn" in orig
    assert orig["executable"].endswith(".envs/original/bin/python")
    table = doctor.format_table(list(rows.values()))
    assert "groot-original" in table and "3.10." in table and "lerobot 0.6.1" in table


def test_missing_kernel_is_a_row(tmp_path, monkeypatch):
    monkeypatch.setattr(doctor, "REPO", tmp_path)
    row = doctor.probe("groot-original")
    assert "kernel.json missing" in row["error"]
    assert "make kernels" in doctor.format_table([row])


def test_doctor_shows_what_a_report_uses(tmp_path):
    """gr00t has no __version__ (doctor showed "gr00t ?"), and the shell's HF_HOME was shown although reports on the
    tiny default use its isolated cache; HF_HOME given to make is what reports get, so doctor shows that."""
    shell = {**os.environ, "HF_HOME": str(tmp_path / "shell-hf")}
    out = subprocess.run([sys.executable, "-m", "groot_lib.workbench.doctor"], cwd=REPO, env=shell,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert f"HF_HOME  {tiny_layout.TINY_HF_HOME}: the tiny default's isolated cache" in out.stdout
    assert "shell-hf" not in out.stdout
    gr00t = run_in_env("groot-original", """
        import importlib.metadata as m, json
        from groot_lib.core import code_identity as c
        root = c.package_root("gr00t")
        print(json.dumps([m.version("gr00t"), str(root.parent), c.git_state(root)["commit"]] if root else None))
    """)
    if gr00t:  # gr00t live: its version (from the package metadata) and its checkout with its commit
        version, source, commit = gr00t
        assert f"gr00t {version} " in out.stdout and f"gr00t    {source}, commit {commit[:12]}" in out.stdout
    else:  # no checkout given (CI): doctor says so, with how to give one, instead of a version it cannot know
        assert "gr00t    not installed" in out.stdout and "GR00T_SRC=" in out.stdout, out.stdout

    given = subprocess.run(["make", "-s", "doctor", f"HF_HOME={tmp_path / 'given'}"], cwd=REPO, env=shell,
                           capture_output=True, text=True, timeout=600)
    assert given.returncode == 0, given.stderr
    assert f"HF_HOME  {tmp_path / 'given'}: given with --hf-home / HF_HOME=" in given.stdout
