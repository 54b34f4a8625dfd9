"""Decoded actions (what the robot gets), end to end: the original policy's ``decode_action`` against LeRobot's
postprocessor on the original's ``action_pred``, on the tiny default and on the variants checkpoint (the same
weights, with the embodiment configs fine-tunes produce: ``action_configs`` null, mean/std-normalised groups).
Real kernels, real papermill runs; the original live when gr00t is installed, else its committed recordings.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from groot_lib.compare.parity import decoded_parity
from groot_lib.core import checkpoint as ckpt
from groot_lib.core.artifact import artifact_path, load_artifact
from groot_lib.pipeline.replay import Replay
from groot_lib.tiny import layout as tiny_layout
from groot_lib.workbench.workflow import run_report


@pytest.fixture(scope="module")
def variants_report(tmp_path_factory):
    root = tmp_path_factory.mktemp("variants")
    code, index = run_report(out_root=root / "reports", artifacts_root=root / "store",
                             checkpoint=str(tiny_layout.VARIANTS_CHECKPOINT), variants="fp32-sdpa")
    return code, index, json.loads((index.parent / "verdicts.json").read_text())


def _row(verdicts, tag, check, tensor):
    return next(r for r in verdicts["rows"] if (r["tag"], r["check"], r["tensor"]) == (tag, check, tensor))


def test_variants_checkpoint_shares_the_default_model():
    """Only the embodiment configs differ: the model files are the default's (links, so they cannot drift)."""
    for name in ("config.json", "model-00001-of-00001.safetensors", "model.safetensors.index.json"):
        path = tiny_layout.VARIANTS_CHECKPOINT / name
        assert path.is_symlink() and path.resolve() == (tiny_layout.TINY_CHECKPOINT / name).resolve()
    config = json.loads((tiny_layout.VARIANTS_CHECKPOINT / "processor_config.json").read_text())
    modality = config["processor_kwargs"]["modality_configs"]
    assert modality["new_embodiment"]["action"]["action_configs"] is None
    assert modality["robocasa_panda_omron"]["action"]["mean_std_embedding_keys"] == ["eef_pos"]
    assert modality["robocasa_panda_omron"]["state"]["mean_std_embedding_keys"] == ["eef_pos"]


def test_action_configs_null_leaves_lerobots_actions_normalised(variants_report):
    """Finding: with ``action_configs`` null, LeRobot's postprocessor returns action_pred as it came (normalised,
    padded to 40 x 132) while the original unnormalises it. The model itself is identical."""
    code, _, verdicts = variants_report
    assert code == 1 and not verdicts["passed"]
    assert _row(verdicts, "new_embodiment", "model parity", "action_pred")["verdict"] == "PASS"
    decoded = _row(verdicts, "new_embodiment", "decoded actions", "action")
    assert decoded["verdict"] == "FAIL" and decoded["shape"] == "(2, 40, 132) vs (2, 16, 7)", decoded
    assert "returned action_pred unchanged" in decoded["reason"] and "still normalised" in decoded["reason"]
    assert decoded["max|delta|"] is None  # shapes differ: no statistics, never a cropped comparison


def test_mean_std_groups_are_named_where_they_differ(variants_report):
    """Finding: LeRobot normalises and decodes every group by min/max (q01/q99); the original uses mean/std for
    ``mean_std_embedding_keys``. The state input and the decoded actions differ exactly in that group."""
    _, _, verdicts = variants_report
    tag = "robocasa_panda_omron"
    assert _row(verdicts, tag, "model parity", "action_pred")["verdict"] == "PASS"
    state = _row(verdicts, tag, "preprocessor parity", "state")
    assert state["verdict"] == "FAIL" and state["max|delta|"] > 0.1
    assert {row["element"].split(", ")[1].split("[")[0] for row in verdicts["tags"][tag]["input details"]["state"]} \
        == {"eef_pos"}
    decoded = _row(verdicts, tag, "decoded actions", "action")
    assert decoded["verdict"] == "FAIL" and decoded["max|delta|"] > 0.1, decoded
    note = next(n for n in verdicts["row_notes"] if n.startswith(f"{tag} / decoded actions"))
    assert "outside tolerance in eef_pos" in note and "within it: gripper, base" in note, note
    assert verdicts["decoded_figures"][tag] == f"figures/{tag}-decoded.png"


def test_decoded_check_needs_both_sides(tmp_path):
    """An artifact without decoded actions (an upstream dump, an old recording) is not compared, and says why;
    a LeRobot postprocessor that raised fails the check with its message: never a silent PASS."""
    art = load_artifact(artifact_path(tiny_layout.RECORDED_ROOT, "simpler_env_widowx"))
    layout = ckpt.embodiment_layout(tiny_layout.TINY_CHECKPOINT, "simpler_env_widowx")

    def replay(**arrays):
        return Replay("simpler_env_widowx", "fp32-sdpa", "computed", {"action_pred": art.action_pred, **arrays})

    ok, _ = decoded_parity(replay(decoded_action=art.decoded_action.copy()), art, atol=1e-3, rtol=1e-3, layout=layout)
    assert ok.passed and ok.max_abs == 0
    moved, _ = decoded_parity(replay(decoded_action=art.decoded_action + np.float32(0.01)), art, atol=1e-3, rtol=1e-3,
                              layout=layout)
    assert not moved.passed and moved.worst and "eef[" in moved.name_index(moved.worst[0][0])
    assert "outside tolerance in eef" in moved.notes[-1]
    raised, _ = decoded_parity(replay(decode_error=np.array("KeyError: 'q01'")), art, atol=1e-3, rtol=1e-3,
                               layout=layout)
    assert not raised.passed and "KeyError: 'q01'" in raised.reason
    art.outputs.pop("decoded_action")
    none, why = decoded_parity(replay(), art, atol=1e-3, rtol=1e-3, layout=layout)
    assert none is None and "records no decoded actions" in why
