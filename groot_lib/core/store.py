"""Content-addressed outputs: a run whose inputs did not change reuses them instead of recomputing.

A key is the hash of everything that determines an output (checkpoint fingerprint,
tag, variant, seed, batch, observation recipe, device, package versions and the
groot_lib code that computes it), so changing tolerances or plots reruns no model,
while changing any of those recomputes. Entries live under
``<root>/<kind>/<tag>__<variant>__<key>.npz``; ``make clean-artifacts`` removes them.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Mapping

from groot_lib.core.atomic import _replace_from_temp

from groot_lib.paths import LIB as _LIB, STORE as DEFAULT_ROOT  # noqa: F401 - the store's default root


def module_closure(*entries: str) -> list[str]:
    """The groot_lib modules ``entries`` ('pipeline.replay', ...) import, directly or through one another, lazy
    imports inside functions included (read from the AST, nothing is imported): what can change their outputs."""
    import ast

    seen: set[str] = set()
    todo = list(entries)
    while todo:
        name = todo.pop()
        path = _LIB / (name.replace(".", "/") + ".py")
        if name in seen or not path.is_file():
            continue
        seen.add(name)
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            todo += [n[len("groot_lib."):] for n in names if n.startswith("groot_lib.")]
    return sorted(seen)


def code_digest(*entries: str) -> str:
    """Hash of the source of the groot_lib modules ``entries`` import (``module_closure``): editing any code an
    output goes through invalidates it. Derived from the imports, so a new helper module cannot be forgotten."""
    digest = hashlib.sha256()
    for name in module_closure(*entries):
        digest.update(name.encode() + b"\0" + (_LIB / (name.replace(".", "/") + ".py")).read_bytes())
    return digest.hexdigest()[:16]


def content_key(fields: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(dict(fields), sort_keys=True, default=str).encode()).hexdigest()[:20]


def file_digest(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:20]


def entry_path(root: str | os.PathLike, kind: str, tag: str, variant: str, key: str) -> Path:
    return Path(root) / kind / f"{tag}__{variant}__{key}.npz"


def publish(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Place a stored entry at ``dst`` (hard link when possible, else copy), atomically."""
    def fill(tmp: Path) -> None:
        tmp.unlink()
        try:
            os.link(src, tmp)
        except OSError:
            import shutil

            shutil.copyfile(src, tmp)

    return _replace_from_temp(Path(dst), fill)
