"""The input sweep (SWEEP=N, core/sweep_cases.py), on real kernels: the cases are what they claim (batch 1 and 3,
left padding, real camera resolutions, states outside the range), a clean run passes every case with a
distribution per check, and a fault only some inputs trigger (batch size 1) fails the sweep while the fixed
observation still passes, naming the case and its inputs. The original live with gr00t, else the committed
recordings (references/tiny/sweep: 2 cases per tag).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import planted_notebooks
from groot_lib.core import checkpoint as ckpt
from groot_lib.core import sweep_cases as sweep
from groot_lib.core.artifact import artifact_path, load_artifact
from groot_lib.tiny import layout as tiny_layout
from groot_lib.workbench.workflow import run_report

CASES = 2  # what the committed recordings hold


def test_cases_cover_what_the_sweep_promises():
    layout = ckpt.embodiment_layout(tiny_layout.TINY_CHECKPOINT, "oxe_droid_relative_eef_relative_joint")
    stats = json.loads((tiny_layout.TINY_CHECKPOINT / "statistics.json").read_text())[layout.tag]
    cases = [sweep.case(layout, i) for i in range(4)]
    assert {c.batch_size for c in cases} >= {1, 3} and {c.resolution for c in cases} == {(180, 320), (61, 83)}
    assert {c.states for c in cases[:CASES]} == {"outside", "edges"} and cases[1].images == "mixed"
    prompts = " ".join(p for c in cases[:CASES] for p in c.prompts)
    assert any(ord(ch) > 127 for ch in prompts) and any(ch.isdigit() for ch in prompts) and "OPEN THE" in prompts
    first = sweep.observations(layout, cases[1], stats)
    assert all(np.array_equal(v, sweep.observations(layout, cases[1], stats)[k]) for k, v in first.items())
    assert first["video.exterior_image_1_left"].shape == (3, 2, 61, 83, 3)  # batch 3 x the config's 2 frames
    lo = np.asarray(stats["state"]["eef_9d"]["min"])
    outside = sweep.observations(layout, cases[0], stats)["state.eef_9d"][0, 0]
    assert (outside < lo).any() or (outside > np.asarray(stats["state"]["eef_9d"]["max"])).any()


def test_recorded_sweep_exercises_left_padding():
    """Prompts of different lengths in one batch: the original's collated attention mask has padding on the left."""
    art = load_artifact(artifact_path(tiny_layout.RECORDED_ROOT / "sweep" / sweep.case_name(1), "libero_sim"))
    mask = art.inputs["inputs.attention_mask"]
    assert mask.shape[0] == 3 and (mask[:, 0] == 0).any() and (mask[:, -1] == 1).all()
    assert art.extra["sweep_case"]["batch"] == 3


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    code, index = run_report(out_root=root / "reports", artifacts_root=root / "store", variants="fp32-sdpa",
                             sweep=CASES)
    return code, index, json.loads((index.parent / "verdicts.json").read_text())


def test_clean_sweep_passes_with_a_distribution_per_check(swept):
    code, index, verdicts = swept
    assert code == 0 and verdicts["passed"] and verdicts["sweep"]["cases"] == CASES * len(tiny_layout.EMBODIMENTS)
    rows = verdicts["sweep"]["summary"]
    checks = {(r["check"], r["tensor"]) for r in rows}
    assert {("model parity", "action_pred"), ("decoded actions", "action"), ("preprocessor parity", "input_ids"),
            ("preprocessor parity", "pixel_values"), ("preprocessor parity", "state")} <= checks
    for row in rows:
        assert row["cases"] == CASES and row["failed"] == 0 and row["max"] < 3e-6, row  # within CPU rounding
        assert row["worst inputs"]["case"] == row["worst case"] and "prompts" in row["worst inputs"]
    summary = (index.parent / "summary.txt").read_text()
    assert summary.count("input sweep") == len(tiny_layout.EMBODIMENTS) and f"{CASES} cases" in summary
    assert "Input sweep" in index.read_text()
    assert (index.parent / "lerobot" / "sweep" / sweep.case_name(0) / "libero_sim.npz").is_file()


# A fault only batch-size-1 inputs trigger: LeRobot's action_pred shifted when the batch holds one observation.
BATCH_ONE_FAULT = """
import contextlib, functools
from groot_lib.backends import lerobot as _lb
_load = _lb.load
@contextlib.contextmanager
@functools.wraps(_load)  # the backend contract (checked at load) sees load's own signature
def _load_with_batch_one_fault(*args, **kwargs):
    with _load(*args, **kwargs) as loaded:
        decoder = loaded.model.action_head.action_decoder
        decoder.register_forward_hook(lambda m, a, o: o + 0.01 if o.shape[0] == 1 else o)
        yield loaded
_lb.load = _load_with_batch_one_fault
"""


def test_a_fault_only_some_inputs_trigger_fails_the_sweep_and_names_the_case(tmp_path):
    notebooks = planted_notebooks(tmp_path, "consumer.ipynb", "consumer.run_all", BATCH_ONE_FAULT)
    code, index = run_report(out_root=tmp_path / "reports", artifacts_root=tmp_path / "store", notebooks=notebooks,
                             variants="fp32-sdpa", sweep=CASES)
    verdicts = json.loads((index.parent / "verdicts.json").read_text())
    assert all(r["verdict"] == "PASS" for r in verdicts["rows"])  # the fixed observation (batch 2) does not see it
    assert code == 1 and not verdicts["passed"]
    failing = verdicts["sweep"]["failing"]
    assert {f["case"] for f in failing} == {sweep.case_name(0)} and len(failing) == len(tiny_layout.EMBODIMENTS)
    assert all(f["inputs"]["batch"] == 1 for f in failing)
    model = [r for r in verdicts["sweep"]["summary"] if r["check"] == "model parity"]
    assert all(r["failed"] == 1 and r["worst case"] == sweep.case_name(0) for r in model), model
    summary = (index.parent / "summary.txt").read_text()
    assert "input sweep              FAIL" in summary and "in case-00" in summary


def test_a_sub_atol_gap_in_a_sweep_case_is_suspect_like_the_fixed_observation(tmp_path):
    """A batch-size-1 fault of 4e-4 on action_pred passes atol=1e-3 but sits ~100x above rounding: the sweep flags it
    SUSPECT (summary row, verdicts' suspect list, a where line, the terminal), as the fixed observation would."""
    notebooks = planted_notebooks(tmp_path, "consumer.ipynb", "consumer.run_all",
                                  BATCH_ONE_FAULT.replace("o + 0.01", "o + 4e-4"))
    code, index = run_report(out_root=tmp_path / "reports", artifacts_root=tmp_path / "store", notebooks=notebooks,
                             variants="fp32-sdpa", sweep=CASES, quiet=True)
    verdicts = json.loads((index.parent / "verdicts.json").read_text())
    assert code == 0 and verdicts["passed"]  # SUSPECT never changes the exit status
    model = [r for r in verdicts["sweep"]["summary"] if r["check"] == "model parity"]
    assert all(r["flag"] == "SUSPECT" and r["suspect"] == 1 and r["worst case"] == sweep.case_name(0) for r in model)
    assert all(1e-4 < r["max"] < 1e-3 and "x the expected gap" in r["why"] for r in model), model
    assert len([s for s in verdicts["suspect"] if "model parity" in s]) == len(tiny_layout.EMBODIMENTS)
    lines = [w for w in verdicts["where"] if w["check"] == "input sweep"]
    assert len(lines) == len(tiny_layout.EMBODIMENTS) and all(w["status"] == "SUSPECT" for w in lines)
    assert all(w["text"].startswith(f"{sweep.case_name(0)} (batch 1") and "what rounding explains" in w["text"]
               for w in lines), lines
    summary = (index.parent / "summary.txt").read_text()
    assert summary.count("input sweep              SUSPECT") == len(tiny_layout.EMBODIMENTS), summary


def test_a_failing_sweep_case_is_localised_to_its_stage(tmp_path, artifacts_copy):
    """A sweep case whose original recorded its named stages (here the fixed observation's recording, filed as a
    case) is localised like the fixed observation: the first diverging stage, and that it adds the error itself."""
    from groot_lib.core.atomic import atomic_save_npz

    TAG = "libero_sim"
    with np.load(artifact_path(artifacts_copy, TAG), allow_pickle=False) as npz:
        members = {k: npz[k] for k in npz.files}
    extra = json.loads(str(members["meta::extra"]))
    members["meta::extra"] = np.array(json.dumps({**extra, "sweep_case": {"case": sweep.case_name(0), "batch": 2}}))
    atomic_save_npz(sweep.case_path(artifacts_copy, sweep.case_name(0), TAG), members)
    notebooks = planted_notebooks(tmp_path, "consumer.ipynb", "consumer.run_all",
                                  BATCH_ONE_FAULT.replace("if o.shape[0] == 1 else o", ""))
    code, index = run_report(out_root=tmp_path / "reports", artifacts_root=tmp_path / "store", notebooks=notebooks,
                             artifacts=str(artifacts_copy), tags=TAG, variants="fp32-sdpa", quiet=True)
    verdicts = json.loads((index.parent / "verdicts.json").read_text())
    (line,) = [w for w in verdicts["where"] if w["check"] == "input sweep"]
    assert code == 1 and line["status"] == "FAIL", line
    assert "diverges first at action_decoder at flow step 0" in line["text"] and "adds it itself" in line["text"], line


def test_sweep_from_runs_a_later_slice_of_the_cases_so_a_matrix_can_shard_a_sweep(tmp_path):
    """SWEEP=1 SWEEP_FROM=1 runs case-01 alone (live, or served from the recordings), judged like any sweep case;
    recordings that stop short of the slice are refused with what they cover."""
    code, index = run_report(out_root=tmp_path / "reports", artifacts_root=tmp_path / "store", variants="fp32-sdpa",
                             tags="libero_sim", sweep=1, sweep_from=1, quiet=True)
    verdicts = json.loads((index.parent / "verdicts.json").read_text())
    assert code == 0 and verdicts["sweep"]["cases"] == 1, verdicts["sweep"]
    assert [p.name for p in sorted((index.parent / "artifacts" / "sweep").iterdir())] == [sweep.case_name(1)]
    gap = tiny_layout.recordings_gap(0, 2, ["fp32-sdpa"], sweep=CASES + 1)
    assert f"input-sweep cases < {CASES}" in gap and f"SWEEP_FROM + SWEEP <= {CASES}" in gap, gap
