"""Shared fixtures: the real envs, kernels and the embedded tiny default."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from groot_lib.tiny import layout as tiny_layout
from groot_lib.workbench.kernels import interpreter
from groot_lib import paths

REPO = paths.REPO_ROOT


def env_python(kernel: str) -> Path:
    path = interpreter(kernel)
    if path is None or not Path(path).exists():
        pytest.fail(f"kernel {kernel!r} has no interpreter: run `make kernels` (tests never skip a missing install)")
    return Path(path)


def run_in_env(kernel: str, code: str, *args: str, timeout: int = 600) -> dict:
    """Run ``code`` (with ``args`` as sys.argv[1:]) with a kernel's interpreter; it must print one JSON object on
    its last line."""
    proc = subprocess.run([str(env_python(kernel)), "-c", textwrap.dedent(code), *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"{kernel} snippet failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def recorded_dir() -> Path:
    path = tiny_layout.RECORDED_ROOT
    assert (path / "provenance.json").is_file(), f"recorded references missing in {path}"
    return path


@pytest.fixture
def artifacts_copy(tmp_path, recorded_dir) -> Path:
    """A writable copy of the recorded fp32 artifacts, with a source.json like the producer writes."""
    out = tmp_path / "artifacts"
    out.mkdir()
    for npz in recorded_dir.glob("*.npz"):
        shutil.copyfile(npz, out / npz.name)
    (out / "source.json").write_text(json.dumps({"mode": "recorded", "banner": "original outputs: test copy"}))
    return out


@pytest.fixture(scope="session")
def python_exe() -> str:
    return sys.executable


def planted_notebooks(tmp_path: Path, notebook: str, anchor: str, code: str, *, offset: int = 0) -> Path:
    """Copies of both notebooks under ``tmp_path/notebooks`` with ``code`` planted as a new cell in
    ``notebook`` (``offset`` cells after the first cell whose source contains ``anchor``). A test's fault
    lives in the test, never in the library."""
    import nbformat

    from groot_lib.workbench.workflow import NOTEBOOKS

    out = tmp_path / "notebooks"
    out.mkdir()
    for name in ("producer.ipynb", "consumer.ipynb"):
        nb = nbformat.read(str(NOTEBOOKS / name), as_version=4)
        if name == notebook:
            at = next(i for i, cell in enumerate(nb.cells) if anchor in cell.source) + offset
            nb.cells.insert(at, nbformat.v4.new_code_cell(code))
        nbformat.write(nb, str(out / name))
    return out


LOW_PRECISION_GAP = """
import json, sys, numpy as np
from groot_lib.backends import process
from groot_lib.tiny import layout as L
process.configure_process(L.TINY_HF_HOME)
from groot_lib.backends import lerobot as lb
from groot_lib.core import checkpoint as ck
from groot_lib.core.artifact import artifact_path, load_artifact
from groot_lib.core.variants import get_variant
variant, device = sys.argv[1], sys.argv[2]
art = load_artifact(artifact_path(L.RECORDED_ROOT, "libero_sim"))
layout = ck.embodiment_layout(L.TINY_CHECKPOINT, "libero_sim")
out, attention = {}, None
for name in ("fp32-sdpa", variant):
    with lb.load(L.TINY_CHECKPOINT, layout, variant=get_variant(name), device=device) as loaded:
        out[name] = lb.sample(loaded, art.inputs, seed=0, noise=art.initial_noise)["action_pred"]
        attention = lb.provenance(loaded)["attention"]
print(json.dumps({"gap": float(np.abs(out["fp32-sdpa"] - out[variant]).max()),
                  "finite": bool(np.isfinite(out[variant]).all()), "attention": attention}))
"""


def lerobot_low_precision_gap(variant: str, device: str = "cpu") -> dict:
    """LeRobot under fp32 and under ``variant`` on libero_sim's recorded inputs, both from the recorded initial
    noise: {"gap": max |delta|, "finite": ..., "attention": what the variant's run recorded}."""
    proc = subprocess.run([str(env_python("groot-lerobot")), "-c", LOW_PRECISION_GAP, variant, device], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise AssertionError(f"groot-lerobot snippet failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
