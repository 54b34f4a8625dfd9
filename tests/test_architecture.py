"""The structure holds: both backends honour one contract; each package stays inside its environment;
each setting is defined once."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from groot_lib.backends import contract
from groot_lib.backends import lerobot as lerobot_backend
from groot_lib.backends import original as original_backend
from groot_lib.core import settings
from groot_lib.core.errors import ParityError

LIB = Path(contract.__file__).resolve().parents[1]
MODEL_STACK = {"torch", "transformers", "gr00t", "lerobot", "diffusers", "flash_attn"}
# package -> (third-party roots it must never import, even lazily; groot_lib packages it must never import)
NOTEBOOK_TOOLS = {"papermill", "nbclient", "nbconvert", "jupyter_client"}
BOUNDARIES = {
    "paths.py": (MODEL_STACK | {"numpy"}, {"backends", "pipeline", "workbench", "compare", "core", "tiny"}),
    "core": (MODEL_STACK | {"matplotlib", "pandas"} | NOTEBOOK_TOOLS, {"backends", "pipeline", "workbench", "compare"}),
    "compare": (MODEL_STACK | NOTEBOOK_TOOLS, {"backends", "pipeline", "workbench"}),
    "backends": (NOTEBOOK_TOOLS, {"pipeline", "workbench"}),
    # an investigation session drives the other kernel with jupyter_client, which every kernel env has (ipykernel's)
    "pipeline": (NOTEBOOK_TOOLS - {"jupyter_client"}, {"workbench"}),
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
    """Statically: every contract function, with the contract's parameters (names, kinds, defaults); the pipeline
    checks the same at load (contract.backend)."""
    assert backend.NAME and backend.KERNEL.startswith("groot-")
    assert contract.mismatches(backend) == []
    assert contract.backend(backend.__name__.rsplit(".", 1)[1]) is backend


def test_a_backend_that_departs_from_the_contract_is_named(monkeypatch):
    def sample(loaded, inputs, *, seed):  # the stage arguments left out
        return {}

    monkeypatch.setattr(lerobot_backend, "sample", sample)
    with pytest.raises(ParityError, match=r"groot_lib.backends.lerobot does not honour the backend contract: sample"):
        contract.backend("lerobot")


def test_the_pipeline_reaches_implementations_only_through_the_contract():
    """pipeline/ never imports a backend module by name: it asks contract.backend (which checks it)."""
    for path in sorted((LIB / "pipeline").glob("*.py")):
        for module in imports_of(path):
            assert module not in ("groot_lib.backends.original", "groot_lib.backends.lerobot"), (path, module)
        text = path.read_text()
        assert "import original" not in text and "import lerobot" not in text, path


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


def _functions():
    for path in sorted(LIB.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield path.relative_to(LIB), node


def test_no_library_function_is_long_or_takes_a_crowd_of_parameters():
    """At most 60 lines and 8 parameters (self and cls aside): beyond that a function hides closures or a settings
    object that wants a name (papermill's and nbmake's own size)."""
    too_long, too_many = [], []
    for path, node in _functions():
        args = node.args
        names = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)] + \
            [a.arg for a in (args.vararg, args.kwarg) if a is not None]
        count = len([n for n in names if n not in ("self", "cls")])
        if node.end_lineno - node.lineno + 1 > 60:
            too_long.append(f"{path}:{node.name} ({node.end_lineno - node.lineno + 1} lines)")
        if count > 8:
            too_many.append(f"{path}:{node.name} ({count} parameters)")
    assert not too_long and not too_many, (too_long, too_many)


def test_no_library_signature_spells_a_knob_default_again():
    """A knob's default lives in core/settings.KNOBS alone: a parameter named like a knob never carries that default
    as a literal (it takes settings.Knobs, or settings.default(name)); an empty or False default is no knob value."""
    defaults = {knob.name: knob.default for knob in settings.KNOBS if knob.default not in (None, "", False)}
    found = []
    for path, node in _functions():
        args = node.args
        positional = [*args.posonlyargs, *args.args]
        pairs = list(zip(positional[len(positional) - len(args.defaults):], args.defaults))
        pairs += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None]
        for arg, default in pairs:
            if arg.arg in defaults and isinstance(default, ast.Constant) and default.value == defaults[arg.arg]:
                found.append(f"{path}:{node.name}({arg.arg}={default.value!r})")
    assert not found, found
