"""Which code was under test: a content hash of a package's sources, and a checkout's git state.

Why: a version number or a commit does not pin code. A LeRobot developer testing a fix edits an
editable install at an unchanged version; a gr00t checkout can carry uncommitted edits. Stored
outputs are keyed by the *content* of the code that computed them, so an edit is always recomputed
(hashing LeRobot's ~500 files takes ~20 ms). stdlib only: every environment can call it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import subprocess
from pathlib import Path


def source_digest(root: str | Path) -> tuple[str, int]:
    """sha256 over every ``*.py`` under ``root`` (relative path + bytes, sorted); (hex[:16], file count)."""
    root = Path(root)
    digest, count = hashlib.sha256(), 0
    for path in sorted(root.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
        count += 1
    return digest.hexdigest()[:16], count


def package_root(name: str) -> Path | None:
    """Where ``import name`` would load the package from, found without importing it."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations))).resolve()
    return Path(spec.origin).resolve().parent if spec.origin else None


def git_state(path: str | Path) -> dict:
    """Commit of the checkout holding ``path`` and whether its tree differs from that commit."""
    def git(*args: str) -> str | None:
        try:
            proc = subprocess.run(["git", "-C", str(path), *args], capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.SubprocessError):
            return None
        return proc.stdout if proc.returncode == 0 else None

    commit = (git("rev-parse", "HEAD") or "").strip() or None
    if commit is None:
        if shutil.which("git") is None:  # no git here (a bare GPU machine): the commit still reads from .git
            return {"commit": _head_without_git(Path(path)), "modified": None, "changed_files": []}
        return {"commit": None, "modified": None, "changed_files": []}
    status = git("status", "--porcelain", "--untracked-files=normal", "--", ".") or ""
    changed = [line[3:] for line in status.splitlines() if line.strip()]
    return {"commit": commit, "modified": bool(changed), "changed_files": changed[:20]}


def _head_without_git(path: Path) -> str | None:
    """HEAD's commit read from the nearest ``.git`` folder (detached SHA, loose ref or packed ref)."""
    for root in (path, *path.parents):
        head = root / ".git" / "HEAD"
        if not head.is_file():
            continue
        text = head.read_text().strip()
        if not text.startswith("ref: "):
            return text or None
        ref = text[5:]
        if (root / ".git" / ref).is_file():
            return (root / ".git" / ref).read_text().strip()
        packed = root / ".git" / "packed-refs"
        for line in packed.read_text().splitlines() if packed.is_file() else []:
            if line.endswith(" " + ref):
                return line.split()[0]
        return None
    return None


def package_identity(name: str, *, with_git: bool = False) -> dict:
    """{package, root, code (content hash), files[, commit, modified, changed_files]}; code None if absent."""
    root = package_root(name)
    if root is None or not root.is_dir():
        return {"package": name, "root": None, "code": None, "files": 0}
    code, files = source_digest(root)
    identity = {"package": name, "root": str(root), "code": code, "files": files}
    if with_git:
        identity.update(git_state(root))
    return identity


def describe(identity: dict | None) -> str:
    """'lerobot code 0eb305cd996d4a69 (490 files)' / 'gr00t ab88b50c718f + uncommitted changes, code ...'."""
    if not identity or not identity.get("code"):
        return f"{(identity or {}).get('package', 'package')}: not installed"
    text = identity["package"]
    if identity.get("commit"):
        text += f" {identity['commit'][:12]}" + (" + uncommitted changes" if identity.get("modified") else " (clean tree)")
    return f"{text}, code {identity['code']} ({identity['files']} files)"
