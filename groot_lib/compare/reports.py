"""How every gap changed between two reports (two LeRobot versions, two gr00t commits, two devices...).

Reads only the two folders' verdicts.json, so any two finished reports compare, old ones included.
``make compare-reports A=reports/<stamp> B=reports/<stamp>`` prints the table and writes an HTML page
with the table and a plot into B.
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import math
import sys
from pathlib import Path

from groot_lib.compare.numbers import fmt
from groot_lib.core.atomic import atomic_write_text
from groot_lib.core.errors import ParityError


def load_verdicts(folder: str | Path) -> dict:
    path = Path(folder) / "verdicts.json"
    if not path.is_file():
        raise ParityError(f"{folder} is not a finished report: no verdicts.json in it (a report whose notebooks "
                          "did not finish has nothing to compare)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ParityError(f"{path} is not valid JSON: {exc}") from None


def _gaps(verdicts: dict) -> dict[tuple[str, str, str], dict]:
    gaps = {(r["tag"], r["check"], r["tensor"]): {"max": r.get("max|delta|"), "verdict": r["verdict"],
                                                  "flag": r.get("flag", "")}
            for r in verdicts.get("rows", [])}
    for p in verdicts.get("precision", []):
        gaps[(p["tag"], f"precision {p['variant']}", "cross gap")] = {"max": p.get("cross gap"), "verdict": p["verdict"],
                                                                       "flag": ""}
    return gaps


def gap_changes(a: dict, b: dict) -> list[dict]:
    """One row per (tag, check, tensor) in either report: max |delta| in A and B, the ratio, verdicts."""
    ga, gb = _gaps(a), _gaps(b)
    rows = []
    for key in list(dict.fromkeys([*ga, *gb])):
        x, y = ga.get(key, {}), gb.get(key, {})
        va, vb = x.get("max"), y.get("max")
        ratio = (vb / va if va else (1.0 if vb == 0 else math.inf)) if va is not None and vb is not None else None
        rows.append({"tag": key[0], "check": key[1], "tensor": key[2], "A max|delta|": va, "B max|delta|": vb,
                     "B / A": ratio, "A": (x.get("verdict", "absent") + (" SUSPECT" if x.get("flag") else "")),
                     "B": (y.get("verdict", "absent") + (" SUSPECT" if y.get("flag") else ""))})
    return rows


def _provenance(verdicts: dict) -> str:
    source = verdicts.get("source", {})
    code = (verdicts.get("lerobot", {}).get("code") or {}).get("code")
    return f"{source.get('banner', '?')}; LeRobot code {code}"


def text_table(rows: list[dict]) -> str:
    cols = list(rows[0]) if rows else []
    cells = [[fmt(r[c]) for c in cols] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def plot(rows: list[dict]) -> bytes:
    """max |delta| of A and B per check, log scale (exact zeros drawn at the axis floor, absent rows not at all)."""
    from matplotlib.figure import Figure

    from groot_lib.compare.plots import png

    labels = [f"{r['tag'][:24]} / {r['check']} / {r['tensor']}" for r in rows]
    values = {side: [r[f"{side} max|delta|"] for r in rows] for side in ("A", "B")}
    positive = [v for side in values.values() for v in side if v]
    floor = min(positive) / 10 if positive else 1e-12
    fig = Figure(figsize=(10, 0.3 * len(rows) + 1.5), layout="constrained")
    ax = fig.add_subplot()
    for offset, side in ((-0.2, "A"), (0.2, "B")):
        widths = [math.nan if v is None else max(v, floor) for v in values[side]]  # absent: no bar
        ax.barh([i + offset for i in range(len(rows))], widths, height=0.4, label=side, log=True)
    ax.set_yticks(range(len(rows)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("max |delta| (log)")
    ax.legend()
    return png(fig)


def write_comparison(folder_a: str | Path, folder_b: str | Path) -> tuple[Path, list[dict]]:
    a, b = load_verdicts(folder_a), load_verdicts(folder_b)
    rows = gap_changes(a, b)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in (rows[0] if rows else []))
    body = "".join("<tr>" + "".join(f"<td>{html.escape(fmt(v))}</td>" for v in r.values()) + "</tr>" for r in rows)
    image = base64.b64encode(plot(rows)).decode() if rows else ""
    page = (f"<!doctype html><meta charset='utf-8'><title>gr00t-parity: report comparison</title>"
            "<style>body{font-family:sans-serif;max-width:1200px;margin:2em auto}table{border-collapse:collapse;"
            "font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px}</style>"
            f"<h1>How every gap changed</h1><p>A: {html.escape(str(folder_a))}<br>{html.escape(_provenance(a))}</p>"
            f"<p>B: {html.escape(str(folder_b))}<br>{html.escape(_provenance(b))}</p>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
            + (f"<img alt='max |delta| A vs B' src='data:image/png;base64,{image}'>" if image else ""))
    out = atomic_write_text(Path(folder_b) / f"compare-to-{Path(folder_a).name}.html", page)
    return out, rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make compare-reports", description=__doc__.splitlines()[0])
    parser.add_argument("a", help="the earlier report folder (A)")
    parser.add_argument("b", help="the later report folder (B)")
    args = parser.parse_args(argv)
    try:
        out, rows = write_comparison(args.a, args.b)
    except ParityError as exc:
        print(f"compare-reports: error: {exc}", file=sys.stderr)
        return 2
    print(text_table(rows))
    print(f"comparison: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
