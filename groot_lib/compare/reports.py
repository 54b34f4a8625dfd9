"""How every gap changed between two reports (two LeRobot versions, two gr00t commits, two devices...).

Reads only the two folders' verdicts.json, so any two finished reports compare, old ones included.
``make compare-reports A=<report> B=<report>`` prints a warning per differing setting, then what got worse,
then every gap, and writes the same as an HTML page with a plot into B (``compare-to-<A>.html``). A report is
a folder, a bare stamp (``20261207T031742Z``), ``latest`` or ``previous`` (the newest and second-newest
finished report); the last three are looked up under ``reports/`` (``--reports-root`` names another root).

Exit status, so a script or CI can gate on it (GNU make turns any non-zero status into its own 2; its
``Error 1`` / ``Error 2`` line names this one):

* 0: nothing got worse (``fixed`` checks, and ``new`` ones that pass, included);
* 1: something got worse: a FLIP (a check's verdict is worse in B by PASS < SUSPECT < FAIL, or a check new in
  B is SUSPECT or FAIL) or a check GONE (in A, absent in B: a dropped tag, variant or check means B verifies
  less, which must not read as "nothing got worse");
* 2: a report cannot be read (no such folder, no verdicts.json, invalid JSON).

Settings warnings: ``SETTINGS`` names what changes what a verdict means (tolerances, noise, device, checkpoint,
where the original's outputs came from). A setting is compared only when both reports record it (old reports,
and live runs that record no checkpoint fingerprint, are not warned on). The code under test (the gr00t commit,
LeRobot's code) is what a comparison is for: it is shown as each report's provenance, never warned on.
"""

from __future__ import annotations

import argparse
import base64
import html
import math
import sys
from pathlib import Path

from groot_lib.compare.numbers import VERDICT_COLOURS, fmt
from groot_lib.core import report_folder
from groot_lib.core.atomic import atomic_write_text
from groot_lib.core.errors import ParityError

NAMED = {"latest": 0, "previous": 1}  # index into the finished reports, newest first
RANK = {"PASS": 0, "SUSPECT": 1, "FAIL": 2}  # any other verdict ranks as FAIL: it is not a pass
WORSE = ("FLIP", "GONE")  # the changes that make the exit status 1


def _at(record: dict, *keys):
    for key in keys:
        record = record.get(key) if isinstance(record, dict) else None
    return record


def _devices(verdicts) -> str | None:
    return ",".join(sorted({str(r["device"]) for r in verdicts.replays if r.get("device")})) or None


# name -> how to read it from a report's verdicts (report_folder.Verdicts; None: not recorded there)
SETTINGS = {
    "atol": lambda v: v.settings.get("atol"),
    "rtol": lambda v: v.settings.get("rtol"),
    "precision k": lambda v: v.settings.get("precision_k"),
    "noise mode": lambda v: v.settings.get("noise_mode"),
    "checkpoint": lambda v: v.settings.get("checkpoint"),
    "checkpoint fingerprint": lambda v: v.settings.get("checkpoint fingerprint") or _at(v.source, "recording",
                                                                                        "checkpoint", "fingerprint"),
    "seed": lambda v: v.settings.get("seed"),
    "batch size": lambda v: v.settings.get("batch_size"),
    "device": _devices,  # the device LeRobot ran on, per its replays
    "source of the original's outputs": lambda v: v.source.get("mode"),  # live, recorded or imported
    "recordings device": lambda v: _at(v.source, "recording", "producer", "device"),
}


def resolve(name: str, root: Path = report_folder.ROOT) -> Path:
    """A report folder from what a person types: a path, a bare stamp under ``root``, latest or previous (finished
    reports with a verdicts.json only: a run in progress has nothing to compare yet)."""
    path = Path(name).expanduser()
    if path.is_dir():
        return path
    if report_folder.STAMP.match(name):
        if (Path(root) / name).is_dir():
            return Path(root) / name
        raise ParityError(f"no report folder {name} under {root} (`ls {root}` lists the reports there)")
    if name in NAMED:
        found = report_folder.finished(root, having=report_folder.VERDICTS)
        if len(found) > NAMED[name]:
            return found[NAMED[name]]
        raise ParityError(f"'{name}' needs {NAMED[name] + 1} finished report(s) under {root}, found {len(found)}: "
                          "run `make report` first")
    raise ParityError(f"{name}: no such folder; give a report folder, a bare stamp like 20261207T031742Z "
                      f"(under {root}), latest or previous")


def _gaps(verdicts) -> dict[tuple[str, str, str], dict]:
    gaps = {(r.tag, r.check, r.tensor): {"max": r.max_abs, "verdict": r.status} for r in verdicts.rows}
    for p in verdicts.precision:
        gaps[(p.tag, f"precision {p.variant}", "cross gap")] = {"max": p.cross_gap, "verdict": p.verdict}
    return gaps


def _change(va: str | None, vb: str | None) -> str:
    """FLIP/GONE got worse (exit 1); fixed/new did not; "" is unchanged."""
    if vb is None:
        return "GONE"
    rank_a, rank_b = RANK.get(va, 2) if va else 0, RANK.get(vb, 2)  # a check new in B is measured against PASS
    if rank_b > rank_a:
        return "FLIP"
    return "fixed" if rank_b < rank_a else ("new" if va is None else "")


def gap_changes(a, b) -> list[dict]:
    """One row per (tag, check, tensor) in either report: the change, max |delta| in A and B, the ratio (None when
    either is not a number: absent, or null for a shape mismatch), the verdicts ("absent" when missing)."""
    ga, gb = _gaps(a), _gaps(b)
    rows = []
    for key in list(dict.fromkeys([*ga, *gb])):
        x, y = ga.get(key, {}), gb.get(key, {})
        va, vb = x.get("max"), y.get("max")
        ratio = (vb / va if va else (1.0 if vb == 0 else math.inf)) if va is not None and vb is not None else None
        rows.append({"change": _change(x.get("verdict"), y.get("verdict")), "tag": key[0], "check": key[1],
                     "tensor": key[2], "A max|delta|": va, "B max|delta|": vb, "B / A": ratio,
                     "A": x.get("verdict", "absent"), "B": y.get("verdict", "absent")})
    return rows


def setting_warnings(a, b) -> list[str]:
    """One line per setting in ``SETTINGS`` that both reports record and that differs."""
    lines = []
    for name, read in SETTINGS.items():
        va, vb = read(a), read(b)
        if va is not None and vb is not None and va != vb:
            lines.append(f"warning: {name} differs: A {fmt(va)}, B {fmt(vb)}")
    return lines


def _value(row: dict, side: str) -> str:
    return "absent" if row[side] == "absent" else fmt(row[f"{side} max|delta|"])


def _cells(row: dict) -> list[str]:
    return [_value(row, c[0]) if c in ("A max|delta|", "B max|delta|") else fmt(v) for c, v in row.items()]


def flip_lines(rows: list[dict]) -> list[str]:
    """``FLIP PASS -> FAIL  tag / check / tensor  max|delta| 0 -> 0.08``, one per row that got worse."""
    return [f"{r['change']} {r['A']} -> {r['B']}  {r['tag']} / {r['check']} / {r['tensor']}  "
            f"max|delta| {_value(r, 'A')} -> {_value(r, 'B')}" for r in rows if r["change"] in WORSE]


def text_table(rows: list[dict]) -> str:
    cols = list(rows[0]) if rows else []
    cells = [_cells(r) for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def figure(rows: list[dict]):
    """max |delta| of A and B per check, log scale. A log axis has no 0: exact zeros, nulls and absent checks get
    no bar but a word at the left edge ("0", "n/a", "absent"), so 0 never reads as a tiny number."""
    from matplotlib.figure import Figure

    positive = [v for r in rows for v in (r["A max|delta|"], r["B max|delta|"]) if v]
    lo, hi = (min(positive) / 10, max(positive) * 3) if positive else (1e-8, 1.0)
    fig = Figure(figsize=(10, 0.3 * len(rows) + 1.5), layout="constrained")
    ax = fig.add_subplot()
    ax.set_xscale("log")
    for offset, side, colour in ((-0.2, "A", "C0"), (0.2, "B", "C1")):
        ys = [i + offset for i in range(len(rows))]
        values = [r[f"{side} max|delta|"] for r in rows]
        ax.barh([y for y, v in zip(ys, values) if v], [v for v in values if v], height=0.4, label=side, color=colour)
        for y, r in zip(ys, rows):
            if not r[f"{side} max|delta|"]:  # 0, null or absent: written, not drawn
                ax.text(0.003, y, f"{side}: {_value(r, side)}", transform=ax.get_yaxis_transform(), va="center",
                        fontsize=7, color=colour)
    ax.set_xlim(lo, hi)
    labels = [f"{r['change'] + ' ' if r['change'] in WORSE else ''}{r['tag'][:24]} / {r['check']} / {r['tensor']}"
              for r in rows]
    ax.set_yticks(range(len(rows)), labels, fontsize=7)
    for label, r in zip(ax.get_yticklabels(), rows):
        if r["change"] in WORSE:
            label.set_color("#c00")
            label.set_fontweight("bold")
    ax.invert_yaxis()
    ax.set_xlabel("max |delta| (log; exact zeros, n/a and absent checks are written at the left, not drawn)")
    ax.legend()
    return fig


def plot(rows: list[dict]) -> bytes:
    from groot_lib.compare.plots import png

    return png(figure(rows))


def _provenance(verdicts) -> str:
    code = (verdicts.lerobot.get("code") or {}).get("code")
    return f"{verdicts.source.get('banner', '?')}; LeRobot code {code}"


def _row_class(row: dict) -> str:
    if row["change"] in WORSE:
        return " class='fail'" if row["B"] in ("FAIL", "absent") else " class='suspect'"
    return " class='pass'" if row["change"] == "fixed" else ""


def _html_table(rows: list[dict]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
    body = "".join(f"<tr{_row_class(r)}>" + "".join(f"<td>{html.escape(c)}</td>" for c in _cells(r)) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _page(folder_a, folder_b, a, b, rows: list[dict], warnings: list[str]) -> str:
    worse = [r for r in rows if r["change"] in WORSE]
    style = "".join(f".{v.lower()}{{{VERDICT_COLOURS[v]};font-weight:bold}}" for v in ("FAIL", "SUSPECT")) + \
        f".pass{{{VERDICT_COLOURS['PASS']}}}"
    image = base64.b64encode(plot(rows)).decode() if rows else ""
    return (f"<!doctype html><meta charset='utf-8'><title>gr00t-parity: report comparison</title>"
            "<style>body{font-family:sans-serif;max-width:1200px;margin:2em auto}table{border-collapse:collapse;"
            f"font-size:13px}}td,th{{border:1px solid #ccc;padding:3px 6px}}{style}</style>"
            f"<h1>How every gap changed</h1><p>A: {html.escape(str(folder_a))}<br>{html.escape(_provenance(a))}</p>"
            f"<p>B: {html.escape(str(folder_b))}<br>{html.escape(_provenance(b))}</p>"
            + "".join(f"<p class='suspect'>{html.escape(w)}</p>" for w in warnings)
            + (f"<h2 class='fail'>Got worse: {len(worse)} check(s)</h2>{_html_table(worse)}" if worse
               else "<h2>Nothing got worse</h2>")
            + (f"<h2>Every gap</h2>{_html_table(rows)}" if rows else "<p><em>no checks in either report</em></p>")
            + (f"<img alt='max |delta| A vs B' src='data:image/png;base64,{image}'>" if image else ""))


def _compare(folder_a, folder_b) -> tuple[Path, list[dict], list[str], object, object]:
    a, b = report_folder.read_verdicts(Path(folder_a)), report_folder.read_verdicts(Path(folder_b))
    rows, warnings = gap_changes(a, b), setting_warnings(a, b)
    page = _page(folder_a, folder_b, a, b, rows, warnings)
    out = atomic_write_text(Path(folder_b) / f"compare-to-{Path(folder_a).name}.html", page)
    return out, rows, warnings, a, b


def write_comparison(folder_a: str | Path, folder_b: str | Path) -> tuple[Path, list[dict]]:
    """The HTML page (into B) and the rows of ``gap_changes``."""
    out, rows, *_ = _compare(folder_a, folder_b)
    return out, rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make compare-reports", description=__doc__.splitlines()[0])
    parser.add_argument("a", help="the earlier report (A): a folder, a bare stamp, latest or previous")
    parser.add_argument("b", help="the later report (B): a folder, a bare stamp, latest or previous")
    parser.add_argument("--reports-root", type=Path, default=report_folder.ROOT,
                        help="where bare stamps, latest and previous are looked up (default: reports/)")
    args = parser.parse_args(argv)
    try:
        folder_a, folder_b = resolve(args.a, args.reports_root), resolve(args.b, args.reports_root)
        out, rows, warnings, a, b = _compare(folder_a, folder_b)
    except ParityError as exc:
        print(f"compare-reports: error: {exc}", file=sys.stderr)
        return 2
    flips = flip_lines(rows)
    print("\n".join([f"A: {folder_a}  ({_provenance(a)})", f"B: {folder_b}  ({_provenance(b)})", *warnings, ""]))
    print("\n".join([f"got worse: {len(flips)} check(s)", *flips, ""]) if flips else "nothing got worse\n")
    print(text_table(rows))
    print(f"comparison: {out}")
    return 1 if flips else 0


if __name__ == "__main__":
    sys.exit(main())
