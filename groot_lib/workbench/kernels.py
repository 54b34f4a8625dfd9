"""The two Jupyter kernels, kept inside the repo.

Why: papermill picks an interpreter by kernel name. Each spec is written twice, never to the user's
global Jupyter config: ``<repo>/kernels/<name>/kernel.json`` (found with ``JUPYTER_PATH=<repo>``,
as the workbench sets it) and the tools env's ``share/jupyter/kernels/<name>/kernel.json``, a
folder its own jupyter and papermill search by default, so ``.envs/tools/bin/papermill`` works bare.

CLI: ``python -m groot_lib.workbench.kernels install [--envs .envs]``
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from groot_lib.core.atomic import atomic_write_text

from groot_lib.paths import REPO_ROOT as REPO
# kernel name -> (env folder under .envs, display name)
KERNELS = {
    "groot-original": ("original", "GR00T original (py3.10, transformers 4.57)"),
    "groot-lerobot": ("lerobot", "GR00T LeRobot (py3.12, transformers 5)"),
}


def jupyter_path() -> str:
    """The JUPYTER_PATH entry under which jupyter finds ``kernels/*``: the repo root."""
    return str(REPO)


def ensure_jupyter_path() -> str:
    """Prepend the repo to this process's JUPYTER_PATH (only ours, never global config)."""
    parts = [p for p in os.environ.get("JUPYTER_PATH", "").split(os.pathsep) if p]
    if jupyter_path() not in parts:
        os.environ["JUPYTER_PATH"] = os.pathsep.join([jupyter_path(), *parts])
    return os.environ["JUPYTER_PATH"]


def kernel_spec(name: str, envs: str | Path = REPO / ".envs") -> dict:
    env_dir = Path(os.path.abspath(Path(envs) / KERNELS[name][0]))  # no resolve(): keep venv path
    python = env_dir / "bin" / "python"
    return {
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": KERNELS[name][1],
        "language": "python",
        "env": {"PATH": f"{env_dir / 'bin'}{os.pathsep}${{PATH}}", "VIRTUAL_ENV": str(env_dir)},
        "metadata": {"debugger": True},
    }


def install(envs: str | Path = REPO / ".envs") -> list[Path]:
    """Write both kernel.json files to the repo and to the tools env (the interpreters must exist: ``make setup``);
    returns those that changed."""
    from groot_lib.core.errors import KernelError

    tools = Path(os.path.abspath(Path(envs) / "tools"))
    if not (tools / "bin" / "python").is_file():
        raise KernelError(f"the tools env {tools} does not exist. Run `make setup`.")
    written = []
    for name in KERNELS:
        spec = kernel_spec(name, envs)
        if not Path(spec["argv"][0]).is_file():
            raise KernelError(f"kernel '{name}': interpreter {spec['argv'][0]} does not exist. Run `make setup`.")
        text = json.dumps(spec, indent=2) + "\n"
        for out in (REPO / "kernels" / name / "kernel.json", tools / "share/jupyter/kernels" / name / "kernel.json"):
            if out.is_file() and out.read_text() == text:
                continue  # unchanged: nothing to say on every make target
            out.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(out, text)
            written.append(out)
    return written


def installed_kernels() -> dict[str, str]:
    """{kernel name: resource dir} as jupyter_client sees them with our JUPYTER_PATH."""
    from jupyter_client.kernelspec import KernelSpecManager

    ensure_jupyter_path()
    return dict(sorted(KernelSpecManager().find_kernel_specs().items()))


def require_kernel(name: str) -> str:
    """Resource dir of ``name``, or a KernelError listing what is installed."""
    from groot_lib.core.errors import KernelError

    found = installed_kernels()
    if name not in found:
        raise KernelError(
            f"kernel '{name}' is not installed; installed kernels: {', '.join(found) or '(none)'} "
            f"(JUPYTER_PATH={os.environ.get('JUPYTER_PATH', '')}). Run `make kernels`."
        )
    return found[name]


def interpreter(name: str) -> Path | None:
    """The interpreter a kernel.json under the repo launches (None if not written)."""
    try:
        return Path(json.loads((REPO / "kernels" / name / "kernel.json").read_text())["argv"][0])
    except (OSError, ValueError, KeyError, IndexError):
        return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m groot_lib.workbench.kernels")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("install", help="write kernels/*/kernel.json and the tools env's copies").add_argument(
        "--envs", default=str(REPO / ".envs"))
    sub.add_parser("list", help="kernels visible with JUPYTER_PATH=<repo>")
    args = ap.parse_args(argv)
    from groot_lib.core.errors import ParityError

    try:
        if args.cmd == "install":
            for p in install(args.envs):
                print(f"wrote {os.path.relpath(p, REPO)}")
        else:
            for name, where in installed_kernels().items():
                print(f"{name:20s} {where}")
    except ParityError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
