"""environment-*.yml parsing, stamp-driven rebuilds (real uv builds) and --gr00t-src checks."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from groot_lib.workbench import envs
from groot_lib.core.errors import MissingPackageError, ParityError

from groot_lib.paths import REPO_ROOT as REPO
YAMLS = {n: REPO / f"environment-{n}.yml" for n in ("original", "lerobot", "tools")}


@pytest.mark.parametrize("name, python, must_have", [
    ("original", "3.10", ["torch==2.7.1", "transformers==4.57.3", "numpy==1.26.4",
                          "opencv-python-headless>=4.5,<4.13", "ipykernel"]),
    ("lerobot", "3.12", ["lerobot[groot]==0.6.1", "torch==2.11.0", "transformers==5.5.4", "ipykernel"]),
    ("tools", "3.12", ["papermill", "jupyter_client", "pytest", "pyyaml"]),
])
def test_real_yaml_files(name, python, must_have):
    spec = envs.load_spec(YAMLS[name])
    assert spec.python == python and spec.conda == ["pip"]
    assert set(must_have) <= set(spec.pip)
    assert f"-e {REPO}" in spec.pip  # `-e .` is the repo, whatever the cwd


@pytest.mark.parametrize("name", list(YAMLS))
def test_mini_parser_matches_pyyaml(name):
    yaml = pytest.importorskip("yaml")
    text = YAMLS[name].read_text()
    assert envs._mini_yaml(text) == yaml.safe_load(text)


def test_mini_parser_subset_details():
    text = ("name: x  # comment\nchannels:\n- conda-forge\ndependencies:\n- python=3.12\n- pip\n"
            "- pip:\n  - 'a # not a comment'\n  - \"b>=1,<2\"  # pin\n  - -e ./sub\n")
    doc = envs._mini_yaml(text)
    assert doc == {"name": "x", "channels": ["conda-forge"],
                   "dependencies": ["python=3.12", "pip", {"pip": ["a # not a comment", "b>=1,<2", "-e ./sub"]}]}


def test_editable_resolution(tmp_path):
    yml = tmp_path / "e.yml"
    yml.write_text("name: e\ndependencies:\n  - python=3.12\n  - pip:\n"
                   "      - -e ./pkg\n      - -e git+https://example.org/r.git#egg=r\n")
    assert envs.load_spec(yml).pip == [f"-e {tmp_path / 'pkg'}", "-e git+https://example.org/r.git#egg=r"]


def test_missing_python_names_what_was_searched():
    with pytest.raises(MissingPackageError) as exc:
        envs.find_python("3.99")
    assert "3.99" in str(exc.value) and "Searched:" in str(exc.value) and "PATH" in str(exc.value)


def _tiny(tmp_path: Path, extra: str = "") -> Path:
    yml = tmp_path / "tiny.yml"
    yml.write_text(f"name: tiny\nchannels:\n  - conda-forge\ndependencies:\n  - python=3.12\n"
                   f"  - pip:\n      - six{extra}\n")
    return yml


def _py(env: Path, code: str) -> str:
    return subprocess.run([str(env / "bin/python"), "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.fixture(autouse=True)
def _uv_backend(monkeypatch):
    monkeypatch.setenv("GROOT_ENV_BACKEND", "uv")  # exercise the uv route even where conda exists


def test_stamp_rebuilds_only_on_change(tmp_path):
    yml, dest = _tiny(tmp_path), tmp_path / "env"
    assert envs.build(yml, dest) == "built"
    assert _py(dest, "import six, sys; print(sys.version_info[:2])") == "(3, 12)"
    stamp = json.loads((dest / envs.STAMP).read_text())
    assert stamp["yaml_sha256"] and stamp["gr00t_src"] is None
    (dest / "marker").touch()

    assert envs.build(yml, dest) == "up to date"
    assert (dest / "marker").exists()

    _tiny(tmp_path, "==1.17.0")
    assert envs.build(yml, dest) == "built"
    assert not (dest / "marker").exists()  # a fresh env replaced the old one
    assert _py(dest, "import six; print(six.__version__)") == "1.17.0"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["env", "tiny.yml"]  # no temp/old dirs left


def test_packages_are_installed_with_their_bytecode(tmp_path, monkeypatch):
    """Kernels import torch and transformers from these envs: without bytecode (uv writes none unless asked, and
    PYTHONDONTWRITEBYTECODE stops Python writing it) every import recompiles them. An env built before is
    compiled in place on the next build, not rebuilt."""
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    yml, dest = _tiny(tmp_path), tmp_path / "env"
    assert envs.build(yml, dest) == "built"
    cached = "import importlib.util as u, os, six; print(os.path.exists(u.cache_from_source(six.__file__)))"
    assert _py(dest, cached) == "True" and envs.read_stamp(dest)["bytecode"] is True
    for pyc in dest.glob("lib/python3*/site-packages/**/*.pyc"):  # as an env built without it
        pyc.unlink()
    stamp = {k: v for k, v in envs.read_stamp(dest).items() if k != "bytecode"}
    (dest / envs.STAMP).write_text(json.dumps(stamp))
    (dest / "marker").touch()
    assert envs.build(yml, dest) == "up to date" and (dest / "marker").exists()
    assert _py(dest, cached) == "True" and envs.read_stamp(dest)["bytecode"] is True


def _fake_gr00t(tmp_path: Path) -> Path:
    """A minimal Isaac-GR00T checkout: a git repo whose pyproject builds with setuptools, as the real one does."""
    src = tmp_path / "Isaac-GR00T"
    (src / "gr00t").mkdir(parents=True)
    (src / "gr00t/__init__.py").write_text("MARK = 'fake'\n")
    (src / "pyproject.toml").write_text('[project]\nname = "gr00t"\nversion = "0.0.1"\n'
                                        '[build-system]\nrequires = ["setuptools"]\n'
                                        'build-backend = "setuptools.build_meta"\n'
                                        '[tool.setuptools]\npackages = ["gr00t"]\n')
    git = ["git", "-C", str(src), "-c", "user.name=t", "-c", "user.email=t@t"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "fake"]):
        subprocess.run(git + args, check=True, capture_output=True)
    return src


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_gr00t_install_leaves_the_checkout_untouched(tmp_path):
    """`uv pip install -e` wrote gr00t.egg-info into the user's checkout; the .pth + dist-info install writes
    nothing there, yet imports the checkout, reports its version and uninstalls cleanly."""
    src, env = _fake_gr00t(tmp_path), tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    before = _tree(src)
    envs._install_gr00t(envs.find_uv(), env, src)
    envs._install_gr00t(envs.find_uv(), env, src)  # a reinstall replaces the first, leaving one dist-info
    assert _tree(src) == before
    assert subprocess.run(["git", "-C", str(src), "status", "--ignored", "--porcelain"],
                          capture_output=True, text=True, check=True).stdout == ""
    probe = ("import gr00t, importlib.metadata as m, json; d = m.distribution('gr00t'); "
             "print(json.dumps([gr00t.__file__, gr00t.MARK, d.version, json.loads(d.read_text('direct_url.json'))]))")
    file, mark, version, direct = json.loads(_py(env, probe))
    assert (file, mark, version) == (str(src / "gr00t/__init__.py"), "fake", "0.0.1")
    assert direct == {"url": src.as_uri(), "dir_info": {"editable": True}}
    site = next(env.glob("lib/python3*/site-packages"))
    assert sorted(p.name for p in site.glob("gr00t*")) == ["gr00t-0.0.1.dist-info", "gr00t-checkout.pth"]
    subprocess.run([envs.find_uv(), "pip", "uninstall", "-q", "--python", str(env / "bin/python"), "gr00t"], check=True)
    assert list(site.glob("gr00t*")) == []
    assert _py(env, "import importlib.util as u; print(u.find_spec('gr00t'))") == "None"


def test_gr00t_src_installed_recorded_and_sticky(tmp_path):
    src = _fake_gr00t(tmp_path)
    yml, dest = _tiny(tmp_path), tmp_path / "env"
    assert envs.build(yml, dest) == "built"
    assert envs.build(yml, dest, gr00t_src=src) == "updated"  # same YAML: no full rebuild
    assert _py(dest, "import gr00t; print(gr00t.MARK)") == "fake"
    assert envs.read_stamp(dest)["gr00t_src"] == str(src)
    assert envs.build(yml, dest) == "up to date"  # no --gr00t-src: keep the recorded one
    stamp = envs.read_stamp(dest)
    (dest / envs.STAMP).write_text(json.dumps({**stamp, "gr00t_install": None}))  # installed the old way
    assert envs.build(yml, dest) == "updated" and envs.read_stamp(dest)["gr00t_install"] == envs.GR00T_INSTALL
    assert envs.main(["build", str(yml), str(dest), "--gr00t-src", "none"]) == 0  # drop it: rebuild
    assert envs.read_stamp(dest)["gr00t_src"] is None
    assert _py(dest, "import importlib.util as u; print(u.find_spec('gr00t'))") == "None"


def test_invalid_gr00t_src_is_a_clear_error(tmp_path, capsys):
    yml, dest = _tiny(tmp_path), tmp_path / "env"
    with pytest.raises(ParityError) as exc:
        envs.build(yml, dest, gr00t_src=tmp_path / "nope")
    assert "gr00t/__init__.py" in str(exc.value) and "pyproject.toml" in str(exc.value)
    assert not dest.exists()
    assert envs.main(["build", str(yml), str(dest), "--gr00t-src", str(tmp_path)]) == 1
    assert "not an Isaac-GR00T checkout" in capsys.readouterr().err


def test_refuses_to_replace_a_non_env_folder(tmp_path):
    dest = tmp_path / "precious"
    dest.mkdir()
    (dest / "thesis.tex").touch()
    with pytest.raises(ParityError, match="refusing"):
        envs.build(_tiny(tmp_path), dest)
    assert (dest / "thesis.tex").exists()
