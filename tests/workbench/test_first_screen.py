"""The answer on the first screen: index.html at 1400 x 900 shows the verdict, the matrix and one "where" line per
failing cell above the fold, on a passing and on a failing report, with nothing wider than the window; the
terminal says the same in under 40 lines. The failing report is a real one: LeRobot's action_pred cropped."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from chromium import layout
from groot_lib.tiny import layout as tiny_layout
from groot_lib.workbench.workflow import run_report
from test_trust import ACTION_PRED, GROOT_N1_7, lerobot_overlay

FIRST_SCREEN = 900


@pytest.fixture(scope="module")
def passing(tmp_path_factory):
    root = tmp_path_factory.mktemp("passing")
    code, index = run_report(out_root=root / "reports", artifacts_root=root / "store", quiet=True)
    return code, index


@pytest.fixture(scope="module")
def cropped(tmp_path_factory, recorded_dir):
    """LeRobot's action_pred cropped to (B, 4, 4), judged on the recorded original's fp32 and bf16 outputs of all
    four tags: a shape mismatch in model parity and in the precision study."""
    root = tmp_path_factory.mktemp("cropped")
    artifacts = root / "artifacts"
    artifacts.mkdir()
    for npz in recorded_dir.glob("*.npz"):
        shutil.copyfile(npz, artifacts / npz.name)
    overlay = lerobot_overlay(root, GROOT_N1_7, ACTION_PRED, ACTION_PRED.replace("actions,", "actions[:, :4, :4],"))
    patch = pytest.MonkeyPatch()
    patch.setenv("PYTHONPATH", str(overlay))
    try:
        code, index = run_report(out_root=root / "reports", artifacts_root=root / "store", artifacts=str(artifacts),
                                 quiet=True)
    finally:
        patch.undo()
    return code, index


def test_a_cropped_output_fails_with_a_full_report(cropped):
    """A shape mismatch is a FAIL (exit 1) with every part of the report written, never an ERROR."""
    code, index = cropped
    verdicts = json.loads((index.parent / "verdicts.json").read_text())
    summary = (index.parent / "summary.txt").read_text()
    assert code == 1 and summary.startswith("gr00t-parity: FAIL (exit 1"), summary
    assert not (index.parent / "internal-error.txt").exists()
    page = index.read_text()
    assert "class='matrix'" in page and page.count("<section id='tag-") == len(tiny_layout.EMBODIMENTS)
    for tag in tiny_layout.EMBODIMENTS:
        model = next(r for r in verdicts["rows"] if r["tag"] == tag and r["check"] == "model parity")
        assert model["verdict"] == "FAIL" and model["max|delta|"] is None, model
        where = next(w for w in verdicts["where"] if w["tag"] == tag and w["check"] == "model parity")
        assert "shapes differ, LeRobot (2, 4, 4) vs original (2, 40, 132)" in where["text"], where
        # the crop happens after the last named stage: the stages say so instead of naming one
        assert "no named stage diverges" in where["text"] and "fault lies after the last one" in where["text"], where
        assert f"{tag} / model parity FAIL: action_pred: shapes differ" in summary
    assert all(p["verdict"] == "FAIL" and p["cross gap"] is None for p in verdicts["precision"])
    assert re.search(r"precision bf16-sdpa +FAIL +n/a: LeRobot noise floor: action_pred \(2, 4, 4\) is smaller",
                     summary), summary


def test_the_matrix_and_where_lines_are_on_the_first_screen(passing, cropped):
    for name, (code, index) in (("passing", passing), ("failing", cropped)):
        found = layout(index, ["h1", "table.matrix", "ul.where li"], width=1400, height=FIRST_SCREEN)
        (h1,), (matrix,) = found["boxes"]["h1"], found["boxes"]["table.matrix"]
        assert h1["bottom"] < matrix["top"] and matrix["bottom"] <= FIRST_SCREEN, (name, found)
        where = found["boxes"]["ul.where li"]
        assert bool(where) == (code != 0), (name, where)
        assert all(line["bottom"] <= FIRST_SCREEN for line in where[:len(tiny_layout.EMBODIMENTS)]), (name, where)
        assert found["scrollWidth"] <= found["width"] and not found["overflowing"], (name, found["overflowing"])


def test_the_terminal_summary_answers_in_under_40_lines(passing, cropped):
    for code, index in (passing, cropped):
        summary = (index.parent / "summary.txt").read_text().splitlines()
        assert len(summary) < 40, "\n".join(summary)
    failing = (cropped[1].parent / "summary.txt").read_text()
    where = failing.split("\nwhere:\n", 1)[1].split("\nreport:", 1)[0].splitlines()
    assert sum(line.startswith("  ") for line in where) >= len(tiny_layout.EMBODIMENTS)  # one line per failing tag
    assert "(+1 more in index.html)" in failing  # model parity shown, the precision study's line on the page


def test_precision_heatmaps_are_on_the_index_page(passing):
    _, index = passing
    verdicts = json.loads((index.parent / "verdicts.json").read_text())
    for tag in tiny_layout.EMBODIMENTS:
        (figure,) = verdicts["precision_figures"][tag]
        assert (index.parent / figure).is_file()
    assert index.read_text().count("alt='libero_sim precision study'") == 1


@pytest.mark.parametrize("which", ["cpu", "cuda"])
def test_recorded_provenance_names_the_original_machine(tmp_path, which):
    """Recordings store the machine they ran on (provenance.json's producer): the Provenance block shows it, not
    "machine not recorded"; a CUDA recording's banner speaks of CPU vs GPU, not of CPU instruction sets."""
    from groot_lib.pipeline.sources import use_recordings
    from groot_lib.workbench.report import _provenance

    from groot_lib.core import settings

    result = use_recordings(tiny_layout.TINY_CHECKPOINT, tmp_path / "artifacts", ["libero_sim"], ["fp32-sdpa"],
                            settings.for_notebook("producer", {"recordings": which}), reason="test")
    source = json.loads((tmp_path / "artifacts" / "source.json").read_text())
    block = _provenance(tmp_path, source, None)
    recorded = source["recording"]["producer"]["machine"]
    from groot_lib.core.machine import describe

    assert f"<th>original machine</th><td>{describe(recorded)}</td>" in block, block
    assert (recorded.get("gpu") or recorded["cpu_model"]) in describe(recorded)
    assert ("AVX512" in result.banner) == (which == "cpu"), result.banner
    assert ("GPU" in result.banner) == (which == "cuda"), result.banner
