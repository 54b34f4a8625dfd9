"""kernels/*/kernel.json as written by `make kernels`, and the missing-kernel message."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from groot_lib.workbench import kernels
from groot_lib.core.errors import KernelError

from groot_lib.paths import REPO_ROOT as REPO


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


def test_tools_jupyter_finds_both_kernels_without_jupyter_path(tmp_path):
    """`.envs/tools/bin/papermill notebooks/explore.ipynb` failed with NoSuchKernel unless JUPYTER_PATH was set: the
    specs are also in the tools env's share/jupyter, and none lands in the user's ~/.local/share/jupyter."""
    env = {k: v for k, v in os.environ.items() if k not in ("JUPYTER_PATH", "JUPYTER_DATA_DIR")}
    env["HOME"] = str(tmp_path)
    tools = REPO / ".envs" / "tools" / "bin"
    subprocess.run([str(tools / "python"), "-m", "groot_lib.workbench.kernels", "install"], cwd=REPO, env=env,
                   check=True, capture_output=True)
    listed = subprocess.run([str(tools / "jupyter"), "kernelspec", "list", "--json"], cwd=tmp_path, env=env,
                            check=True, capture_output=True, text=True)
    found = json.loads(listed.stdout)["kernelspecs"]
    for name in kernels.KERNELS:
        assert Path(found[name]["resource_dir"]) == REPO / ".envs/tools/share/jupyter/kernels" / name
        assert found[name]["spec"]["argv"] == kernels.kernel_spec(name)["argv"]
    user = tmp_path / ".local" / "share" / "jupyter"  # jupyter itself makes the empty folder; nothing may be in it
    assert [p for p in user.rglob("*") if p.is_file()] == [] and not (user / "kernels").exists()
