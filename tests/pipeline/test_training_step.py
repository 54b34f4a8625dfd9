"""Training-step parity (compare/training.py) on the real LeRobot model against the original's recorded training
step (references/tiny-train, recorded live by `make record-references`): a clean replay passes every training
check, and each fault planted in LeRobot's training path at run time is caught by the right sub-check."""

from __future__ import annotations

import json

import pytest

from groot_lib.workbench.workflow import TRAINING_REFERENCES, run_report
from tests.conftest import planted_notebooks

CHECKS = ("training targets", "training loss", "gradients", "optimizer step")

# Each fault lives in the test and is planted in LeRobot's code at run time, in the consumer's kernel.
FAULTS = {
    "velocity sign flipped": ("training loss", """
import torch.nn.functional as _F
from lerobot.policies.groot import groot_n1_7 as _m
class _Flipped:
    def __getattr__(self, name):
        return getattr(_F, name)
    @staticmethod
    def mse_loss(pred, velocity, **kw):
        return _F.mse_loss(pred, -velocity, **kw)
_m.F = _Flipped()
"""),
    "loss mask ignored": ("training loss", """
import torch
from lerobot.policies.groot.groot_n1_7 import GR00TN17ActionHead as _H
_forward = _H.forward
def _unmasked(self, backbone_output, action_input):
    action_input.action_mask = torch.ones_like(action_input.action_mask)
    return _forward(self, backbone_output, action_input)
_H.forward = _unmasked
"""),
    "noise_s changed": ("training loss", """
from lerobot.policies.groot.groot_n1_7 import GR00TN17ActionHead as _H
_sample_time = _H.sample_time
_H.sample_time = lambda self, *a, **kw: _sample_time(self, *a, **kw) * (0.9 / self.config.noise_s)
"""),
    "a DiT block frozen": ("gradients", """
from lerobot.policies.groot.groot_n1_7 import GR00TN17ActionHead as _H
_eval = _H.set_frozen_modules_to_eval_mode
def _freezing(self):
    self.model.transformer_blocks[1].requires_grad_(False)
    return _eval(self)
_H.set_frozen_modules_to_eval_mode = _freezing
"""),
    "LeRobot's optimizer at twice the learning rate": ("optimizer step", """
from lerobot.policies.groot.configuration_groot import GrootConfig as _C
_preset = _C.get_optimizer_preset
def _doubled(self):
    preset = _preset(self)
    preset.lr *= 2
    return preset
_C.get_optimizer_preset = _doubled
"""),
    "an absolute group encoded as relative": ("training targets", """
from lerobot.policies.groot.processor_groot import GrootN17PackInputsStep as _S
_convert = _S._convert_relative_action_groups_for_training
def _relative_x(self, action, raw_state):
    action = _convert(self, action, raw_state).clone()
    action[..., 0:1] -= raw_state[:, None, 0:1]
    return action
_S._convert_relative_action_groups_for_training = _relative_x
"""),
}


def _report(tmp_path, notebooks=None) -> dict:
    code, index = run_report(out_root=tmp_path / "reports", artifacts_root=tmp_path / "store", notebooks=notebooks,
                             artifacts=str(TRAINING_REFERENCES), train=True, train_update=True, variants="fp32-sdpa",
                             quiet=True)
    verdicts = json.loads((index.parent / "verdicts.json").read_text())
    return {"code": code, "verdicts": verdicts, "summary": (index.parent / "summary.txt").read_text()}


def _rows(verdicts: dict) -> dict[str, list[dict]]:
    rows: dict[str, list[dict]] = {}
    for row in verdicts["rows"]:
        rows.setdefault(row["check"], []).append(row)
    return rows


def test_clean_training_step_passes_every_training_check(tmp_path):
    out = _report(tmp_path)
    rows = _rows(out["verdicts"])
    for check in CHECKS:
        assert rows.get(check) and all(r["verdict"] == "PASS" for r in rows[check]), (check, rows.get(check))
    assert out["code"] == 0, out["summary"]
    assert not [n for n in out["verdicts"]["not_compared"] if n["check"] == "training step"]
    assert rows["training loss"][0]["max|delta|"] <= 1e-6, rows["training loss"]


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_planted_training_fault_is_caught_by_its_check(tmp_path, fault):
    check, code = FAULTS[fault]
    out = _report(tmp_path, planted_notebooks(tmp_path, "consumer.ipynb", "consumer.run_all", code))
    rows = _rows(out["verdicts"])
    assert out["code"] == 1, out["summary"]
    assert any(r["verdict"] == "FAIL" for r in rows[check]), (fault, rows[check])
    assert all(r["verdict"] == "PASS" for r in rows["model parity"]), rows["model parity"]  # inference untouched
    if check == "training loss":
        assert all(r["verdict"] == "PASS" for r in rows["training targets"]), rows["training targets"]
    if fault == "a DiT block frozen":
        assert "train in the original only (DiT)" in json.dumps(out["verdicts"]["where"]), out["verdicts"]["where"]
    if check == "optimizer step":
        assert all(r["verdict"] == "PASS" for r in rows["gradients"]), rows["gradients"]
        recipe = out["verdicts"]["tags"]["libero_sim"]["training recipe"]
        assert [r["setting"] for r in recipe if r["differs"]] == ["optimizer lr"], recipe
        assert "recipes differ in: optimizer lr" in json.dumps(out["verdicts"]["where"]), out["verdicts"]["where"]
    if check == "training targets":
        assert "x[0]" in json.dumps(out["verdicts"]["where"]), out["verdicts"]["where"]


def test_tape_serves_the_recorded_draws_and_names_a_draw_out_of_order():
    """backends/training.Tape in a real kernel env: recorded draws come back bit for bit under another seed; a
    draw of another kind or shape is named, with its index, instead of being served."""
    from tests.conftest import run_in_env

    out = run_in_env("groot-lerobot", """
        import json, torch
        from torch.distributions import Beta
        from groot_lib.backends.training import DrawMismatch, Tape, taped
        torch.manual_seed(0)
        with taped(Tape()) as tape:
            first = [torch.randn(2, 3), Beta(torch.tensor(1.5), torch.tensor(1.0)).sample([2]),
                     torch.nn.functional.dropout(torch.ones(4), p=0.5)]
        replayed = Tape.from_arrays(tape.arrays())
        torch.manual_seed(1)
        with taped(replayed):
            again = [torch.randn(2, 3), Beta(torch.tensor(1.5), torch.tensor(1.0)).sample([2]),
                     torch.nn.functional.dropout(torch.ones(4), p=0.5)]
        try:
            with taped(Tape.from_arrays(tape.arrays())):
                torch.rand(2, 3)
            error = None
        except DrawMismatch as exc:
            error = str(exc)
        print(json.dumps({"same": all(torch.equal(a, b) for a, b in zip(first, again)), "error": error,
                          "kinds": [k for k, _ in tape.draws]}))
    """)
    assert out["same"], out
    assert out["kinds"] == ["randn", "beta", "rand"], out
    assert out["error"] == "draw 0: LeRobot draws rand(2, 3) where the original drew randn(2, 3)", out
