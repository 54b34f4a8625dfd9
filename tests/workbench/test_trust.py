"""Trustworthy verdicts, end to end in the real kernels: no stale reuse of edited code, fail-fast settings,
a terminal summary with the 0/1/2 contract, SUSPECT for a real sub-atol divergence, Ctrl-C, no hangs."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest

from conftest import planted_notebooks, run_in_env
from groot_lib.tiny import layout as tiny_layout
from groot_lib.core import report_folder
from groot_lib.core.artifact import artifact_path
from groot_lib.workbench.notebook_runner import NotebookExecutionError
from groot_lib.workbench.workflow import REPO, run_report
from test_workbench import TAG, consume, text_of

FLOW_LOOP = "        for t_step in range(self.num_inference_timesteps):\n"
ACTION_PRED = '                "action_pred": actions,\n'
GROOT_N1_7 = "policies/groot/groot_n1_7.py"
# A planted fault: the backbone's RoPE theta 1% larger (inv_freq_i = theta^(-i/n) -> (1.01 theta)^(-i/n)).
ROPE_FAULT = """
import contextlib, functools, torch
from groot_lib.backends import lerobot as _lb
_load = _lb.load
@contextlib.contextmanager
@functools.wraps(_load)  # the backend contract (checked at load) sees load's own signature
def _load_with_rope_fault(*args, **kwargs):
    with _load(*args, **kwargs) as loaded:
        for name, module in loaded.model.named_modules():
            if name.endswith("language_model.rotary_emb"):
                n = module.inv_freq.numel()
                module.inv_freq.mul_(1.01 ** (-torch.arange(n, dtype=module.inv_freq.dtype) / n))
        yield loaded
_lb.load = _load_with_rope_fault
"""


def lerobot_overlay(tmp_path: Path, rel: str, old: str, new: str) -> Path:
    """A throwaway copy of the installed LeRobot package with one real source edit; put it on PYTHONPATH."""
    found = run_in_env("groot-lerobot", """
        import importlib.util, json
        print(json.dumps({"root": list(importlib.util.find_spec("lerobot").submodule_search_locations)[0]}))""")
    overlay = tmp_path / "overlay"
    shutil.copytree(found["root"], overlay / "lerobot", ignore=shutil.ignore_patterns("__pycache__"))
    path = overlay / "lerobot" / rel
    text = path.read_text()
    assert text.count(old) == 1, f"edit anchor not found once in {path}"
    path.write_text(text.replace(old, new))
    return overlay


def cli(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "groot_lib.workbench.workflow", "report", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


def test_edited_lerobot_install_is_recomputed_never_reused(artifacts_copy, tmp_path, monkeypatch):
    """The LeRobot developer's workflow: same version, edited source. The stored replay must not be reused."""
    store = tmp_path / "store"
    clean = consume(artifacts_copy, tmp_path / "clean", tags=TAG, store_dir=str(store))
    assert [r["status"] for r in clean["replays"]] == ["computed"]
    monkeypatch.setenv("PYTHONPATH", str(lerobot_overlay(tmp_path, GROOT_N1_7, FLOW_LOOP,
                                                          FLOW_LOOP.replace("timesteps)", "timesteps - 1)"))))
    edited = consume(artifacts_copy, tmp_path / "edited", tags=TAG, store_dir=str(store))
    assert [r["status"] for r in edited["replays"]] == ["computed"], edited["replays"]
    assert edited["lerobot"]["code"]["code"] != clean["lerobot"]["code"]["code"]
    assert edited["lerobot"]["code"]["root"].startswith(str(tmp_path / "overlay"))
    assert edited["replays"][0]["lerobot code"] == edited["lerobot"]["code"]["code"]
    model = next(r for r in edited["rows"] if r["check"] == "model parity")
    assert model["verdict"] == "FAIL" and edited["passed"] is False, model  # 3 of 4 flow steps: a real difference
    assert len(list((store / "lerobot").glob(f"{TAG}__fp32-sdpa__*.npz"))) == 2  # both kept, each under its own key


def test_lerobot_output_smaller_than_valid_region_gives_verdicts_not_a_crash(artifacts_copy, recorded_dir, tmp_path,
                                                                             monkeypatch):
    """LeRobot returning a cropped action_pred under the bf16 study: FAILs with shapes named, plots skipped."""
    shutil.copyfile(artifact_path(recorded_dir, TAG, "bf16-sdpa"), artifact_path(artifacts_copy, TAG, "bf16-sdpa"))
    monkeypatch.setenv("PYTHONPATH", str(lerobot_overlay(tmp_path, GROOT_N1_7, ACTION_PRED,
                                                          ACTION_PRED.replace("actions,", "actions[:, :4, :4],"))))
    verdicts = consume(artifacts_copy, tmp_path / "out", tags=TAG, variants="fp32-sdpa,bf16-sdpa")
    model = next(r for r in verdicts["rows"] if r["check"] == "model parity")
    assert model["verdict"] == "FAIL" and model["shape"] == "(2, 4, 4) vs (2, 40, 132)"
    assert model["mismatched"] is None and model["max|delta|"] is None  # n/a, never "0 mismatched"
    (study,) = verdicts["precision"]
    assert study["verdict"] == "FAIL" and "smaller than the embodiment's valid region" in study["reason"], study
    json.loads((tmp_path / "out" / "verdicts.json").read_text(),
               parse_constant=lambda c: pytest.fail(f"verdicts.json is not strict JSON: {c}"))
    assert "no heatmap" in text_of_notebook(tmp_path / "out" / "consumer.ipynb")


def text_of_notebook(path: Path) -> str:
    nb = nbformat.read(str(path), as_version=4)
    return "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))


def test_rope_fault_inside_atol_is_flagged_suspect(tmp_path):
    """A 1% RoPE-theta change moves action_pred ~5e-4: it passes atol=1e-3, and is flagged SUSPECT everywhere."""
    notebooks = planted_notebooks(tmp_path, "consumer.ipynb", "consumer.run_all", ROPE_FAULT)
    code, index = run_report(out_root=tmp_path / "reports", artifacts_root=tmp_path / "store", notebooks=notebooks,
                             variants="fp32-sdpa")
    verdicts = json.loads((index.parent / "verdicts.json").read_text())
    models = [r for r in verdicts["rows"] if r["check"] == "model parity"]
    assert all(r["verdict"] == "PASS" and r["flag"] == "SUSPECT" and r["x expected gap"] > 10 for r in models), models
    assert 1e-4 < max(r["max|delta|"] for r in models) < 1e-3
    assert code == 0 and len(verdicts["suspect"]) == len(tiny_layout.EMBODIMENTS)
    assert f"{len(models)} SUSPECT: within atol/rtol, far above rounding" in text_of(index)
    assert text_of(index.parent / "consumer.html").count("SUSPECT") >= 2 * len(models)  # table flags + overall
    printed = text_of_notebook(index.parent / "consumer.ipynb")  # the heatmap titles are printed above each image
    for tag in tiny_layout.EMBODIMENTS:
        assert re.search(rf"{tag}: model parity SUSPECT \([0-9.]+x the gap rounding explains\)", printed), printed
    summary = (index.parent / "summary.txt").read_text()
    assert re.search(rf"{TAG}\s+model parity\s+SUSPECT\s+action_pred max [0-9.e-]+, [0-9.]+x expected gap", summary), summary
    # where: the first text layer diverges, yet re-run on the original's inputs it matches: its rotary position
    # embeddings (computed outside every named stage, where the fault is) already differ
    for line in (w for w in verdicts["where"] if w["check"] == "model parity"):
        assert line["status"] == "SUSPECT" and "diverges first at backbone.text.layer0" in line["text"], line
        assert "adds no error of its own" in line["text"] and "position_embeddings" in line["text"], line
        assert "the rotary position embeddings" in line["text"], line
    assert f"{TAG} / model parity SUSPECT: action_pred max |delta|" in summary


@pytest.mark.parametrize("args, expected", [
    (["--variants", "bogus"], "unknown: bogus"),
    (["--device", "gpu"], "expected auto, cpu, cuda or cuda:N"),
    (["--atol", "-1"], "atol = '-1'"),
    (["--rtol", "nan"], "rtol = 'nan'"),
    (["--precision-k", "0"], "expected a finite number > 0"),
    (["--noise-mode", "random"], "expected one of seed, inject"),
    (["--checkpoint", "/nonexistent/ckpt"], "is not a directory (no such path)"),
    (["--checkpoint", "someone/not-cached"], "is not in the HF cache"),
    (["--tags", "libero_sim,no_such_tag"], "['no_such_tag'] are not in"),
    (["--out-root", "/proc/gr00t-reports"], "reports folder /proc/gr00t-reports is not writable"),
    (["--memory-gb", "1"], "not enough memory for even one side at a time: producer ~0.8 GB, consumer ~1.0 GB"),
    (["--memory-gb", "2", "--schedule", "overlap"], "SCHEDULE=overlap, but one side's peak beside"),
    (["--schedule", "parallel"], "expected one of auto, overlap, sequential"),
])
def test_bad_settings_fail_before_any_kernel_in_one_line(args, expected):
    start = time.perf_counter()
    proc = cli(*args, "--artifacts-root", "/tmp/gr00t-parity-unused-store")
    elapsed = time.perf_counter() - start
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert expected in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and proc.stdout == ""
    assert elapsed < 3.0, f"validation took {elapsed:.1f} s"


def tiny_copy(tmp_path: Path) -> Path:
    dst = tmp_path / "ckpt"
    shutil.copytree(tiny_layout.TINY_CHECKPOINT, dst)
    return dst


def test_corrupt_checkpoint_json_and_missing_backbone_cache_are_named(tmp_path):
    ckpt = tiny_copy(tmp_path)
    (ckpt / "config.json").write_text('{"model_name": "nvidia/Cosmos-Reason2-tiny-random",')
    proc = cli("--checkpoint", str(ckpt), "--hf-home", str(tiny_layout.TINY_HF_HOME))
    assert proc.returncode == 2 and f"{ckpt / 'config.json'} is not valid JSON" in proc.stderr, proc.stderr
    shutil.copyfile(tiny_layout.TINY_CHECKPOINT / "config.json", ckpt / "config.json")
    empty = tmp_path / "empty-hf-home"
    empty.mkdir()
    proc = cli("--checkpoint", str(ckpt), "--hf-home", str(empty))
    assert proc.returncode == 2 and "nvidia/Cosmos-Reason2-tiny-random" in proc.stderr, proc.stderr
    assert str(empty) in proc.stderr and "HF_HOME=" in proc.stderr


def test_cli_prints_per_tag_verdicts_and_exits_1_on_fail(tmp_path):
    proc = cli("--tags", TAG, "--precision-k", "0.01", "--out-root", str(tmp_path / "reports"),
               "--artifacts-root", str(tmp_path / "store"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    out = proc.stdout
    assert out.startswith("gr00t-parity: FAIL (exit 1") and "Traceback" not in proc.stderr
    assert re.search(rf"{TAG}\s+model parity\s+PASS\s+action_pred max \S+, \S+x expected gap", out), out
    assert re.search(rf"{TAG}\s+precision bf16-sdpa\s+FAIL\s+cross \S+ > bound \S+", out), out  # the gap vs its bound
    assert re.search(rf"{TAG} / precision bf16-sdpa FAIL: cross gap \S+ EXCEEDS 0.01 x noise floor", out), out
    index = Path(re.search(r"report: (\S+)", out).group(1))
    assert (index.parent / "summary.txt").read_text() == out
    assert report_folder.is_finished(index.parent)  # its in-progress mark is gone: clean-reports counts it
    # the report keeps LeRobot's outputs too: hard links of the store entries, surviving a clean of the store
    kept = sorted((index.parent / "lerobot").glob("*.npz"))
    assert [p.name for p in kept] == [f"{TAG}__bf16-sdpa.npz", f"{TAG}__fp32-sdpa.npz"]
    shutil.rmtree(tmp_path / "store")
    with np.load(kept[1], allow_pickle=False) as npz:
        assert npz["action_pred"].shape == (2, 40, 132)


def test_consumer_without_producer_fails_fast_or_uses_the_artifacts_found(artifacts_copy, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    start = time.perf_counter()
    with pytest.raises(NotebookExecutionError, match="no producer is running for .* holds no artifacts"):
        consume(empty, tmp_path / "out-empty")
    assert time.perf_counter() - start < 60  # kernel start + imports, never the old 6-hour wait
    (artifacts_copy / "source.json").unlink()
    verdicts = consume(artifacts_copy, tmp_path / "out", tags=TAG)
    assert verdicts["source"]["mode"] == "artifacts" and "no producer ran" in verdicts["source"]["banner"]


def _kernels_of(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"ipykernel_launcher" in cmdline:
                kids.append(int(entry.name))
    return kids


# How each signal reaches the report: the terminal's Ctrl-C and hang-up go to the foreground process group, `kill`,
# `timeout` and `docker stop` send SIGTERM to the process.
SIGNALS = [(signal.SIGINT, os.killpg), (signal.SIGTERM, os.kill), (signal.SIGHUP, os.killpg)]


@pytest.mark.parametrize("signum, send", SIGNALS, ids=[s.name for s, _ in SIGNALS])
def test_ctrl_c_term_and_hup_stop_both_kernels_within_2s_and_leave_no_half_report(tmp_path, signum, send):
    out_root = tmp_path / "reports"
    proc = subprocess.Popen([sys.executable, "-m", "groot_lib.workbench.workflow", "report", "--tags", TAG, "--out-root",
                             str(out_root), "--artifacts-root", str(tmp_path / "store")], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while len(kernels := _kernels_of(proc.pid)) < 2:
        assert proc.poll() is None and time.monotonic() < deadline, "kernels never started"
        time.sleep(0.2)
    (run_dir,) = out_root.iterdir()  # marked as the run's own from the start: `make clean-reports` now keeps it
    assert report_folder.clean(out_root, keep=0).in_progress == [run_dir]
    # Both notebooks busy: the consumer imports LeRobot, the producer imports torch. Soon after, not later: with its
    # bytecode compiled the producer serves the recordings ~2.5 s after the start and its kernel exits.
    time.sleep(1.0)
    assert len(_kernels_of(proc.pid)) == 2, "the producer finished before the signal: nothing left to test it on"
    send(proc.pid, signum)
    start = time.monotonic()
    while any(Path(f"/proc/{k}").exists() and "Z" not in Path(f"/proc/{k}/stat").read_text().rsplit(")", 1)[1][:3]
              for k in kernels):
        assert time.monotonic() - start < 2.0, f"a kernel outlived {signum.name} by 2 s"
        time.sleep(0.02)
    stopped = time.monotonic() - start
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signum, stderr
    said = [line for line in stderr.splitlines() if line.strip() and not line.startswith("  [")]  # minus progress
    assert len(said) == 1 and said[0].startswith(f"gr00t-parity: interrupted by {signum.name}: 2 kernel(s) stopped"), \
        stderr
    assert "Kernel died" not in stderr, stderr  # nbclient's log line about the kernel we killed
    assert not out_root.exists() or list(out_root.iterdir()) == [], f"left in {out_root}: {list(out_root.iterdir())}"
    print(f"kernels gone {stopped:.3f} s after {signum.name}")
