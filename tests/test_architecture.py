"""The structure holds: both backends honour one contract; each package stays inside its environment;
each setting is defined once."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from groot_lib.backends import contract
from groot_lib.backends import lerobot as lerobot_backend
from groot_lib.backends import original as original_backend
from groot_lib.core import settings

LIB = Path(contract.__file__).resolve().parents[1]
MODEL_STACK = {"torch", "transformers", "gr00t", "lerobot", "diffusers", "flash_attn"}
# package -> (third-party roots it must never import, even lazily; groot_lib packages it must never import)
NOTEBOOK_TOOLS = {"papermill", "nbclient", "nbconvert", "jupyter_client"}
BOUNDARIES = {
    "paths.py": (MODEL_STACK | {"numpy"}, {"backends", "pipeline", "workbench", "compare", "core", "tiny"}),
    "core": (MODEL_STACK | {"matplotlib", "pandas"} | NOTEBOOK_TOOLS, {"backends", "pipeline", "workbench", "compare"}),
    "compare": (MODEL_STACK | NOTEBOOK_TOOLS, {"backends", "pipeline", "workbench"}),
    "backends": (NOTEBOOK_TOOLS, {"pipeline", "workbench"}),
    "pipeline": (NOTEBOOK_TOOLS, {"workbench"}),
    "workbench": (MODEL_STACK, {"backends"}),
    "tiny/layout.py": (MODEL_STACK | {"numpy"}, {"backends", "pipeline", "workbench", "compare", "core"}),
}


def imports_of(path: Path) -> set[str]:
    """Every module an AST imports, at any depth (function-level lazy imports included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            if node.module == "groot_lib":
                found |= {f"groot_lib.{alias.name}" for alias in node.names}
    return found


@pytest.mark.parametrize("where", sorted(BOUNDARIES))
def test_environment_boundary(where):
    """Each package runs in its environment: not one module it reaches, through any chain of groot_lib imports
    (lazy ones inside functions included), imports what that environment lacks."""
    from groot_lib.core.store import module_closure

    banned, banned_packages = BOUNDARIES[where]
    files = [LIB / where] if where.endswith(".py") else sorted((LIB / where).rglob("*.py"))
    assert files
    for path in files:
        entry = ".".join(path.relative_to(LIB).with_suffix("").parts)
        for reached in module_closure(entry):
            for module in imports_of(LIB / (reached.replace(".", "/") + ".py")):
                root = module.split(".")[0]
                via = "" if reached == entry else f" (reached through {reached})"
                assert root not in banned, f"{path.relative_to(LIB)} imports {module}{via}: {where} must run without it"
                if root == "groot_lib" and module.count("."):
                    assert module.split(".")[1] not in banned_packages, f"{path.relative_to(LIB)} imports {module}{via}"


@pytest.mark.parametrize("backend", [original_backend, lerobot_backend], ids=["original", "lerobot"])
def test_backends_honour_one_contract(backend):
    assert backend.NAME and backend.KERNEL.startswith("groot-")
    for name in contract.FUNCTIONS:
        ours, reference = inspect.signature(getattr(backend, name)), inspect.signature(getattr(original_backend, name))
        assert [(p.name, p.kind, p.default) for p in ours.parameters.values()] == \
               [(p.name, p.kind, p.default) for p in reference.parameters.values()], f"{backend.__name__}.{name}"


def test_each_setting_is_defined_once():
    """Environment variables and defaults of the knobs appear in groot_lib only in core/settings.py."""
    texts = {p: p.read_text() for p in LIB.rglob("*.py") if p.name != "settings.py"}
    for knob in settings.KNOBS:
        if knob.env:
            holders = [str(p.relative_to(LIB)) for p, t in texts.items() if f'"{knob.env}"' in t]
            assert not holders, f"{knob.env} spelled outside core/settings.py: {holders}"
    default_variants = settings.BY_NAME["variants"].default
    assert not [p for p, t in texts.items() if f'"{default_variants}"' in t and "workflow" in p.name]
    assert sum('"fp32-sdpa"' in t for t in texts.values()) == 1  # variants.DEFAULT_VARIANT, nowhere else
