"""Outputs of the original made elsewhere: checked against the checkpoint before any kernel starts, given a
checkpoint identity by a command when they lack one, refused (never a crash, never a PASS) when they do not fit."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from groot_lib.core import fit
from groot_lib.core.atomic import atomic_save_npz
from groot_lib.core.errors import CheckpointMismatchError, SettingError
from groot_lib.tiny import layout as tiny_layout
from groot_lib.workbench.workflow import REPO, run_report

TAG = "libero_sim"


def rewrite(path: Path, edit) -> None:
    """``path``'s members changed by ``edit(members)`` in place (a file as another tool would have written it)."""
    with np.load(path, allow_pickle=False) as npz:
        members = {k: npz[k] for k in npz.files}
    edit(members)
    atomic_save_npz(path, members)


@pytest.fixture
def elsewhere(tmp_path, recorded_dir) -> Path:
    """The recorded fp32 artifacts of one tag as a user's own script on a GPU box might write them: this project's
    schema, no meta::checkpoint."""
    out = tmp_path / "elsewhere"
    out.mkdir()
    for name in (f"{TAG}.npz", f"{TAG}__bf16-sdpa.npz"):
        shutil.copyfile(recorded_dir / name, out / name)
        rewrite(out / name, lambda m: m.pop("meta::checkpoint"))
    return out


def test_recordings_fit_their_checkpoint(recorded_dir):
    assert fit.check_folder(recorded_dir, tiny_layout.TINY_CHECKPOINT, tiny_layout.EMBODIMENTS,
                            hf_home=str(tiny_layout.TINY_HF_HOME)) == []


def test_files_without_identity_are_refused_before_any_kernel_then_attached_and_judged(elsewhere, tmp_path):
    start = time.perf_counter()
    with pytest.raises(SettingError, match=r"record no checkpoint identity.*make attach-checkpoint ARTIFACTS="):
        run_report(out_root=tmp_path / "reports", artifacts_root=tmp_path / "store", artifacts=str(elsewhere),
                   quiet=True)
    assert time.perf_counter() - start < 5 and not (tmp_path / "reports").exists() or \
        not any((tmp_path / "reports").iterdir())
    proc = subprocess.run([sys.executable, "-m", "groot_lib.core.fit", str(elsewhere)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "wrote its identity into 2 file(s)" in proc.stdout, proc.stdout + proc.stderr
    attached = json.loads(str(np.load(elsewhere / f"{TAG}.npz")["meta::checkpoint"]))
    assert attached["name"] == tiny_layout.TINY_CHECKPOINT.name and attached["attached"]["by"]
    code, index = run_report(out_root=tmp_path / "reports", artifacts_root=tmp_path / "store",
                             artifacts=str(elsewhere), quiet=True)
    verdicts = json.loads((index.parent / "verdicts.json").read_text())
    assert code == 0 and verdicts["passed"], (index.parent / "summary.txt").read_text()


def test_attach_refuses_files_of_another_checkpoint(elsewhere):
    rewrite(elsewhere / f"{TAG}.npz", lambda m: m.update({"in::inputs.embodiment_id": np.full(2, 7)}))
    before = (elsewhere / f"{TAG}__bf16-sdpa.npz").read_bytes()
    with pytest.raises(CheckpointMismatchError, match=r"libero_sim.npz: embodiment id\(s\) \[7\].*maps libero_sim to 2"):
        fit.attach(elsewhere, tiny_layout.TINY_CHECKPOINT, hf_home=str(tiny_layout.TINY_HF_HOME))
    assert (elsewhere / f"{TAG}__bf16-sdpa.npz").read_bytes() == before  # nothing written


def real_backbone_tokens(members: dict) -> None:
    """What a dump made with the real Qwen3-VL backbone holds: its image placeholder id, not the tiny one's."""
    ids = members["in::inputs.input_ids"].copy()
    ids[ids == 382] = 151655
    members["in::inputs.input_ids"] = ids


@pytest.mark.parametrize("edit, words", [
    (real_backbone_tokens, r"0 image token\(s\) \(id 382.*another backbone"),
    (lambda m: m.update({"out::action_pred": m["out::action_pred"][:, :16, :32].copy()}),
     r"action_pred is \(2, 16, 32\).*\(batch, 40, 132\)"),
    (lambda m: m.update({"meta::checkpoint": np.array(json.dumps({"fingerprint": "0123456789abcdef"}))}),
     r"fingerprint 0123456789abcdef"),
    (lambda m: m.pop("raw::video.wrist_image"), r"cameras \['image'\], the modality config lists"),
])
def test_a_recording_of_another_checkpoint_is_refused_before_any_kernel(tmp_path, artifacts_copy, edit, words):
    """Never a kernel crash ("Image features and image tokens do not match") and never a PASS: one line naming
    the file and what does not fit, before anything runs."""
    rewrite(artifacts_copy / f"{TAG}.npz", edit)
    with pytest.raises(SettingError, match=words) as caught:
        run_report(out_root=tmp_path / "reports", artifacts_root=tmp_path / "store", artifacts=str(artifacts_copy),
                   tags=TAG, quiet=True)
    assert f"{TAG}.npz" in str(caught.value) and "\n" not in str(caught.value)


def test_attach_refuses_a_folder_without_artifacts(tmp_path):
    """Nothing to attach to is an error naming the folder, never 'every artifact fits'."""
    proc = subprocess.run([sys.executable, "-m", "groot_lib.core.fit", str(tmp_path / "nowhere")], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "holds no artifact" in proc.stderr and "no such folder" in proc.stderr, proc.stderr
    assert "fits" not in proc.stdout
