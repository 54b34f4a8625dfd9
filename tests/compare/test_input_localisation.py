"""Preprocessing faults localised on real components: LeRobot's real preprocessor on the tiny default's recorded
raw observations, with faults the tests plant at run time around LeRobot's processor pipeline (never in the
library). Each must be named at its state element, token position or camera view; model parity on the
replayed inputs is untouched, and the end-to-end effect on the actions is measured.
"""

from __future__ import annotations

import json
import re
import subprocess
import textwrap

import numpy as np

from conftest import REPO, env_python, planted_notebooks
from groot_lib.compare import inputs
from groot_lib.core import checkpoint as ckpt
from groot_lib.tiny import layout as tiny_layout

TAG = "libero_sim"

# wraps LeRobot's make_groot_pre_post_processors: `before(batch)` edits the raw batch, `after(out)` the output
PLANT = """
import torch
import lerobot.policies.groot.processor_groot as _pg

_make = _pg.make_groot_pre_post_processors

def plant(before=None, after=None):
    def make(*args, **kwargs):
        pre, post = _make(*args, **kwargs)
        def run(batch):
            out = pre(before(batch) if before else batch)
            return after(out) if after else out
        return run, post
    _pg.make_groot_pre_post_processors = make

def shift_wrist(batch):
    batch = dict(batch)
    batch["observation.images.wrist_image"] = torch.roll(batch["observation.images.wrist_image"], 3, dims=-1)
    return batch

def bump_roll(out):
    out = dict(out)
    out["state"] = out["state"].clone()
    out["state"][..., 3] += 0.05
    return out

def swap_token(out):
    out = dict(out)
    out["input_ids"] = out["input_ids"].clone()
    out["input_ids"][1, 10] = out["input_ids"][1, 10] + 1
    return out
"""

SNIPPET = """
import json, sys
from groot_lib.backends import process
from groot_lib.tiny import layout as L
process.configure_process(L.TINY_HF_HOME)
""" + PLANT + """
from groot_lib.backends import lerobot as lb
from groot_lib.compare.parity import preprocessor_parity
from groot_lib.core import checkpoint as ck
from groot_lib.core.artifact import artifact_path, load_artifact
from groot_lib.core.variants import get_variant
from groot_lib.pipeline.consume import TokenDecoder
from groot_lib.pipeline.replay import PRE, Replay

art = load_artifact(artifact_path(L.RECORDED_ROOT, "libero_sim"))
layout = ck.embodiment_layout(L.TINY_CHECKPOINT, "libero_sim")
stats = json.loads((L.TINY_CHECKPOINT / "statistics.json").read_text())["libero_sim"]
found = {}
with lb.load(L.TINY_CHECKPOINT, layout, variant=get_variant("fp32-sdpa"), device="cpu") as loaded:
    for name, kw in {"clean": {}, "wrist shifted 3 px": {"before": shift_wrist}, "roll bumped": {"after": bump_roll},
                     "token swapped": {"after": swap_token}}.items():
        _pg.make_groot_pre_post_processors = _make
        plant(**kw)
        loaded.extra.pop("pipelines", None)  # the backend keeps LeRobot's pipelines with the model: build anew
        pre = lb.preprocess(loaded, layout, art.raw)
        replay = Replay("libero_sim", "fp32-sdpa", "computed", {"action_pred": art.action_pred,
                                                                  **{PRE + k: v for k, v in pre.items()}})
        rows = preprocessor_parity(replay, art, atol=1e-3, rtol=1e-3, layout=layout, statistics=stats,
                                   decode=TokenDecoder(L.TINY_CHECKPOINT))
        found[name] = {c.name: {"passed": c.passed,
                                "details": [{k: v for k, v in d.items() if k != "images"} for d in c.details],
                                "images": [d.get("images") is not None for d in c.details]} for c in rows}
print(json.dumps(found))
"""


def _run():
    proc = subprocess.run([str(env_python("groot-lerobot")), "-c", textwrap.dedent(SNIPPET)], cwd=REPO,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_preprocessing_faults_are_named_at_their_element_token_and_view():
    found = _run()
    assert all(c["passed"] and not c["details"] for c in found["clean"].values()), found["clean"]

    views = found["wrist shifted 3 px"]["pixel_values"]
    assert not views["passed"] and [d["view"] for d in views["details"]] == [
        "batch 0, image", "batch 0, wrist_image", "batch 1, image", "batch 1, wrist_image"], views
    moved = {d["view"]: d["max |delta|"] for d in views["details"]}
    assert moved["batch 0, image"] == 0 == moved["batch 1, image"] and moved["batch 0, wrist_image"] > 0.1, moved
    assert all(views["images"]), "every view is rebuilt for display"
    assert found["wrist shifted 3 px"]["state"]["passed"] and found["wrist shifted 3 px"]["input_ids"]["passed"]

    state = found["roll bumped"]["state"]
    assert not state["passed"] and state["details"][0]["element"] in ("batch 0, roll[0]", "batch 1, roll[0]")
    first = state["details"][0]
    assert abs(first["|delta|"] - 0.05) < 1e-6 and {"raw", "min", "max", "mean", "std"} <= set(first), first
    assert sorted(d["element"] for d in state["details"][:2]) == ["batch 0, roll[0]", "batch 1, roll[0]"]
    assert all(d["|delta|"] < 1e-6 for d in state["details"][2:]), state["details"]  # the rest: rounding

    tokens = found["token swapped"]["input_ids"]
    assert not tokens["passed"] and len(tokens["details"]) == 1, tokens
    row = tokens["details"][0]
    assert (row["batch"], row["index in input_ids"]) == (1, 10) and row["LeRobot"] != row["original"], row
    assert row["first differing position"] == 8, row  # batch 1 is left-padded by 2 tokens: 8 real tokens before it
    assert row["LeRobot length"] == row["original length"] and "#" not in row["original"]  # decoded, not ids


def test_token_alignment_explains_a_length_change():
    decode = lambda ids: [f"t{i}" for i in ids]  # noqa: E731 - a stand-in vocabulary for plain ids
    ours = np.array([[1, 2, 3, 9, 4, 5]])
    theirs = np.array([[1, 2, 3, 4, 5, 0]])
    rows = inputs.token_alignment(ours, theirs, np.ones((1, 6)), np.array([[1, 1, 1, 1, 1, 0]]), decode=decode,
                                  context=1)
    assert rows == [{"batch": 0, "first differing position": 3, "index in input_ids": 3, "LeRobot length": 6,
                     "original length": 5,
                     "LeRobot": "t3 t9 t4", "original": "t3 t4 t5", "context from": 2}]
    assert inputs.token_alignment(theirs, theirs) == []


def test_state_labels_follow_the_modality_config():
    layout = ckpt.embodiment_layout(tiny_layout.TINY_CHECKPOINT, "oxe_droid_relative_eef_relative_joint")
    labels = inputs.state_labels(layout, 20)
    assert labels[:2] == ["eef_9d[0]", "eef_9d[1]"] and labels[9] == "gripper_position[0]"
    assert labels[10] == "joint_position[0]" and labels[17:] == ["pad[17]", "pad[18]", "pad[19]"]


def test_a_state_fault_leaves_model_parity_and_shows_its_effect_on_actions(tmp_path):
    """The whole report: a state normalisation fault fails preprocessor parity naming the element, model parity
    on the original's inputs still passes, and the end-to-end effect on action_pred is measured and shown."""
    from groot_lib.workbench.workflow import run_report

    notebooks = planted_notebooks(tmp_path, "consumer.ipynb", "consumer.run_all", PLANT + "plant(after=bump_roll)")
    _, index = run_report(out_root=tmp_path / "reports", artifacts_root=tmp_path / "store", notebooks=notebooks,
                          tags=TAG, variants="fp32-sdpa")
    verdicts = json.loads((index.parent / "verdicts.json").read_text())
    rows = {(r["check"], r["tensor"]): r for r in verdicts["rows"]}
    assert rows[("model parity", "action_pred")]["verdict"] == "PASS"
    assert rows[("preprocessor parity", "state")]["verdict"] == "FAIL"
    summary = verdicts["tags"][TAG]
    assert summary["input details"]["state"][0]["element"].endswith("roll[0]")
    assert summary["preprocessing effect on action_pred"]["max|delta|"] > 0
    consumer = re.sub(r"<[^>]+>", "", (index.parent / "consumer.html").read_text())
    assert "LeRobot's model on its own inputs vs on the original's" in consumer and "roll[0]" in consumer
