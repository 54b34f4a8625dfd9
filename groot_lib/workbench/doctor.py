"""``make doctor``: what each kernel's interpreter actually has, in one table.

Why: version drift between the two stacks (torch, transformers, CUDA, HF cache and
offline settings) is the first suspect when parity breaks. Each kernel's interpreter
(from its kernel.json, with its env block) runs a small probe; a missing kernel or
interpreter becomes a row saying so instead of a crash. Below the table: where gr00t and LeRobot
load from (checkout and commit), and the HF cache a report would use, which on the tiny default
is its own isolated cache, never the shell's HF_HOME.

CLI: ``python -m groot_lib.workbench.doctor [--checkpoint CKPT] [--hf-home DIR]`` (make doctor CKPT= HF_HOME=).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from string import Template

from groot_lib.core import code_identity, settings
from groot_lib.core.checkpoint import resolve_checkpoint
from groot_lib.core.errors import ParityError
from groot_lib.tiny import layout as tiny_layout
from groot_lib.workbench.kernels import KERNELS, REPO

PACKAGE = {"groot-original": "gr00t", "groot-lerobot": "lerobot"}

PROBE = r"""
import importlib, importlib.metadata, json, os, platform, sys
def imp(name):
    try:
        m = importlib.import_module(name)
    except BaseException as e:
        msg = (str(e).strip().splitlines() or [""])[0]
        return {"ok": False, "error": f"{type(e).__name__}: {msg}"[:160]}
    try:  # gr00t has no __version__: what is installed says it
        version = importlib.metadata.version(name)
    except Exception:
        version = getattr(m, "__version__", None)
    where = getattr(m, "__file__", None)
    return {"ok": True, "version": version, "source": os.path.dirname(os.path.dirname(where)) if where else None}
out = {"python": platform.python_version(), "executable": sys.executable}
for n in ["torch", "transformers", "flash_attn", sys.argv[1]]:
    out[n] = imp(n)
if out["torch"]["ok"]:
    import torch
    out["cuda"] = torch.cuda.is_available()
    out["torch_cuda"] = torch.version.cuda
try:
    from huggingface_hub import constants
    out["HF_HOME"] = constants.HF_HOME
except Exception:
    out["HF_HOME"] = os.environ.get("HF_HOME") or "(unset)"
print("\n@@PROBE@@" + json.dumps(out))
"""


def _kernel_json(name: str) -> dict | None:
    try:
        return json.loads((REPO / "kernels" / name / "kernel.json").read_text())
    except (OSError, ValueError):
        return None


def probe(name: str, timeout: float = 300) -> dict:
    """Run PROBE with kernel ``name``'s interpreter and env; {"error": ...} when it cannot."""
    spec = _kernel_json(name)
    if spec is None:
        return {"kernel": name, "error": f"kernels/{name}/kernel.json missing (run `make kernels`)"}
    exe = spec["argv"][0]
    if not Path(exe).is_file():
        return {"kernel": name, "error": f"interpreter {exe} missing (run `make setup`)"}
    env = dict(os.environ)
    env.update({k: Template(v).safe_substitute(os.environ) for k, v in spec.get("env", {}).items()})
    try:
        res = subprocess.run([exe, "-c", PROBE, PACKAGE[name]], capture_output=True, text=True,
                             env=env, timeout=timeout, cwd=REPO)
    except subprocess.TimeoutExpired:
        return {"kernel": name, "error": f"probe timed out after {timeout:.0f} s"}
    marker = res.stdout.rfind("@@PROBE@@")
    if res.returncode or marker < 0:
        tail = (res.stderr.strip().splitlines() or ["no output"])[-1]
        return {"kernel": name, "error": f"probe failed (exit {res.returncode}): {tail}"}
    row = {"kernel": name, **json.loads(res.stdout[marker + 9:])}
    pkg = row.get(PACKAGE[name]) or {}
    if name == "groot-original" and pkg.get("source"):  # a checkout: reports record its commit, so say it here
        pkg.update(code_identity.git_state(pkg["source"]))
    return row


def rows() -> list[dict]:
    with ThreadPoolExecutor(len(KERNELS)) as pool:  # torch imports are slow; probe both at once
        return list(pool.map(probe, KERNELS))


def _ver(r: dict, pkg: str) -> str:
    info = r.get(pkg) or {}
    if not info.get("ok"):
        return "no: " + info.get("error", "?")
    return info.get("version") or (f"commit {info['commit'][:12]}" if info.get("commit") else "?")


def report_hf_home(checkpoint: str | None, hf_home: str | None, shell_hf_home: str) -> tuple[str, str]:
    """(cache, why): the HF cache a report would use, by the one rule (tiny_layout.hf_home_for)."""
    given, source = settings.BY_NAME["hf_home"].resolve(hf_home)
    ckpt = settings.BY_NAME["checkpoint"].resolve(checkpoint)[0]
    cache = tiny_layout.hf_home_for(ckpt, given)
    if given:
        return str(Path(cache).expanduser().resolve()), f"given with {source}"
    if cache:
        return cache, ("the tiny default's isolated cache, whatever HF_HOME your shell has "
                       "(make doctor HF_HOME=/path shows a cache given to reports)")
    return shell_hf_home, f"your shell's HF_HOME (or huggingface's default), as CKPT={ckpt} is not the tiny default"


def report_checkpoint(checkpoint: str | None, hf_home: str | None) -> str:
    """The folder a report would read for CKPT, by core/checkpoint.py's one rule, from the cache only (doctor
    downloads nothing), or why it cannot."""
    ckpt = settings.BY_NAME["checkpoint"].resolve(checkpoint)[0]
    cache = tiny_layout.hf_home_for(ckpt, settings.BY_NAME["hf_home"].resolve(hf_home)[0])
    try:
        return str(resolve_checkpoint(ckpt or tiny_layout.TINY_CHECKPOINT, cache, download=None))
    except ParityError as exc:
        return f"not resolvable: {exc}"


def format_table(results: list[dict]) -> str:
    head = ["kernel", "python", "torch", "cuda", "transformers", "package", "flash_attn"]
    table = []
    for r in results:
        if "error" in r:
            table.append([r["kernel"], r["error"]] + [""] * (len(head) - 2))
            continue
        pkg = PACKAGE[r["kernel"]]
        cuda = "yes" if r.get("cuda") else ("no" if "cuda" in r else "-")
        if r.get("cuda"):
            cuda += f" ({r.get('torch_cuda')})"
        table.append([r["kernel"], r["python"], _ver(r, "torch"), cuda, _ver(r, "transformers"),
                      f"{pkg} {_ver(r, pkg)}", "yes" if r["flash_attn"]["ok"] else "no"])
    widths = [max(len(str(x)) for x in col) for col in zip(head, *table)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(head), line(["-" * w for w in widths])] + [line(t) for t in table])


def format_context(results: list[dict], checkpoint: str | None = None, hf_home: str | None = None) -> str:
    """Where each implementation loads from, and the HF cache and offline mode reports run with."""
    lines = []
    for r in results:
        info = r.get(PACKAGE[r["kernel"]]) or {}
        if info.get("source"):
            commit = (f", commit {info['commit'][:12]}" + (" + uncommitted changes" if info.get("modified") else
                                                          " (clean tree)")) if info.get("commit") else ""
            lines.append(f"{PACKAGE[r['kernel']]:9s}{info['source']}{commit}")
        elif r["kernel"] == "groot-original" and "error" not in r:
            lines.append(f"{'gr00t':9s}not installed in the groot-original env (reports on the tiny default replay the "
                         "recordings): make setup GR00T_SRC=/path/to/Isaac-GR00T")
    shell = next((r["HF_HOME"] for r in results if r.get("HF_HOME")), "~/.cache/huggingface")
    cache, why = report_hf_home(checkpoint, hf_home, shell)
    lines.append(f"{'HF_HOME':9s}{cache}: {why}")
    lines.append(f"{'CKPT':9s}{report_checkpoint(checkpoint, hf_home)}")
    lines.append(f"{'offline':9s}yes: reports set HF_HUB_OFFLINE=1 in both kernels, whatever your shell sets")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m groot_lib.workbench.doctor", description=__doc__.split("\n\n")[0])
    for name in ("checkpoint", "hf_home"):
        knob = settings.BY_NAME[name]
        ap.add_argument(knob.flag, dest=name, help=knob.help)
    args = ap.parse_args(argv)
    results = rows()
    print(format_table(results) + "\n\n" + format_context(results, args.checkpoint, args.hf_home))
    return 0


if __name__ == "__main__":
    sys.exit(main())
