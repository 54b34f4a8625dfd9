"""A real git history of LeRobot built from the LeRobot env's installed source (for make bisect and the matrix's
LeRobot axis): the installed package as the first commit, a harmless edit, a planted fault (one fewer flow step),
another harmless edit. Nothing is copied into this repo; the history lives in a test's temporary folder."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from groot_lib.workbench.kernels import interpreter

FLOW_FILE = "src/lerobot/policies/groot/groot_n1_7.py"
FLOW_LOOP = "for t_step in range(self.num_inference_timesteps):"


def installed_lerobot() -> tuple[Path, list[str]]:
    """Where the LeRobot env's lerobot package lives and its base requirements (read without importing it)."""
    code = ("import importlib.util, importlib.metadata as m, json, os; s = importlib.util.find_spec('lerobot'); "
            "print(json.dumps([os.path.dirname(s.origin), m.requires('lerobot') or []]))")
    out = subprocess.run([str(interpreter("groot-lerobot")), "-c", code], capture_output=True, text=True, check=True)
    folder, requires = json.loads(out.stdout)
    return Path(folder), [r for r in requires if "extra ==" not in r]


def commit(repo: Path, subject: str) -> str:
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(repo), "commit", "-q", "-m", subject], check=True)
    return subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{path} no longer holds {old!r}: the planted change needs a new anchor"
    path.write_text(text.replace(old, new, 1))


def build(repo: Path) -> dict[str, str]:
    """The four commits in ``repo`` (a new folder); returns their hashes by name."""
    package, requires = installed_lerobot()
    shutil.copytree(package, repo / "src" / "lerobot", ignore=shutil.ignore_patterns("__pycache__"))
    (repo / "pyproject.toml").write_text('[project]\nname = "lerobot"\nversion = "0.6.1"\n'
                                         f"dependencies = {json.dumps(requires)}\n")
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    for key, value in (("user.name", "test"), ("user.email", "test@example.com")):
        subprocess.run(["git", "-C", str(repo), "config", key, value], check=True)
    shas = {"installed": commit(repo, "LeRobot as installed")}
    init = repo / "src/lerobot/__init__.py"
    init.write_text(init.read_text() + "\n# a harmless edit\n")
    shas["harmless"] = commit(repo, "a harmless edit")
    edit(repo / FLOW_FILE, FLOW_LOOP, FLOW_LOOP.replace("num_inference_timesteps)", "num_inference_timesteps - 1)"))
    shas["fault"] = commit(repo, "one fewer flow step")
    (repo / "NOTES.md").write_text("another harmless edit\n")
    shas["head"] = commit(repo, "another harmless edit")
    return shas
