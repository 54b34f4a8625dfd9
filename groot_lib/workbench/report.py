"""HTML reports: executed notebooks exported with code hidden, plus an index page.

The index's first lines say where the original outputs came from (live or
recorded), then the verdict summary, then links; a failed run still gets one.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

from groot_lib.core.atomic import atomic_write_text
from groot_lib.workbench.summary import status_of


# CDN scripts nbconvert's template adds (require.js, MathJax, mermaid): a report needs none of them, and a
# page that fetches them is neither offline nor self-contained.
_REMOTE_SCRIPT = re.compile(r"<script\b[^>]*>(?:(?!</script>).)*?</script>", re.S)


def _offline(body: str) -> str:
    return _REMOTE_SCRIPT.sub(lambda m: "" if re.search(r"https?://", m.group(0)) else m.group(0), body)


def _collapse_stderr(nb) -> None:
    """Move each cell's stderr (library warnings, LeRobot's benign 'MISSING' notice) into one collapsed log,
    so the pages show results, not red boxes; the executed .ipynb keeps the raw streams."""
    for cell in nb.cells:
        outputs = cell.get("outputs", [])
        logs = [o for o in outputs if o.get("output_type") == "stream" and o.get("name") == "stderr"]
        if not logs:
            continue
        text = html.escape("".join(o.get("text", "") for o in logs))
        cell.outputs = [o for o in outputs if o not in logs] + [{
            "output_type": "display_data", "metadata": {},
            "data": {"text/html": f"<details class='log'><summary>log ({len(text.splitlines())} lines of stderr)"
                                  f"</summary><pre>{text}</pre></details>"}}]


def export_html(notebook: Path, *, hide_code: bool = True) -> Path:
    """Executed notebook -> sibling .html (atomic): code hidden, stderr collapsed, no remote scripts."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(str(notebook), as_version=4)
    _collapse_stderr(nb)
    exporter = HTMLExporter(exclude_input=hide_code, exclude_input_prompt=hide_code, exclude_output_prompt=hide_code)
    body, _ = exporter.from_notebook_node(nb)
    return atomic_write_text(notebook.with_suffix(".html"), _offline(body))


REPORT_STAMP = re.compile(r"^\d{8}T\d{6}Z(-\d+)?$")


def report_folders(root: Path) -> list[Path]:
    """The ``<UTC stamp>`` report folders under ``root``, newest first."""
    return sorted((p for p in Path(root).iterdir() if p.is_dir() and REPORT_STAMP.match(p.name)),
                  key=lambda p: p.name, reverse=True) if Path(root).is_dir() else []


def clean_reports(root: Path, keep: int) -> list[Path]:
    """Remove all but the ``keep`` newest report folders under ``root`` (only ``<UTC stamp>`` folders)."""
    import shutil

    if keep < 0:
        raise ValueError(f"KEEP must be >= 0, got {keep}")
    removed = report_folders(root)[keep:]
    for folder in removed:
        shutil.rmtree(folder)
    return removed


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m groot_lib.workbench.report")
    sub = parser.add_subparsers(dest="command", required=True)
    clean = sub.add_parser("clean", help="keep only the newest report folders")
    clean.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[2] / "reports")
    clean.add_argument("--keep", type=int, default=5)
    args = parser.parse_args(argv)
    removed = clean_reports(args.root, args.keep)
    print(f"removed {len(removed)} report folder(s) from {args.root}, kept the newest {args.keep}")
    return 0


def _table(rows: list[dict]) -> str:
    from groot_lib.compare.numbers import fmt

    if not rows:
        return "<p><em>no verdicts</em></p>"
    cols = list(rows[0])
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)

    def cell(value):
        style = {"FAIL": ' class="fail"', "PASS": ' class="pass"', "SUSPECT": ' class="suspect"'}.get(value, "")
        return f"<td{style}>{html.escape(fmt(value))}</td>"

    body = "".join("<tr>" + "".join(cell(r.get(c)) for c in cols) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _anchor(tag: str) -> str:
    return "tag-" + re.sub(r"[^A-Za-z0-9_-]", "-", tag)


def _matrix(rows: list[dict], precision: list[dict]) -> str:
    """Embodiment x check, coloured, each cell linking to that embodiment's section below."""
    from groot_lib.compare.numbers import fmt

    checks = list(dict.fromkeys(r["check"] for r in rows))
    variants = list(dict.fromkeys(p["variant"] for p in precision))
    head = "".join(f"<th>{html.escape(c)}</th>" for c in checks + [f"precision {v}" for v in variants])
    body = []
    for tag in dict.fromkeys(r["tag"] for r in rows):
        cells = []
        for check in checks:
            group = [r for r in rows if r["tag"] == tag and r["check"] == check]
            worst = max((r.get("max|delta|") for r in group if r.get("max|delta|") is not None), default=None)
            status = status_of(group)
            cells.append(f"<td class='{status.lower()}'><a href='#{_anchor(tag)}'>{status}<br><small>max "
                         f"{fmt(worst)}</small></a></td>")
        for variant in variants:
            row = next((p for p in precision if p["tag"] == tag and p["variant"] == variant), None)
            status = row["verdict"] if row else "n/a"
            ratio = (row["cross gap"] / row["bound"] * row["k"]) if row and row.get("bound") else None
            cells.append(f"<td class='{status.lower()}'><a href='#{_anchor(tag)}'>{status}<br><small>cross / floor "
                         f"{fmt(ratio)}</small></a></td>")
        body.append(f"<tr><th><a href='#{_anchor(tag)}'>{html.escape(tag)}</a></th>{''.join(cells)}</tr>")
    return (f"<h2>Verdict matrix</h2><table class='matrix'><thead><tr><th>embodiment</th>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")


def _embedded_png(run_dir: Path, figure: str | None, *, alt: str, css: str) -> str:
    """An <img> carrying the PNG itself (the page stands alone), or "" when the report has no such figure."""
    import base64

    if not figure or not (run_dir / figure).is_file():
        return ""
    data = base64.b64encode((run_dir / figure).read_bytes()).decode()
    return f"<img class='{css}' alt='{html.escape(alt)}' src='data:image/png;base64,{data}'>"


def _tag_section(run_dir: Path, tag: str, verdicts: dict) -> str:
    """One embodiment: its heatmap, violating cells valid vs padding, where it diverges, rows."""
    summary = (verdicts.get("tags") or {}).get(tag, {})
    image = _embedded_png(run_dir, (verdicts.get("figures") or {}).get(tag), alt=f"{tag} heatmap", css="thumb")
    counts = (f"<p>Violating cells (horizon x dim, max over batch): {summary.get('n_violating_valid', 'n/a')} inside "
              f"the valid {summary.get('valid_horizon')} x {summary.get('valid_dim')} region, "
              f"{summary.get('n_violating_padding', 'n/a')} in padding.</p>") if summary else ""
    rows = [r for r in verdicts.get("rows", []) if r["tag"] == tag]
    stages = summary.get("stages") or {}
    profile = _embedded_png(run_dir, (verdicts.get("stage_figures") or {}).get(tag), alt=f"{tag} stage profile",
                            css="stage-profile")
    flagged = [{k: r[k] for k in ("stage", "step", "max|delta|", "relative", "added (relative)")}
               for r in stages.get("stages", []) if r.get("flagged")]
    if profile and flagged:  # where it diverges: the profile and the flagged stages
        profile += _table(flagged[:12])
    decoded = summary.get("decoded actions", "")
    decoded = _embedded_png(run_dir, (verdicts.get("decoded_figures") or {}).get(tag), alt=f"{tag} decoded actions",
                            css="thumb") or (f"<p>Decoded actions: {html.escape(decoded)}.</p>" if decoded else "")
    return (f"<section id='{_anchor(tag)}'><h3>{html.escape(tag)}: {status_of(rows)}</h3>{image}{counts}"
            f"{_divergence(stages)}{profile}{decoded}{_table(rows)}</section>")


def _divergence(stages: dict) -> str:
    """Where the models start to differ: the first named stage above rounding, or why there is no answer."""
    if "not compared" in stages:
        return f"<p class='first-divergence'>Stages: not compared ({html.escape(stages['not compared'])}).</p>"
    first = stages.get("first_divergence")
    if not stages:
        return ""
    if first is None:
        return (f"<p class='first-divergence'>Stages: all {len(stages.get('stages', []))} named stages within "
                "rounding.</p>")
    size = (f"max |delta| {first['max|delta|']:.3g}, relative {first['relative']:.3g}"
            if first.get("max|delta|") is not None else "shapes differ")
    if first.get("added (relative)") is not None:
        size += f"; re-run on the original's own inputs it adds {first['added (relative)']:.3g}"
    from groot_lib.compare.stages import stage_label

    return (f"<p class='first-divergence'><b>Diverges first at {html.escape(stage_label(first['stage'], first['step']))}"
            f"</b> ({size}; threshold {stages.get('threshold (relative)', 0):.2g} relative). Every "
            "later stage inherits it: see the consumer page's stage profile.</p>")


def _settings_table(settings: dict) -> str:
    """The effective value of every setting and where it came from (flag, environment variable, default)."""
    from groot_lib.compare.numbers import fmt

    sources = settings.get("sources", {})
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(fmt(v))}</td>"
                   f"<td>{html.escape(sources.get(k, ''))}</td></tr>"
                   for k, v in sorted(settings.items()) if k != "sources")
    return f"<h2>Settings</h2><table><thead><tr><th>setting</th><th>value</th><th>from</th></tr></thead>{rows}</table>"


RUN_FIELDS = ("implementation", "version", "python", "torch", "transformers", "device", "dtype", "attention")


def _stored_runs(folder: Path, key: str) -> dict[str, dict]:
    """variant -> one JSON member of the .npz files in ``folder`` (read alone: no array is loaded)."""
    import numpy as np

    runs: dict[str, dict] = {}
    for path in sorted(Path(folder).glob("*.npz")) if Path(folder).is_dir() else []:
        try:
            with np.load(path, allow_pickle=False) as npz:
                data = json.loads(str(npz[key]))
                variant = str(npz["meta::variant"]) if "meta::variant" in npz.files else path.stem.split("__")[-1]
        except (OSError, KeyError, ValueError):
            continue
        runs.setdefault(variant, data.get("provenance", data))
    return runs


def _provenance(run_dir: Path, source: dict, verdicts: dict | None) -> str:
    """Which code and which machine produced each side: what a reader needs to trust or reproduce a gap."""
    from groot_lib.core import code_identity
    from groot_lib.core import machine

    gr00t = source.get("gr00t") or {}
    recording = source.get("recording") or {}
    if gr00t.get("available"):
        original = code_identity.describe({"package": "gr00t", **gr00t})
    elif recording:
        original = f"gr00t {str(recording.get('gr00t_commit', '?'))[:12]} (recorded {recording.get('recorded_at', '?')})"
    else:
        original = "unknown"
    original_machine = source.get("machine") or recording.get("machine")
    lerobot = (verdicts or {}).get("lerobot", {})
    rows = [("original code", original), ("original machine", machine.describe(original_machine)),
            ("LeRobot code", code_identity.describe(lerobot.get("code"))),
            ("LeRobot machine", machine.describe(lerobot.get("machine")))]
    for side, folder, key in (("original", run_dir / "artifacts", "meta::producer"),
                              ("LeRobot", run_dir / "lerobot", "meta::info")):
        for variant, run in _stored_runs(folder, key).items():
            rows.append((f"{side} {variant}", " | ".join(f"{k} {run[k]}" for k in RUN_FIELDS if run.get(k))))
    fingerprint = _stored_runs(run_dir / "artifacts", "meta::checkpoint")
    if fingerprint:
        first = next(iter(fingerprint.values()))
        rows.append(("checkpoint", f"{first.get('name')} (fingerprint {first.get('fingerprint')} of "
                                   f"{', '.join(first.get('files', []))})"))
    return ("<h2>Provenance</h2><table>" + "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows) + "</table>")


def _reuse_line(source: dict, verdicts: dict | None) -> str:
    """How much of this report was computed now, and how much reused from the store."""
    def count(rows):
        tally: dict[str, int] = {}
        for row in rows:
            tally[row.get("status", "?")] = tally.get(row.get("status", "?"), 0) + 1
        return ", ".join(f"{n} {status}" for status, n in sorted(tally.items())) or "none"

    return (f"Original artifacts: {count(source.get('rows', []))}. "
            f"LeRobot outputs: {count((verdicts or {}).get('replays', []))}.")


def write_index(run_dir: Path, *, banner: str, verdicts: dict | None, pages: dict[str, Path],
                errors: list[str], settings: dict, source: dict | None = None) -> Path:
    """``run_dir/index.html``: provenance banner first, then verdicts, failures and links."""
    source = source or {}
    passed = bool(verdicts and verdicts.get("passed")) and not errors
    status = "PASS" if passed else "FAIL"
    rows = (verdicts or {}).get("rows", [])
    precision = (verdicts or {}).get("precision", [])
    refused = {**source.get("refused", {}), **(verdicts or {}).get("refused", {})}
    failing = [r for r in rows + precision if r.get("verdict") == "FAIL"]
    suspect = [r for r in rows if r.get("flag") == "SUSPECT"]
    parts = [
        "<!doctype html><meta charset='utf-8'><title>gr00t-parity report</title>",
        "<style>body{font-family:sans-serif;max-width:1200px;margin:2em auto}"
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px}"
        ".fail{background:#fdd;font-weight:bold}.pass{background:#dfd}.suspect{background:#fe9;font-weight:bold}"
        ".banner{font-size:1.1em;padding:.5em;background:#eef}.matrix td{text-align:center}"
        ".matrix a{color:inherit;text-decoration:none}.thumb{max-width:560px;display:block}</style>",
        f"<p class='banner'>{html.escape(banner)}</p>",
        f"<h1>gr00t-parity: <span class='{status.lower()}'>{status}</span></h1>",
        f"<p>{len(rows) + len(precision) - len(failing)} of {len(rows) + len(precision)} checks pass. "
        f"{html.escape(_reuse_line(source, verdicts))} Terminal summary: <a href='summary.txt'>summary.txt</a>; "
        "logs: <a href='progress.log'>progress</a>, <a href='kernels.log'>the kernels' stderr</a>.</p>",
    ]
    if suspect:
        parts.append(f"<p class='suspect'>SUSPECT: {len(suspect)} check(s) pass atol/rtol but sit far above the gap "
                     "rounding explains for their devices ('x expected gap'): "
                     + html.escape(", ".join(f"{r['tag']} / {r['tensor']}" for r in suspect)) + "</p>")
    parts.append(_provenance(run_dir, source, verdicts))
    notes = [*settings.get("notes", []), *source.get("notes", []), *(verdicts or {}).get("notes", []),
             *(verdicts or {}).get("row_notes", [])]
    if notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>")
    parts.append(_settings_table({k: v for k, v in settings.items() if k != "notes"}))
    for err in errors:
        parts.append(f"<pre class='fail'>{html.escape(err)}</pre>")
    for variant, why in refused.items():
        parts.append(f"<p class='fail'>REFUSED {html.escape(variant)}: {html.escape(why)}</p>")
    if rows:
        parts.append(_matrix(rows, precision))
        parts += [_tag_section(run_dir, tag, verdicts) for tag in dict.fromkeys(r["tag"] for r in rows)]
    parts.append("<h2>All verdicts</h2>" + _table(rows))
    sweep = (verdicts or {}).get("sweep") or {}
    if sweep.get("summary"):
        parts.append(f"<h2>Input sweep</h2><p>{sweep['cases']} more observation(s) per embodiment (SWEEP; "
                     "core/sweep.py): per check, max |delta| across the cases and the worst case with its inputs.</p>"
                     + _table([{**r, "worst inputs": json.dumps(r["worst inputs"], ensure_ascii=False)}
                               for r in sweep["summary"]]))
    if precision:
        parts.append("<h2>Precision study</h2><p>Cross-implementation gap at low precision vs k x the larger "
                     "same-implementation noise floor (max |delta| on action_pred, same initial noise).</p>"
                     + _table(precision))
    parts.append("<h2>Notebooks</h2><ul>" + "".join(
        f"<li><a href='{html.escape(p.name)}'>{html.escape(name)}</a></li>" for name, p in pages.items()) + "</ul>")
    return atomic_write_text(run_dir / "index.html", "\n".join(parts))


if __name__ == "__main__":
    raise SystemExit(main())
