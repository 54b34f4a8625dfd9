"""Build the workbench's virtual envs from the conda-format ``environment-*.yml`` files.

Why: gr00t (py3.10, transformers 4.57) and LeRobot (py3.12, transformers 5) cannot
share a process, so each gets its own env. The YAML files are the single source of
truth; this module turns one into an env at ``dest``:

* conda/mamba present -> ``<conda> env create -p dest -f yml`` (conda's own route);
* otherwise           -> interpreter from pyenv/PATH, ``uv venv --relocatable``,
  ``uv pip install -r <pip list>`` (``-e .`` resolved against the YAML's folder).

A stamp ``dest/.groot-env.json`` holds the sha256 of the YAML text (and the gr00t
checkout, if any); the env is rebuilt only when that changes. uv builds happen in a
temp dir next to ``dest`` and are renamed into place when complete; conda prefixes
cannot be moved, so they are built in place after the old env is moved aside. Either
way the stamp is written last, so a crash never leaves an env that looks valid.

CLI: ``python -m groot_lib.workbench.envs build <yml> <dest> [--gr00t-src PATH] [--python EXE]``
Stdlib only (PyYAML when importable), so it runs from the bare bootstrap venv;
``GROOT_ENV_BACKEND=uv`` skips conda even where it is installed.
"""
from __future__ import annotations

import argparse
import base64
import datetime
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from groot_lib.core.atomic import atomic_write_text
from groot_lib.core.errors import MissingPackageError, ParityError

STAMP = ".groot-env.json"
GR00T_INSTALL = "pth"  # how the stamp's gr00t checkout was installed; an env with another install is redone
from groot_lib.paths import REPO_ROOT as REPO


@dataclass
class EnvSpec:
    name: str
    python: str  # "3.10"
    conda: list[str] = field(default_factory=list)  # conda deps other than python
    pip: list[str] = field(default_factory=list)  # requirement lines, -e paths absolute
    path: Path | None = None


# ---------------------------------------------------------------- YAML parsing
def _strip_comment(line: str) -> str:
    quote = None
    for i, ch in enumerate(line):
        if ch in "\"'" and quote in (None, ch):
            quote = None if quote else ch
        elif ch == "#" and quote is None and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def _scalar(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return text


def _mini_yaml(text: str) -> dict:
    """Parse exactly the conda subset: top-level scalars/lists, one nested ``- pip:`` list."""
    doc: dict = {}
    key = None
    nested: list | None = None  # list under "- pip:"
    item_indent = None
    for raw in text.splitlines():
        line = _strip_comment(raw)
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        body = line.strip()
        is_item = body.startswith("- ") or body == "-"
        if indent == 0 and not (is_item and key):
            k, _, v = body.partition(":")
            key, nested, item_indent = k.strip(), None, None
            doc[key] = _scalar(v) if v.strip() else []
        elif is_item:
            value = body[1:].strip()
            if item_indent is None or indent <= item_indent:
                item_indent, nested = indent, None
                if value.endswith(":") and not value.startswith(("'", '"')):
                    nested = []
                    doc[key].append({value[:-1].strip(): nested})
                else:
                    doc[key].append(_scalar(value))
            elif nested is not None:
                nested.append(_scalar(value))
            else:
                raise ValueError(f"unsupported YAML nesting: {raw!r}")
        else:
            raise ValueError(f"unsupported YAML line: {raw!r}")
    return doc


def _load_yaml(text: str) -> dict:
    try:
        import yaml
    except ImportError:
        return _mini_yaml(text)
    return yaml.safe_load(text)


def _resolve_pip_line(line: str, base: Path) -> str:
    m = re.match(r"^(-e|--editable)(\s+|=)(.+)$", line.strip())
    if not m:
        return line.strip()
    target = m.group(3).strip()
    is_url = "://" in target or re.match(r"^(git|hg|svn|bzr)\+", target)
    if not is_url and (target.startswith((".", "/", "~")) or os.sep in target):
        target = str((base / os.path.expanduser(target)).resolve())
    return f"-e {target}"


def load_spec(yml: str | Path) -> EnvSpec:
    """Read an environment-*.yml into an EnvSpec (``-e .`` made absolute)."""
    yml = Path(yml).resolve()
    doc = _load_yaml(yml.read_text())
    spec = EnvSpec(name=str(doc.get("name") or yml.stem), python="", path=yml)
    for dep in doc.get("dependencies") or []:
        if isinstance(dep, dict) and "pip" in dep:
            spec.pip += [_resolve_pip_line(str(x), yml.parent) for x in dep["pip"] or []]
        elif isinstance(dep, str) and re.match(r"^python\s*[=<>]", dep):
            m = re.match(r"^python\s*=+\s*(\d+\.\d+)", dep)
            if not m:
                raise ParityError(f"{yml}: use 'python=X.Y', got {dep!r}")
            spec.python = m.group(1)
        elif isinstance(dep, str):
            spec.conda.append(dep)
    if not spec.python:
        raise ParityError(f"{yml}: no 'python=X.Y' in dependencies")
    return spec


# ---------------------------------------------------------------- tools lookup
def _version_of(exe: str | Path) -> str | None:
    try:
        out = subprocess.run([str(exe), "-c", "import sys;print('%d.%d.%d' % sys.version_info[:3])"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _vkey(p: Path) -> list[int]:  # .../versions/3.10.13/bin/python3.10 -> [3, 10, 13]
    return [int(x) if x.isdigit() else 0 for x in p.parents[1].name.split(".")]


def find_python(version: str) -> Path:
    """Absolute interpreter for ``version`` ("3.10"): pyenv versions first, then PATH."""
    roots = []
    try:
        roots.append(subprocess.run(["pyenv", "root"], capture_output=True, text=True).stdout.strip())
    except OSError:
        pass
    roots += [os.environ.get("PYENV_ROOT", ""), os.path.expanduser("~/.pyenv")]
    searched, seen = [], set()
    for root in filter(None, roots):
        pattern = f"{root}/versions/{version}.*/bin/python{version}"
        if pattern in seen:
            continue
        seen.add(pattern)
        searched.append(pattern)
        hits = sorted(Path(root, "versions").glob(f"{version}.*/bin/python{version}"), key=_vkey)
        for exe in reversed(hits):
            if (_version_of(exe) or "").startswith(version + "."):
                return exe
    for d in os.environ.get("PATH", "").split(os.pathsep):
        exe = Path(d or ".", f"python{version}")
        if exe.is_file() and (_version_of(exe) or "").startswith(version + "."):
            return exe.absolute()
    searched.append(f"python{version} on PATH")
    raise MissingPackageError(
        f"Python {version} not found. Searched: {'; '.join(searched)}. "
        f"Install it (e.g. `pyenv install {version}`) or pass --python /abs/path/python{version}."
    )


def find_uv() -> str:
    """uv from $UV, the running env (bootstrap), the repo's bootstrap venv, or PATH."""
    try:
        import uv  # the PyPI package ships the binary

        return uv.find_uv_bin()
    except (ImportError, FileNotFoundError):
        pass
    for cand in (os.environ.get("UV"), Path(sys.executable).parent / "uv",
                 REPO / ".envs/bootstrap/bin/uv", shutil.which("uv")):
        if cand and Path(cand).is_file():
            return str(cand)
    raise MissingPackageError(
        "uv not found (checked $UV, the running env, .envs/bootstrap/bin/uv, PATH). "
        "Run `make setup` (it bootstraps uv from PyPI) or `pip install uv`."
    )


def find_conda() -> str | None:
    if os.environ.get("GROOT_ENV_BACKEND", "auto") == "uv":
        return None
    for cand in (os.environ.get("MAMBA_EXE"), shutil.which("mamba"),
                 os.environ.get("CONDA_EXE"), shutil.which("conda")):
        if cand and Path(cand).is_file() and "micromamba" not in Path(cand).name:
            return cand
    return None


# ---------------------------------------------------------------- stamp + build
def _check_gr00t_src(src: str | Path, origin: str = "--gr00t-src") -> Path:
    src = Path(src).expanduser().resolve()
    missing = [p for p in ("gr00t/__init__.py", "pyproject.toml") if not (src / p).is_file()]
    if missing:
        raise ParityError(
            f"{origin} {src} is not an Isaac-GR00T checkout: missing {', '.join(missing)}. "
            "Point GR00T_SRC at the folder that contains gr00t/ and pyproject.toml."
        )
    return src


def read_stamp(dest: str | Path) -> dict | None:
    try:
        return json.loads((Path(dest) / STAMP).read_text())
    except (OSError, ValueError):
        return None


def _run(cmd: list, **kw) -> None:
    """Run quietly (an env build is one line, not hundreds of package lines); on failure show the tail."""
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    if proc.returncode:
        sys.stderr.write((proc.stdout + proc.stderr)[-6000:])
        raise subprocess.CalledProcessError(proc.returncode, [str(c) for c in cmd])


def _project_meta(src: Path) -> tuple[str, str]:
    """(name, version) from the checkout's pyproject.toml; a dynamic version reads as 0+unknown."""
    import tomllib

    project = tomllib.loads((src / "pyproject.toml").read_text()).get("project", {})
    return str(project.get("name") or "gr00t"), str(project.get("version") or "0+unknown")


def _install_gr00t(uv: str, env: Path, src: Path) -> None:
    """An editable gr00t made by hand: a .pth naming the checkout plus a minimal dist-info.

    Why: ``uv pip install -e`` builds with setuptools, which writes gr00t.egg-info into the user's own
    checkout. A .pth is all an editable install needs (imports load the checkout, edits are live); the
    dist-info (METADATA, PEP 610 direct_url.json, RECORD) lets importlib.metadata report the version
    and ``uv pip uninstall`` remove exactly these files. Nothing is written under ``src``.
    """
    python, (name, version) = env / "bin/python", _project_meta(src)
    _run([uv, "pip", "uninstall", "--python", python, name])  # any earlier install, whatever made it
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    dist = f"{re.sub(r'[^A-Za-z0-9.]+', '_', name)}-{version}.dist-info"
    files = {
        f"{name}-checkout.pth": f"{src}\n",
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist}/INSTALLER": "groot-parity\n",
        f"{dist}/REQUESTED": "",
        f"{dist}/direct_url.json": json.dumps({"url": src.as_uri(), "dir_info": {"editable": True}}) + "\n",
    }
    digest = lambda text: base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()  # noqa: E731
    record = [f"{rel},sha256={digest(text)},{len(text.encode())}" for rel, text in files.items()]
    (site / dist).mkdir(parents=True, exist_ok=True)
    (site / dist / "RECORD").write_text("\n".join(record + [f"{dist}/RECORD,,"]) + "\n")  # first: an interrupted
    for rel, text in files.items():  # install still uninstalls
        (site / rel).write_text(text)
    if (src / f"{name}.egg-info").is_dir():
        print(f"note: {src / f'{name}.egg-info'} is left from an earlier `make setup` (or your own `pip install -e`); "
              "the workbench no longer needs it, so you may delete it.")


def build(yml: str | Path, dest: str | Path, *, gr00t_src: str | Path | None = None,
          python: str | Path | None = None, force: bool = False) -> str:
    """Make ``dest`` match ``yml``. Returns "up to date", "built" or "updated".

    ``gr00t_src``: None keeps the checkout recorded in the stamp, "" drops it (rebuild).
    """
    yml, dest = Path(yml).resolve(), Path(dest).absolute()
    text = yml.read_text()
    spec = load_spec(yml)
    old = read_stamp(dest)
    origin = "--gr00t-src"
    if gr00t_src is None and old and old.get("gr00t_src"):
        gr00t_src, origin = old["gr00t_src"], f"gr00t_src recorded in {dest / STAMP}"  # sticky
    src = _check_gr00t_src(gr00t_src, origin) if gr00t_src else None
    stamp = {"yaml": str(yml), "yaml_sha256": hashlib.sha256(text.encode()).hexdigest(),
             "gr00t_src": str(src) if src else None, "gr00t_install": GR00T_INSTALL if src else None}
    same_yaml = old and old.get("yaml_sha256") == stamp["yaml_sha256"] and (dest / "bin/python").exists()
    if same_yaml and not force and old.get("builder") == "uv" and not old.get("bytecode"):
        _compile_bytecode(dest)  # an env built before uv was asked to compile: done in place, no rebuild
        _write_stamp(dest, {**old, "bytecode": True})
    if same_yaml and not force and all(old.get(k) == stamp[k] for k in ("gr00t_src", "gr00t_install")):
        os.utime(dest / STAMP)  # keep make's timestamp check satisfied
        print(f"{dest}: up to date ({yml.name})")
        return "up to date"
    if same_yaml and not force and src:  # only the gr00t checkout (or how it is installed) changed
        (dest / STAMP).unlink()
        _install_gr00t(find_uv(), dest, src)
        _write_stamp(dest, {**old, **stamp})
        print(f"{dest}: gr00t now from {src}")
        return "updated"

    _check_replaceable(dest)
    conda = find_conda()
    info = _build_conda(conda, yml, dest) if conda else _build_uv(spec, dest, python)
    if src:
        _install_gr00t(find_uv(), dest, src)
    _write_stamp(dest, {**stamp, **info})
    print(f"{dest}: built from {yml.name}")
    return "built"


def _compile_bytecode(dest: Path) -> None:
    print(f"{dest}: compiling its packages' bytecode (once; imports in every kernel then skip it)...", flush=True)
    _run([dest / "bin/python", "-m", "compileall", "-q", "-j", "0", *sorted(dest.glob("lib/python3*/site-packages"))])


def _write_stamp(dest: Path, stamp: dict) -> None:
    stamp["built_at"] = datetime.datetime.now().isoformat(timespec="seconds")
    atomic_write_text(dest / STAMP, json.dumps(stamp, indent=2) + "\n")


def _check_replaceable(dest: Path) -> None:
    """Refuse to delete a folder that is not an env we (or conda/venv) made."""
    if dest.exists() and any(dest.iterdir()) and not any(
            (dest / m).exists() for m in (STAMP, "pyvenv.cfg", "conda-meta")):
        raise ParityError(f"{dest} exists and is not an environment; refusing to replace it.")


def _aside(dest: Path) -> Path | None:
    """Move an existing env out of the way (it stops looking valid at once)."""
    if not dest.exists():
        return None
    trash = dest.with_name(f".{dest.name}.old")
    shutil.rmtree(trash, ignore_errors=True)
    os.replace(dest, trash)
    return trash


def _build_uv(spec: EnvSpec, dest: Path, python: str | Path | None) -> dict:
    extra = [d for d in spec.conda if d.split("=")[0].strip() != "pip"]
    if extra:
        raise MissingPackageError(
            f"{spec.path}: conda packages {extra} need conda/mamba, which is not installed; "
            "without conda only 'python' and 'pip' may be listed outside the pip: section."
        )
    interp = Path(python).absolute() if python else find_python(spec.python)
    got = _version_of(interp)
    if not (got or "").startswith(spec.python + "."):
        raise MissingPackageError(
            f"{interp} is Python {got or '(does not run)'}, but {spec.path} needs {spec.python}.")
    uv = find_uv()
    tmp = dest.with_name(f".{dest.name}.building")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    _run([uv, "venv", "--quiet", "--relocatable", "--python", interp, tmp])
    reqs = tmp / "requirements.groot-env.txt"
    reqs.write_text("\n".join((["pip"] if "pip" in spec.conda else []) + spec.pip) + "\n")
    print(f"{dest}: installing {spec.name} with uv (minutes when its packages are not cached yet)...", flush=True)
    # Bytecode compiled here, as pip does by default and uv does not: with PYTHONDONTWRITEBYTECODE set (CI images
    # set it) every kernel would otherwise recompile torch, transformers and the implementation on each import,
    # measured 15.8 -> 7.4 s for LeRobot's stack and 10.8 -> 5.5 s for gr00t's on 2 cores.
    _run([uv, "pip", "install", "--compile-bytecode", "--python", tmp / "bin/python", "-r", reqs])
    reqs.unlink()
    trash = _aside(dest)
    os.replace(tmp, dest)
    if trash:
        shutil.rmtree(trash, ignore_errors=True)
    return {"builder": "uv", "interpreter": str(interp), "python": got, "bytecode": True}


def _build_conda(conda: str, yml: Path, dest: Path) -> dict:
    trash = _aside(dest)
    if trash:
        shutil.rmtree(trash, ignore_errors=True)
    _run([conda, "env", "create", "-p", dest, "-f", yml])  # pip runs in yml's folder: `-e .` works
    return {"builder": Path(conda).name, "python": _version_of(dest / "bin/python")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m groot_lib.workbench.envs", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="build/refresh one env from its YAML")
    b.add_argument("yml")
    b.add_argument("dest")
    b.add_argument("--gr00t-src", help="Isaac-GR00T checkout to install editable, nothing written into it "
                   "(default: keep the recorded one; 'none' drops it)")
    b.add_argument("--python", help="interpreter for the uv route instead of searching pyenv/PATH "
                   "(conda, when present, brings its own; GROOT_ENV_BACKEND=uv skips conda)")
    b.add_argument("--force", action="store_true", help="rebuild even if the stamp matches")
    args = ap.parse_args(argv)
    try:
        src = "" if (args.gr00t_src or "").lower() == "none" else args.gr00t_src
        build(args.yml, args.dest, gr00t_src=src, python=args.python, force=args.force)
    except subprocess.CalledProcessError as exc:
        print(f"error: command failed ({exc.returncode}): {' '.join(map(str, exc.cmd))}", file=sys.stderr)
        return 1
    except ParityError as exc:  # the message is the report
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
