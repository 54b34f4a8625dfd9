"""``make doctor``: what each kernel's interpreter actually has, in one table.

Why: version drift between the two stacks (torch, transformers, CUDA, HF cache and
offline settings) is the first suspect when parity breaks. Each kernel's interpreter
(from its kernel.json, with its env block) runs a small probe; a missing kernel or
interpreter becomes a row saying so instead of a crash.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from string import Template

from groot_lib.workbench.kernels import KERNELS, REPO

PACKAGE = {"groot-original": "gr00t", "groot-lerobot": "lerobot"}

PROBE = r"""
import importlib, json, os, platform, sys
def imp(name):
    try:
        m = importlib.import_module(name)
        return {"ok": True, "version": getattr(m, "__version__", "?")}
    except BaseException as e:
        msg = (str(e).strip().splitlines() or [""])[0]
        return {"ok": False, "error": f"{type(e).__name__}: {msg}"[:160]}
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
out["HF_HUB_OFFLINE"] = os.environ.get("HF_HUB_OFFLINE") or "(unset)"
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
    return {"kernel": name, **json.loads(res.stdout[marker + 9:])}


def rows() -> list[dict]:
    with ThreadPoolExecutor(len(KERNELS)) as pool:  # torch imports are slow; probe both at once
        return list(pool.map(probe, KERNELS))


def _ver(r: dict, pkg: str) -> str:
    info = r.get(pkg) or {}
    return info.get("version", "?") if info.get("ok") else "no: " + info.get("error", "?")


def format_table(results: list[dict]) -> str:
    head = ["kernel", "python", "torch", "cuda", "transformers", "package", "flash_attn", "HF_HOME", "HF_HUB_OFFLINE"]
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
                      f"{pkg} {_ver(r, pkg)}", "yes" if r["flash_attn"]["ok"] else "no",
                      r["HF_HOME"], r["HF_HUB_OFFLINE"]])
    widths = [max(len(str(x)) for x in col) for col in zip(head, *table)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(head), line(["-" * w for w in widths])] + [line(t) for t in table])


def main() -> int:
    print(format_table(rows()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
