"""kernels/*/kernel.json as written by `make kernels`, and the missing-kernel message."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from groot_lib.workbench import kernels
from groot_lib.core.errors import KernelError

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name, env", [("groot-original", "original"), ("groot-lerobot", "lerobot")])
def test_kernel_json(name, env):
    path = REPO / "kernels" / name / "kernel.json"
    assert path.is_file(), "run `make kernels` first"
    spec = json.loads(path.read_text())
    python = Path(spec["argv"][0])
    assert python.is_absolute() and python.is_file()
    assert python == REPO / ".envs" / env / "bin" / "python"  # the venv's python, not the base one
    assert spec["argv"][1:] == ["-m", "ipykernel_launcher", "-f", "{connection_file}"]
    assert spec["language"] == "python" and spec["display_name"]
    assert spec["env"]["VIRTUAL_ENV"] == str(REPO / ".envs" / env)
    assert spec["env"]["PATH"].split(os.pathsep)[0] == str(python.parent)
    assert spec == kernels.kernel_spec(name)  # install() would write the same thing


def test_installed_kernels_come_from_the_repo():
    found = kernels.installed_kernels()
    for name in kernels.KERNELS:
        assert Path(found[name]) == REPO / "kernels" / name
    assert kernels.require_kernel("groot-lerobot") == found["groot-lerobot"]


def test_require_kernel_lists_what_is_installed():
    with pytest.raises(KernelError) as exc:
        kernels.require_kernel("nope")
    msg = str(exc.value)
    assert "kernel 'nope' is not installed" in msg
    assert "groot-original" in msg and "groot-lerobot" in msg
    assert f"JUPYTER_PATH={os.environ['JUPYTER_PATH']}" in msg and "make kernels" in msg


def test_jupyter_path_added_once(monkeypatch):
    monkeypatch.setenv("JUPYTER_PATH", "/elsewhere")
    first = kernels.ensure_jupyter_path()
    assert first == os.pathsep.join([str(REPO), "/elsewhere"]) == kernels.ensure_jupyter_path()


def test_install_refuses_missing_interpreters(tmp_path):
    with pytest.raises(KernelError, match="make setup"):
        kernels.install(tmp_path)
