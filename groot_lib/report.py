"""HTML reports: executed notebooks exported with code hidden, plus an index page.

The index's first lines say where the original outputs came from (live or
recorded), then the verdict summary, then links; a failed run still gets one.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path


def export_html(notebook: Path, *, hide_code: bool = True) -> Path:
    """Executed notebook -> sibling .html (atomic)."""
    import nbformat
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(exclude_input=hide_code, exclude_input_prompt=hide_code, exclude_output_prompt=hide_code)
    body, _ = exporter.from_notebook_node(nbformat.read(str(notebook), as_version=4))
    out = notebook.with_suffix(".html")
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(body, encoding="utf-8")
    os.replace(tmp, out)
    return out


def _table(rows: list[dict]) -> str:
    if not rows:
        return "<p><em>no verdicts</em></p>"
    cols = list(rows[0])
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)

    def cell(col, value):
        text = f"{value:.3e}" if isinstance(value, float) and col not in ("mismatched %",) else (
            f"{value:.2f}" if isinstance(value, float) else str(value))
        style = ' class="fail"' if value == "FAIL" else ' class="pass"' if value == "PASS" else ""
        return f"<td{style}>{html.escape(text)}</td>"

    body = "".join("<tr>" + "".join(cell(c, r.get(c, "")) for c in cols) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def write_index(run_dir: Path, *, banner: str, verdicts: dict | None, pages: dict[str, Path],
                errors: list[str], settings: dict) -> Path:
    """``run_dir/index.html``: provenance banner first, then verdicts, failures and links."""
    passed = bool(verdicts and verdicts.get("passed")) and not errors
    status = "PASS" if passed else "FAIL"
    rows = (verdicts or {}).get("rows", [])
    failing = [r for r in rows if r.get("verdict") == "FAIL"]
    parts = [
        "<!doctype html><meta charset='utf-8'><title>gr00t-parity report</title>",
        "<style>body{font-family:sans-serif;max-width:1200px;margin:2em auto}"
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px}"
        ".fail{background:#fdd;font-weight:bold}.pass{background:#dfd}.banner{font-size:1.1em;padding:.5em;"
        "background:#eef}</style>",
        f"<p class='banner'>{html.escape(banner)}</p>",
        f"<h1>gr00t-parity: <span class='{status.lower()}'>{status}</span></h1>",
        f"<p>{len(rows) - len(failing)} of {len(rows)} checks pass. Settings: "
        f"{html.escape(json.dumps(settings, sort_keys=True))}</p>",
    ]
    for err in errors:
        parts.append(f"<pre class='fail'>{html.escape(err)}</pre>")
    parts.append("<h2>Verdicts</h2>" + _table(rows))
    parts.append("<h2>Notebooks</h2><ul>" + "".join(
        f"<li><a href='{html.escape(p.name)}'>{html.escape(name)}</a></li>" for name, p in pages.items()) + "</ul>")
    index = run_dir / "index.html"
    tmp = index.with_name(".index.html.tmp")
    tmp.write_text("\n".join(parts), encoding="utf-8")
    os.replace(tmp, index)
    return index
