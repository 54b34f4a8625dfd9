"""HTML reports: executed notebooks exported with code hidden, plus an index page.

The index's first lines say where the original outputs came from (live or
recorded), then the verdict summary, then links; a failed run still gets one.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from groot_lib.core.atomic import atomic_write_text


def export_html(notebook: Path, *, hide_code: bool = True) -> Path:
    """Executed notebook -> sibling .html (atomic)."""
    import nbformat
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(exclude_input=hide_code, exclude_input_prompt=hide_code, exclude_output_prompt=hide_code)
    body, _ = exporter.from_notebook_node(nbformat.read(str(notebook), as_version=4))
    return atomic_write_text(notebook.with_suffix(".html"), body)


def _table(rows: list[dict]) -> str:
    from groot_lib.workbench.summary import fmt

    if not rows:
        return "<p><em>no verdicts</em></p>"
    cols = list(rows[0])
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)

    def cell(value):
        style = {"FAIL": ' class="fail"', "PASS": ' class="pass"', "SUSPECT": ' class="suspect"'}.get(value, "")
        return f"<td{style}>{html.escape(fmt(value))}</td>"

    body = "".join("<tr>" + "".join(cell(r.get(c)) for c in cols) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _provenance(source: dict, verdicts: dict | None) -> str:
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
        ".banner{font-size:1.1em;padding:.5em;background:#eef}</style>",
        f"<p class='banner'>{html.escape(banner)}</p>",
        f"<h1>gr00t-parity: <span class='{status.lower()}'>{status}</span></h1>",
        f"<p>{len(rows) + len(precision) - len(failing)} of {len(rows) + len(precision)} checks pass. "
        f"{html.escape(_reuse_line(source, verdicts))} Terminal summary: <a href='summary.txt'>summary.txt</a>.</p>",
    ]
    if suspect:
        parts.append(f"<p class='suspect'>SUSPECT: {len(suspect)} check(s) pass atol/rtol but sit far above the gap "
                     "rounding explains for their devices ('x expected gap'): "
                     + html.escape(", ".join(f"{r['tag']} / {r['tensor']}" for r in suspect)) + "</p>")
    parts.append(_provenance(source, verdicts))
    parts.append(f"<p>Settings: {html.escape(json.dumps(settings, sort_keys=True, default=str))}</p>")
    for err in errors:
        parts.append(f"<pre class='fail'>{html.escape(err)}</pre>")
    for variant, why in refused.items():
        parts.append(f"<p class='fail'>REFUSED {html.escape(variant)}: {html.escape(why)}</p>")
    parts.append("<h2>Verdicts</h2>" + _table(rows))
    if precision:
        parts.append("<h2>Precision study</h2><p>Cross-implementation gap at low precision vs k x the larger "
                     "same-implementation noise floor (max |delta| on action_pred, same initial noise).</p>"
                     + _table(precision))
    parts.append("<h2>Notebooks</h2><ul>" + "".join(
        f"<li><a href='{html.escape(p.name)}'>{html.escape(name)}</a></li>" for name, p in pages.items()) + "</ul>")
    return atomic_write_text(run_dir / "index.html", "\n".join(parts))
