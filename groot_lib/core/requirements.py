"""What a LeRobot source tree requires that an environment lacks, read from its pyproject.toml.

Why: a bisect runs each LeRobot revision over the LeRobot env's installed dependencies (an overlay, never an
install). A revision that needs other versions must be refused by name, not judged on the wrong stack.
Run in the env whose packages count: ``python -m groot_lib.core.requirements <tree> [extra ...]`` prints JSON.
"""

from __future__ import annotations

import json
import sys
import tomllib
from importlib import metadata
from pathlib import Path


def declared(tree: Path, extras: tuple[str, ...] = ()) -> tuple[str, list[str]]:
    """(project name, requirement strings) of ``tree``'s pyproject.toml: its dependencies and those of ``extras``,
    self-referencing extras (``lerobot[transformers-dep]``) followed."""
    from packaging.requirements import Requirement

    path = Path(tree) / "pyproject.toml"
    try:
        project = tomllib.loads(path.read_text())["project"]
    except (OSError, KeyError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{path}: no readable [project] table ({type(exc).__name__}: {exc})") from None
    name, optional = project.get("name", ""), project.get("optional-dependencies", {})
    wanted, todo, seen = list(project.get("dependencies", [])), list(extras), set()
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for text in optional.get(extra, []):
            req = Requirement(text)
            if req.name.lower() == name.lower():
                todo += sorted(req.extras)
            else:
                wanted.append(text)
    return name, wanted


def unmet(tree: Path, extras: tuple[str, ...] = ()) -> list[str]:
    """Each requirement of ``tree`` this interpreter's installed packages do not satisfy, with what is installed."""
    from packaging.requirements import Requirement

    out = []
    for text in declared(tree, extras)[1]:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        try:
            version = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            out.append(f"{text} (not installed)")
            continue
        if req.specifier and not req.specifier.contains(version, prereleases=True):
            out.append(f"{text} (installed {version})")
    return out


if __name__ == "__main__":
    try:
        print(json.dumps({"unmet": unmet(Path(sys.argv[1]), tuple(sys.argv[2:]))}))
    except ValueError as exc:
        print(json.dumps({"error": str(exc)}))
