"""End to end: real papermill runs of the real notebooks in the real kernels on the tiny default."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest

from groot_lib import producer, tiny_layout
from groot_lib.artifact import artifact_path, load_artifact, save_artifact
from groot_lib.errors import MissingPackageError
from groot_lib.notebook_runner import NotebookExecutionError, run_notebook
from groot_lib.workflow import NOTEBOOKS, REPO, run_report

TAG = "simpler_env_widowx"


def consume(artifacts_dir, output_dir, **params):
    run_notebook(NOTEBOOKS / "consumer.ipynb", output_dir / "consumer.ipynb", kernel_name="groot-lerobot", cwd=REPO,
                 parameters={"artifacts_dir": str(artifacts_dir), "output_dir": str(output_dir), **params})
    return json.loads((output_dir / "verdicts.json").read_text())


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    code, index = run_report(out_root=root / "reports", artifacts_root=root / "artifacts")
    return code, index, json.loads((index.parent / "verdicts.json").read_text())


def test_report_states_origin_first_and_passes_on_tiny_default(report):
    code, index, verdicts = report
    text = re.sub(r"<[^>]+>", "\n", index.read_text())
    first_line = next(line for line in text.splitlines() if line.strip() and "{" not in line and "gr00t-parity report" not in line)
    assert first_line.startswith("original outputs: "), first_line
    assert ("not run live" in first_line) == (verdicts["source"]["mode"] == "recorded")
    for page in ("producer.html", "consumer.html"):
        assert (index.parent / page).stat().st_size > 10_000
    rows = verdicts["rows"]
    assert {r["tag"] for r in rows} == set(tiny_layout.EMBODIMENTS)
    assert {(r["check"], r["tensor"]) for r in rows} >= {("model parity", "action_pred"), ("preprocessor parity", "input_ids"),
                                                         ("preprocessor parity", "pixel_values"), ("preprocessor parity", "state")}
    failing = [r for r in rows if r["verdict"] != "PASS"]
    assert not failing, json.dumps(failing, indent=1)
    assert code == 0 and verdicts["passed"] is True


def test_perturbed_action_pred_fails_on_exactly_that_cell(artifacts_copy, tmp_path):
    path = artifact_path(artifacts_copy, TAG)
    art = load_artifact(path)
    art.outputs["action_pred"][1, 3, 5] += np.float32(1e-2)
    save_artifact(path, embodiment_tag=art.embodiment_tag, seed=art.seed, producer=art.producer,
                  checkpoint=art.checkpoint, raw=art.raw, inputs=art.inputs, outputs=art.outputs,
                  variant=art.variant, extra=art.extra)
    verdicts = consume(artifacts_copy, tmp_path / "out", tags=TAG)
    model = next(r for r in verdicts["rows"] if r["check"] == "model parity")
    assert model["verdict"] == "FAIL" and model["mismatched"] == 1
    assert verdicts["tags"][TAG]["violating_cells"] == [[3, 5]]
    # smallest atol that passes at rtol=1e-3: |delta| - rtol * |reference|
    reference = float(art.outputs["action_pred"][1, 3, 5])
    assert model["min atol to pass"] == pytest.approx(1e-2 - 1e-3 * abs(reference), rel=1e-3)
    assert all(r["verdict"] == "PASS" for r in verdicts["rows"] if r["check"] == "preprocessor parity")


@pytest.mark.parametrize("damage, expected", [
    ("truncate", r"truncated|corrupt"),
    ("schema", r"schema 'groot-parity-artifact/0'.*expected 'groot-parity-artifact/1'"),
])
def test_bad_artifacts_give_clear_errors(artifacts_copy, tmp_path, damage, expected):
    path = artifact_path(artifacts_copy, TAG)
    if damage == "truncate":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    else:
        with np.load(path, allow_pickle=False) as npz:
            arrays = dict(npz)
        arrays["meta::schema"] = np.array("groot-parity-artifact/0")
        np.savez(path, **arrays)
    with pytest.raises(NotebookExecutionError) as err:
        consume(artifacts_copy, tmp_path / "out", tags=TAG)
    message = str(err.value)
    assert re.search(expected, message), message
    assert str(path) in message and "Traceback" not in message
    assert (tmp_path / "out" / "consumer.ipynb").exists()  # the executed notebook is kept for inspection


def test_shape_mismatch_fails_and_is_never_cropped(artifacts_copy, tmp_path):
    path = artifact_path(artifacts_copy, TAG)
    art = load_artifact(path)
    art.outputs["action_pred"] = np.ascontiguousarray(art.outputs["action_pred"][:, :16, :7])
    art.outputs.pop("initial_noise", None)
    save_artifact(path, embodiment_tag=art.embodiment_tag, seed=art.seed, producer=art.producer,
                  checkpoint=art.checkpoint, raw=art.raw, inputs=art.inputs, outputs=art.outputs,
                  variant=art.variant, extra=art.extra)
    verdicts = consume(artifacts_copy, tmp_path / "out", tags=TAG)
    model = next(r for r in verdicts["rows"] if r["check"] == "model parity")
    assert model["verdict"] == "FAIL" and model["shape"] == "(2, 40, 132) vs (2, 16, 7)"


def test_recordings_refuse_settings_they_do_not_cover(tmp_path):
    with pytest.raises(MissingPackageError, match="seed=7"):
        producer.use_recordings(tiny_layout.TINY_CHECKPOINT, tmp_path, ["libero_sim"], ["fp32-sdpa"],
                                reason="test", seed=7, batch_size=2)
    result = producer.use_recordings(tiny_layout.TINY_CHECKPOINT, tmp_path, ["libero_sim"], ["fp32-sdpa"],
                                     reason="test", seed=0, batch_size=2)
    assert result.mode == "recorded" and "not run live" in result.banner
    assert producer.read_source(tmp_path)["mode"] == "recorded"
    assert load_artifact(result.artifacts["libero_sim"]["fp32-sdpa"]).embodiment_tag == "libero_sim"
