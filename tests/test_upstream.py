"""LeRobot's own parity files (``core/upstream.py``), on real files: references/upstream-dumps is the output of
running LeRobot's ``tests/policies/groot/utils/dump_original_n1_7.py`` for real on the tiny default
(``make record-upstream-dumps``). Refused without trust, one command turns them into a normal report, and
``make export-upstream`` writes the workbench's artifacts in the same format.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import env_python
from groot_lib.core import checkpoint as ckpt
from groot_lib.core import upstream
from groot_lib.core.artifact import artifact_path, find_artifacts, load_artifact, save_artifact
from groot_lib.core.errors import ArtifactError, CheckpointMismatchError, SchemaError, SettingError
from groot_lib.tiny import layout as tiny_layout
from groot_lib.workbench.export import export_upstream
from groot_lib.workbench.workflow import UPSTREAM_DUMPS, run_report

DUMP = UPSTREAM_DUMPS / upstream.upstream_name("libero_sim")


def test_real_dumps_are_refused_without_trust_naming_the_flag_and_members():
    assert upstream.is_upstream(DUMP) and set(upstream.object_members(DUMP)) == {"meta_keys", "meta_dtypes"}
    assert upstream.tag_of(DUMP) == "libero_sim"  # read without unpickling
    with pytest.raises(ArtifactError) as err:
        load_artifact(DUMP)
    message = str(err.value)
    assert str(DUMP) in message and "TRUST_LEGACY=1" in message and "arbitrary code" in message
    assert "meta_keys" in message and "meta_dtypes" in message


def test_trusted_dump_reads_tag_seed_device_and_typed_inputs():
    """The tag, seed and device come from the file's own members (not its name), integers stay integers."""
    art = load_artifact(DUMP, trust_legacy=True)
    assert (art.embodiment_tag, art.seed, art.producer["device"]) == ("libero_sim", 42, "cpu")
    assert art.action_pred.shape == (2, 40, 132) and art.raw == {} and art.initial_noise is None
    assert art.inputs["inputs.input_ids"].dtype == np.int64 and art.inputs["inputs.state"].dtype == np.float32
    assert art.producer["input_dtypes"]["in::inputs.pixel_values"] == "torch.float32"
    assert "taken on trust" in art.extra["warning"]
    found = find_artifacts(UPSTREAM_DUMPS)
    assert sorted(found) == sorted(tiny_layout.EMBODIMENTS)  # original_n1_7_<tag>.npz -> <tag>


def test_dump_missing_a_member_or_misnamed_is_named(tmp_path):
    with np.load(DUMP, allow_pickle=True) as npz:
        arrays = dict(npz)
    arrays.pop("seed")
    np.savez(tmp_path / DUMP.name, **arrays)
    with pytest.raises(SchemaError, match=r"lacks \['seed'\]"):
        load_artifact(tmp_path / DUMP.name, trust_legacy=True)
    shutil.copyfile(DUMP, tmp_path / upstream.upstream_name("simpler_env_widowx"))
    art = load_artifact(tmp_path / upstream.upstream_name("simpler_env_widowx"), trust_legacy=True)
    layout = ckpt.embodiment_layout(tiny_layout.TINY_CHECKPOINT, "simpler_env_widowx")
    with pytest.raises(SchemaError, match="the file name says 'simpler_env_widowx', its embodiment_tag says 'libero_sim'"):
        upstream.check_against(art, layout)


def test_dump_from_another_checkpoint_is_refused_by_its_embodiment_id():
    art = load_artifact(DUMP, trust_legacy=True)
    art.inputs["inputs.embodiment_id"] = np.full_like(art.inputs["inputs.embodiment_id"], 7)
    with pytest.raises(CheckpointMismatchError, match=r"embodiment id\(s\) \[7\].*maps it to 2"):
        upstream.check_against(art, ckpt.embodiment_layout(tiny_layout.TINY_CHECKPOINT, "libero_sim"))


def test_one_command_turns_real_dumps_into_a_normal_report(tmp_path):
    """make report ARTIFACTS=dir TRUST_LEGACY=1: only LeRobot runs; model parity per tag within rounding (the
    dumps' own seed), what a dump cannot show is said, and the 1-frame-for-2 dump is named."""
    with pytest.raises(SettingError, match="TRUST_LEGACY=1"):
        run_report(out_root=tmp_path / "refused", artifacts_root=tmp_path / "store", artifacts=str(UPSTREAM_DUMPS))
    code, index = run_report(out_root=tmp_path / "reports", artifacts_root=tmp_path / "store",
                             artifacts=str(UPSTREAM_DUMPS), trust_legacy="1")
    verdicts = json.loads((index.parent / "verdicts.json").read_text())
    assert code == 0 and verdicts["passed"], verdicts["rows"]
    assert verdicts["source"]["mode"] == "imported" and "dump_original_n1_7.py" in verdicts["source"]["banner"]
    assert not (index.parent / "producer.ipynb").exists() and (index.parent / "consumer.html").is_file()
    rows = [r for r in verdicts["rows"] if r["check"] == "model parity"]
    assert len(rows) == 4 and all(r["max|delta|"] < 3e-6 for r in rows), rows  # measured 1.1e-6..1.4e-6
    assert {r["check"] for r in verdicts["rows"]} == {"model parity"}  # no raw observations: nothing else
    notes = "\n".join(verdicts["row_notes"])
    assert "feeds 2 image(s) per sample where the checkpoint's modality config asks for 4" in notes
    assert notes.count("preprocessor parity not compared") == 4 and notes.count("read on trust") == 4
    assert "LeRobot's dump records neither" in verdicts["tags"]["libero_sim"]["decoded actions"]


def test_export_writes_upstreams_format_exactly(tmp_path):
    """Exporting a dump read back writes the same members, dtypes and values as LeRobot's script did."""
    for path in sorted(UPSTREAM_DUMPS.glob("*.npz")):
        written = upstream.export(load_artifact(path, trust_legacy=True), tmp_path)
        assert written.name == path.name
        with np.load(path, allow_pickle=True) as theirs, np.load(written, allow_pickle=True) as ours:
            assert sorted(theirs.files) == sorted(ours.files)
            assert dict(zip(theirs["meta_keys"], theirs["meta_dtypes"])) == \
                   dict(zip(ours["meta_keys"], ours["meta_dtypes"]))  # in the inputs' order, which may differ
            for key in set(theirs.files) - {"meta_keys", "meta_dtypes"}:
                assert theirs[key].dtype == ours[key].dtype and np.array_equal(theirs[key], ours[key]), key


def test_export_upstream_refuses_a_seed_upstreams_test_would_not_replay(tmp_path):
    """Upstream's test reseeds with 42: the committed recordings (seed 0) are refused, naming the fix; a seed-42
    artifact exports."""
    report = tmp_path / "20990101T000000Z"
    shutil.copytree(tiny_layout.RECORDED_ROOT, report / "artifacts", ignore=shutil.ignore_patterns("*__*"))
    with pytest.raises(Exception, match="make report SEED=42"):
        export_upstream(report, tmp_path / "out")
    art = load_artifact(artifact_path(tiny_layout.RECORDED_ROOT, "simpler_env_widowx"))
    shutil.rmtree(report / "artifacts")
    save_artifact(artifact_path(report / "artifacts", "simpler_env_widowx"), embodiment_tag=art.embodiment_tag,
                  seed=42, producer=art.producer, checkpoint=art.checkpoint, raw=art.raw, inputs=art.inputs,
                  outputs=art.outputs)
    [written] = export_upstream(report, tmp_path / "out")
    back = load_artifact(written, trust_legacy=True)
    assert back.seed == 42 and np.array_equal(back.action_pred, art.action_pred)
    assert all(np.array_equal(back.inputs[k], art.inputs[k]) for k in art.inputs)


UPSTREAM_TEST = "tests/policies/groot/test_groot_vs_original.py"


def test_upstreams_own_test_passes_on_exported_artifacts(tmp_path):
    """Upstream's test_groot_vs_original.py, unchanged, in the LeRobot kernel on `make export-upstream` output
    of a live seed-42 report. It is not on PyPI and never copied here: LEROBOT_SRC names a checkout; the live
    producer needs gr00t (the recordings are seed 0)."""
    source = Path(os.environ.get("LEROBOT_SRC", "")).expanduser()
    if not os.environ.get("LEROBOT_SRC") or not (source / UPSTREAM_TEST).is_file():
        pytest.skip(f"needs upstream's {UPSTREAM_TEST}: set LEROBOT_SRC to a huggingface/lerobot checkout "
                    "(it is not in the PyPI wheel)")
    from groot_lib.workbench.preflight import gr00t_in_original_env

    if gr00t_in_original_env() != "importable":
        pytest.skip("needs the original producer live at seed 42 (make setup GR00T_SRC=...): the committed "
                    "recordings cover seed 0, which upstream's test (SEED = 42) would not replay")
    code, index = run_report(out_root=tmp_path / "reports", artifacts_root=tmp_path / "store", seed=42,
                             variants="fp32-sdpa", device="cpu")
    assert code == 0
    written = export_upstream(index.parent, tmp_path / "upstream")
    assert len(written) == len(tiny_layout.EMBODIMENTS)
    env = {**os.environ, "GROOT_N1_7_PARITY_DIR": str(tmp_path / "upstream"), "GROOT_PARITY_DEVICE": "cpu",
           "GROOT_N1_7_LIBERO_CKPT": str(tiny_layout.TINY_CHECKPOINT), "HF_HOME": str(tiny_layout.TINY_HF_HOME),
           "HF_HUB_OFFLINE": "1", "CI": "", "GITHUB_ACTIONS": ""}
    proc = subprocess.run([str(env_python("groot-lerobot")), "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "--noconftest", "-c", os.devnull, "-s", str(source / UPSTREAM_TEST)],
                          cwd=source, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0 and f"{len(written)} passed" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-2000:]
