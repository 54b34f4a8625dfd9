"""Prepare the one-script GPU check: the wheels each env lacks on the GPU machine, and the user's gr00t checkout.

Why: the GPU machine has Python 3.12 with a CUDA torch and no network, so whatever the three envs need
beyond what it already holds must travel with the working tree (64 MiB a call). What travels:

- per env, every distribution of the local env (``make setup``) that the machine lacks (by name), plus the
  few whose version defines the model's code path (MODEL_PINS) where the machine's version differs;
  the machine's torch/CUDA stack is used as it is, and everything else at the machine's version;
- ``.device/gr00t``: the user's gr00t checkout as a one-commit git repo holding only the ``gr00t`` package,
  so the original keeps its commit and code hash there (never committed: ``.device/`` is ignored).

Run here: ``.envs/tools/bin/python -m bench.gpu.prepare [--gr00t-src PATH]`` (``make gpu-check-prepare``);
then on the machine ``bash bench/gpu/check.sh`` with ``.whl`` and ``.device`` carried.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from groot_lib.paths import REPO_ROOT as REPO
WHEELS = REPO / ".whl"
DEVICE = REPO / ".device"
MACHINE = Path(__file__).with_name("machine-packages.txt")
ENVS = ("tools", "original", "lerobot")
# The machine's own CUDA build of these runs (a CPU/CUDA 12 wheel would be GBs and the wrong CUDA).
MACHINE_ONLY = re.compile(r"^(torch|torchvision|torchaudio|triton|nvidia-.*|cuda-.*)$")
# Versions that decide which model code runs: carried even where the machine has another version.
MODEL_PINS = {"transformers", "tokenizers", "huggingface-hub", "peft", "diffusers", "safetensors", "accelerate"}
# Not needed to run the workbench there (JupyterLab is `make lab`; the rest are build tools or video I/O
# that the GR00T policy path never imports).
SKIP = {"jupyterlab", "jupyter-lsp", "jupyterlab-server", "jupyter-server", "notebook-shim", "jupyter-builder",
        "babel", "json5", "async-lru", "jupyter-server-terminals", "terminado", "send2trash", "argon2-cffi",
        "argon2-cffi-bindings", "jupyter-events", "python-json-logger", "rfc3339-validator", "rfc3986-validator",
        "rfc3987-syntax", "uri-template", "fqdn", "isoduration", "webcolors", "jsonpointer", "arrow", "lark",
        "websocket-client", "cmake", "decord", "torchcodec", "debugpy", "groot-lib", "gr00t",
        "jedi", "parso"}  # jedi: IPython's tab completion only, 4.9 MB
# Kernel plumbing: not the code under test, so one version (the tools env's) serves all three envs.
PLUMBING = {"ipykernel", "ipython", "ipython-pygments-lexers", "jupyter-client", "jupyter-core", "pyzmq", "tornado",
            "traitlets", "comm", "matplotlib-inline", "nest-asyncio2", "prompt-toolkit", "wcwidth", "pexpect",
            "ptyprocess", "stack-data", "asttokens", "executing", "pure-eval", "decorator", "platformdirs"}
LIMIT_MIB = 64  # what one device call carries: the repo's tracked files plus the carried paths
GROUPS = ("common", *ENVS)  # common: what two or more envs carry at the same version, packed once


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name.lower())


def read_pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[norm(name)] = version.strip()
    return pins


def env_freeze(env: str) -> dict[str, str]:
    """{name: version} of a local env, read by its own interpreter (no uv needed)."""
    python = REPO / ".envs" / env / "bin" / "python"
    if not python.exists():
        sys.exit(f"error: {python} does not exist; run `make setup` first (the wheels are the local envs' versions)")
    code = "import json, importlib.metadata as m; print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))"
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True).stdout
    return {norm(k): v for k, v in json.loads(out).items()}


def carry_list(env: str, machine: dict[str, str], tools: dict[str, str]) -> dict[str, str]:
    carry = {}
    for name, version in sorted(env_freeze(env).items()):
        version = tools.get(name, version) if name in PLUMBING else version
        if MACHINE_ONLY.match(name) or name in SKIP or name in {"pip", "setuptools", "wheel"}:
            continue
        if name not in machine or (name in MODEL_PINS and machine[name] != version):
            carry[name] = version
    return carry


def _wheels(folder: Path, name: str, version: str) -> list[Path]:
    return [p for p in folder.glob("*.whl") if norm(p.name.split("-")[0]) == name and p.name.split("-")[1] == version]


def download(pins: dict[str, str]) -> list[str]:
    """cp312 manylinux wheels (pure ones too); an sdist-only pure package is built into a wheel here."""
    files = WHEELS / "files"
    files.mkdir(parents=True, exist_ok=True)
    got = []
    for name, version in sorted(pins.items()):
        if not _wheels(files, name, version):
            platforms = [a for n in (17, 24, 27, 28, 31, 34, 35) for a in ("--platform", f"manylinux_2_{n}_x86_64")]
            cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version",
                   "3.12", "--implementation", "cp", *platforms, "--platform", "manylinux2014_x86_64",
                   "--platform", "linux_x86_64", "-d", str(files), f"{name}=={version}"]
            if subprocess.run(cmd, capture_output=True).returncode:
                # pure-Python sdist (e.g. antlr4-python3-runtime): a wheel built here runs anywhere
                subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(files),
                                f"{name}=={version}"], check=True)
        have = _wheels(files, name, version)
        if len(have) != 1:
            sys.exit(f"error: expected one wheel for {name}=={version} in {files}, found {[p.name for p in have]}")
        got.append(have[0].name)
    return got


def pack(group: str, wheels: list[str], python: str) -> float:
    """Install ``wheels`` into a staging prefix (a venv's layout: lib/python3.12/site-packages, share, bin) and
    pack it as one solid ``.whl/<group>.tar.xz``: xz over the unpacked files is ~40% smaller than the wheels'
    per-file deflate (LeRobot's envs with PyAV: 64 -> 37 MiB), which is what lets them travel in one call."""
    staging = WHEELS / "staging" / group
    shutil.rmtree(staging, ignore_errors=True)
    if wheels:
        subprocess.run([python, "-m", "pip", "install", "-q", "--prefix", str(staging), "--no-deps", "--no-index",
                        "--ignore-installed", "--no-compile", "--disable-pip-version-check",
                        *[str(WHEELS / "files" / w) for w in wheels]], check=True)
    else:
        staging.mkdir(parents=True)
    archive = WHEELS / f"{group}.tar.xz"
    with open(archive, "wb") as out:
        tar = subprocess.Popen(["tar", "cf", "-", "--sort=name", "--owner=0", "--group=0", "-C", str(staging), "."],
                               stdout=subprocess.PIPE)
        subprocess.run(["xz", "-9", "-T0"], stdin=tar.stdout, stdout=out, check=True)
        tar.wait()
    shutil.rmtree(staging)
    return archive.stat().st_size / 2**20


def gr00t_copy(src: Path) -> str:
    """``.device/gr00t``: one commit (the checkout's HEAD) holding the gr00t package, and its working tree."""
    if not (src / "gr00t" / "__init__.py").exists():
        sys.exit(f"error: {src} is not an Isaac-GR00T checkout (no gr00t/__init__.py)")
    commit = subprocess.run(["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=True).stdout.strip()
    dest = DEVICE / "gr00t"
    shutil.rmtree(dest, ignore_errors=True)
    # blobless: only the gr00t package's files are fetched (~1 MiB instead of the repo's media)
    subprocess.run(["git", "clone", "-q", "--no-checkout", "--depth", "1", "--filter=blob:none", "--sparse",
                    "--upload-pack", "git -c uploadpack.allowFilter=true upload-pack", f"file://{src}", str(dest)],
                   check=True)
    # non-cone: the package folder alone (cone mode also checks out the root's files: 1.3 MiB of licences and lock)
    subprocess.run(["git", "-C", str(dest), "sparse-checkout", "set", "--no-cone", "/gr00t/"], check=True)
    subprocess.run(["git", "-C", str(dest), "checkout", "-q", commit], check=True)
    # uncommitted edits of the user's checkout travel too (recorded as such there)
    for path in (src / "gr00t").rglob("*.py"):
        target = dest / path.relative_to(src)
        if not target.exists() or target.read_bytes() != path.read_bytes():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
    return commit


def size_mib(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20 if path.exists() else 0.0


def main(argv: list[str] | None = None) -> int:
    from groot_lib.workbench.envs import find_python

    ap = argparse.ArgumentParser(prog="python -m bench.gpu.prepare", description=__doc__.splitlines()[0])
    ap.add_argument("--gr00t-src", type=Path, help="your Isaac-GR00T checkout (default: the one `make setup` used)")
    ap.add_argument("--python", help="a Python 3.12 to unpack the wheels with (default: pyenv's or PATH's)")
    args = ap.parse_args(argv)
    machine = read_pins(MACHINE)
    tools = env_freeze("tools")
    lists = {env: carry_list(env, machine, tools) for env in ENVS}
    wheels = {env: download(lists[env]) for env in ENVS}
    # one copy of whatever two envs share (same file); each env then unpacks common + its own
    seen: dict[str, int] = {}
    for env in ENVS:
        for w in wheels[env]:
            seen[w] = seen.get(w, 0) + 1
    groups = {"common": sorted(w for w, n in seen.items() if n > 1)}
    groups.update({env: [w for w in wheels[env] if seen[w] == 1] for env in ENVS})
    for stale in (WHEELS / "files").glob("*.whl"):
        if stale.name not in seen:
            stale.unlink()
    for old in WHEELS.glob("*.txt"):
        old.unlink()
    python = args.python or str(find_python("3.12"))
    sizes = {group: pack(group, names, python) for group, names in groups.items()}
    src = args.gr00t_src or Path((REPO / ".envs" / ".gr00t-src").read_text().strip() or ".")
    commit = gr00t_copy(src.resolve())
    for group, names in groups.items():
        print(f"{group:9s} {len(names):3d} wheels, {sizes[group]:5.1f} MiB: "
              + " ".join(w.split("-")[0] + "==" + w.split("-")[1] for w in names))
    carried = sum(sizes.values()) + size_mib(DEVICE)
    tracked = sum((REPO / p).lstat().st_size for p in subprocess.run(  # a link travels as a link
        ["git", "-C", str(REPO), "ls-files", "-z"], capture_output=True, text=True, check=True).stdout.split("\0")
        if p and (REPO / p).is_file()) / 2**20
    print(f"gr00t {commit[:12]} from {src} -> {DEVICE / 'gr00t'} ({size_mib(DEVICE):.1f} MiB)")
    print(f"carried: {carried:.1f} MiB (.whl/*.tar.xz {sum(sizes.values()):.1f} + .device {size_mib(DEVICE):.1f}) + "
          f"the repo's tracked files {tracked:.1f} MiB = {carried + tracked:.1f} of {LIMIT_MIB} MiB. "
          f"Carry: {' '.join(f'.whl/{g}.tar.xz' for g in GROUPS)} .device")
    if carried + tracked > LIMIT_MIB:
        print(f"error: {carried + tracked:.1f} MiB is over the {LIMIT_MIB} MiB one device call carries", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
