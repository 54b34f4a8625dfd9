"""Real probes of both kernels' interpreters; missing kernels become rows, not crashes."""
from __future__ import annotations

import pytest

from groot_lib.workbench import doctor

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
