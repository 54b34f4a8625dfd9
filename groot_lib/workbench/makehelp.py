"""``make help`` (make's default goal): the targets, then every report knob with its make variable.

Why: a plain ``make`` used to build the envs (minutes, ~5 GB) when it should say what is there. The
targets' lines come from the ``## `` comment above each target in the Makefile, and the knobs from
``settings.KNOBS``, so a new knob or target shows up here without a second copy of its help.
stdlib only: it runs with the bare Python 3.12 before any env exists.

CLI: ``python -m groot_lib.workbench.makehelp [Makefile]``
"""
from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

from groot_lib.core.settings import KNOBS

from groot_lib.paths import MAKEFILE
TARGET = re.compile(r"^([A-Za-z][\w-]*)\s*:(?!=)")


def targets(makefile: Path = MAKEFILE) -> list[tuple[str, str]]:
    """(target, help) for every target whose line follows ``## help`` comment lines."""
    found, doc = [], []
    for line in makefile.read_text().splitlines():
        if line.startswith("## "):
            doc.append(line[3:].strip())
            continue
        match = TARGET.match(line)
        if match and doc:
            found.append((match.group(1), " ".join(doc)))
        doc = []
    return found


def _default(value) -> str:
    return "" if value is None else str(int(value)) if isinstance(value, bool) else str(value)


def knob_rows() -> list[dict[str, str]]:
    """One row per knob: name, make variable, flag, environment variable ("" when none), default as make takes it
    ("" when empty), help. ``make help`` (knobs with a make variable) and the docs' settings table
    (``workbench/docs_hooks.py``) both render these."""
    return [{"name": knob.name, "make": knob.make or "", "flag": knob.flag, "env": knob.env or "",
             "default": _default(knob.default), "help": knob.help} for knob in KNOBS]


def render(makefile: Path = MAKEFILE, width: int = 110) -> str:
    listed = targets(makefile)
    pad = max(len(name) for name, _ in listed) + 2
    wrap = lambda text, indent: textwrap.fill(text, width, initial_indent=" " * indent,  # noqa: E731
                                              subsequent_indent=" " * indent)
    lines = ["usage: make <target> [VAR=value ...]", "", "targets:"]
    lines += [f"  {name:<{pad}}{wrap(text, pad + 2).lstrip()}" for name, text in listed]
    lines += ["", "report knobs, as make report VAR=value, shown with their defaults [and environment variable, and flag of",
              "./gr00t-parity report]; every value is checked before any kernel starts:"]
    for row in (row for row in knob_rows() if row["make"]):
        env = f"${row['env']}, " if row["env"] else ""
        lines.append(f"  {row['make']}={row['default']}  [{env}{row['flag']}]")
        lines.append(wrap(row["help"], 6))
    return "\n".join(lines)


def knob_flags() -> str:
    """``MAKE:--flag:any|cmdline`` for every knob with a make variable: what the Makefile's REPORT_ARGS forwards
    (``cmdline``: only when given on make's command line), so the Makefile lists no knob itself."""
    return " ".join(f"{k.make}:{k.flag}:{'any' if k.make_from_shell else 'cmdline'}" for k in KNOBS if k.make)


if __name__ == "__main__":
    print(knob_flags() if sys.argv[1:] == ["--flags"] else render(*(Path(a) for a in sys.argv[1:2])))
