"""HTML reports: executed notebooks exported with code hidden, plus an index page.

The index's first lines say where the original outputs came from (live or
recorded), then the verdict summary, then links; a failed run still gets one.
"""

from __future__ import annotations

import argparse
import html
import json
import re
from pathlib import Path

from groot_lib.core import report_folder
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


def _keep(text: str) -> int:
    try:
        keep = int(text)
    except ValueError:
        keep = -1
    if keep < 0:
        raise argparse.ArgumentTypeError(f"KEEP must be a whole number >= 0 (how many finished reports to keep), "
                                         f"got {text!r}")
    return keep


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage block: `make clean-reports KEEP=-1` says what is wrong
        self.exit(2, f"clean-reports: error: {message}\n")


def main(argv: list[str] | None = None) -> int:
    """``make clean-reports KEEP=n``: the n newest finished reports stay, runs in progress stay, the rest goes."""
    parser = _OneLineParser(prog="python -m groot_lib.workbench.report")
    sub = parser.add_subparsers(dest="command", required=True)
    clean = sub.add_parser("clean", help="keep only the newest finished reports and the runs in progress")
    clean.add_argument("--root", type=Path, default=report_folder.ROOT)
    clean.add_argument("--keep", type=_keep, default=5)
    index = sub.add_parser("index", help="(re)write a report folder's index.html and summary.txt from its verdicts")
    index.add_argument("folder", type=Path)
    args = parser.parse_args(argv)
    if args.command == "index":
        print(write_folder_pages(args.folder))
        return 0
    done = report_folder.clean(args.root, args.keep)
    print(f"removed {len(done.removed)} finished report folder(s) from {args.root}, kept the newest "
          f"{len(done.kept)}" + (f": {', '.join(p.name for p in done.kept)}" if done.kept else ""))
    if done.abandoned:
        print(f"removed {len(done.abandoned)} unfinished report folder(s) whose run is over: "
              + ", ".join(p.name for p in done.abandoned))
    if done.in_progress:
        print(f"kept {len(done.in_progress)} report folder(s) still being written: "
              + ", ".join(p.name for p in done.in_progress))
    return 0


STYLE = ("<style>body{font-family:sans-serif;max-width:1200px;margin:1em auto;padding:0 1em}"
         "h1{margin:.3em 0;font-size:1.6em}h2{font-size:1.2em;margin:1em 0 .4em}h3{margin:.8em 0 .3em}"
         "table{border-collapse:collapse;font-size:13px;max-width:100%}td,th{border:1px solid #ccc;padding:3px 6px;"
         "overflow-wrap:anywhere}.fail{background:#fdd;font-weight:bold}.pass{background:#dfd}"
         ".suspect{background:#fe9;font-weight:bold}.nc{background:#eee;color:#555}.refused{background:#fdd}"
         ".banner{padding:.4em .6em;background:#eef;margin:0}.verdict{margin:.3em 0}.links{font-size:13px;color:#444}"
         ".matrix td{text-align:center}.matrix a{color:inherit;text-decoration:none}.matrix small{font-weight:normal}"
         "ul.where{margin:.3em 0;padding-left:1.2em;font-size:14px}ul.where li{margin:.2em 0}"
         ".figures{display:flex;flex-wrap:wrap;gap:8px}.figures img{max-width:100%;height:auto}"
         ".thumb{max-width:440px}.wide{max-width:100%}details{margin:.4em 0}summary{cursor:pointer;font-weight:bold}"
         ".scroll{overflow-x:auto;max-width:100%}pre{white-space:pre-wrap}</style>")


def write_folder_pages(folder: Path) -> Path:
    """index.html and summary.txt of a folder holding verdicts.json and artifacts/source.json (an investigation's
    saved probe, or a report to re-render), with the same writers ``make report`` uses; returns index.html."""
    from groot_lib.pipeline.handoff import read_source
    from groot_lib.workbench.summary import terminal_summary

    verdicts = report_folder.read_verdicts(folder)
    source = read_source(folder / "artifacts")
    banner = source.get("banner", "original outputs: unknown")
    pages = {p.stem: p for p in sorted(folder.glob("*.html")) if p.name != "index.html"}
    index = write_index(folder, banner=banner, verdicts=verdicts, pages=pages, errors=[],
                        settings={**verdicts.settings, "notes": []}, source=source)
    code = 0 if verdicts.passed else 1
    atomic_write_text(folder / "summary.txt", terminal_summary(code=code, index=index, banner=banner,
                                                               verdicts=verdicts, errors=[],
                                                               refused=verdicts.refused) + "\n")
    return index


def _table(rows: list[dict]) -> str:
    from groot_lib.compare.numbers import fmt

    if not rows:
        return "<p><em>no verdicts</em></p>"
    cols = list(dict.fromkeys(c for r in rows for c in r))
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)

    def cell(value):
        style = {"FAIL": ' class="fail"', "PASS": ' class="pass"', "SUSPECT": ' class="suspect"'}.get(value, "")
        return f"<td{style}>{html.escape(fmt(value))}</td>"

    body = "".join("<tr>" + "".join(cell(r.get(c)) for c in cols) + "</tr>" for r in rows)
    return f"<div class='scroll'><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


def _anchor(tag: str) -> str:
    return "tag-" + re.sub(r"[^A-Za-z0-9_-]", "-", tag)


MATRIX_SKIPS = ("stage localisation", "precision study")  # not matrix columns: said in the "where" and notes


def cells(verdicts) -> dict[tuple[str, str], tuple[str, str]]:
    """(tag, column) -> (status, what and how much) for every cell of the verdict matrix (report_folder.Verdicts):
    each check of each embodiment, each precision variant, the input sweep, and the checks that could not run."""
    from groot_lib.workbench.summary import by_cell, check_cell, precision_cell, sweep_cell

    out = {key: check_cell(group) for key, group in by_cell(verdicts.rows).items()}
    for item in verdicts.not_compared:
        if item.tag != "*" and not item.check.startswith(MATRIX_SKIPS):
            out.setdefault((item.tag, item.check), ("not compared", item.why))
    for row in verdicts.precision:
        out[(row.tag, f"precision {row.variant}")] = precision_cell(row)
    for (tag, _), group in by_cell(verdicts.sweep).items():
        out.setdefault((tag, "input sweep"), sweep_cell([r for r in verdicts.sweep if r.tag == tag]))
    return out


def _matrix(verdicts) -> str:
    """Embodiment x check, coloured, each cell naming what fails (or the worst tensor) and by how much, linking to
    that embodiment's section below."""
    found = cells(verdicts)
    tags = list(dict.fromkeys(tag for tag, _ in found))
    columns = list(dict.fromkeys(column for _, column in found))
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for tag in tags:
        row = []
        for column in columns:
            status, detail = found.get((tag, column), ("n/a", ""))
            css = {"not compared": "nc", "n/a": "nc"}.get(status, status.lower())
            row.append(f"<td class='{css}' title='{html.escape(detail, quote=True)}'><a href='#{_anchor(tag)}'>"
                       f"{html.escape(status)}<br><small>{html.escape(_short(detail))}</small></a></td>")
        body.append(f"<tr><th><a href='#{_anchor(tag)}'>{html.escape(tag)}</a></th>{''.join(row)}</tr>")
    return (f"<table class='matrix'><thead><tr><th>embodiment</th>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _where(lines: list, *, with_tag: bool = True) -> str:
    """One line per FAIL / SUSPECT cell (report_folder.Where): where it goes wrong and by how much."""
    if not lines:
        return ""
    items = "".join(f"<li><span class='{line.status.lower()}'>{html.escape(line.status)}</span> "
                    f"<b>{html.escape((line.tag + ' / ') if with_tag else '')}{html.escape(line.check)}</b>: "
                    f"{html.escape(line.text)}</li>" for line in lines)
    return f"<ul class='where'>{items}</ul>"


def _embedded_png(run_dir: Path, figure: str | None, *, alt: str, css: str) -> str:
    """An <img> carrying the PNG itself (the page stands alone), or "" when the report has no such figure."""
    import base64

    if not figure or not (run_dir / figure).is_file():
        return ""
    data = base64.b64encode((run_dir / figure).read_bytes()).decode()
    return f"<img class='{css}' alt='{html.escape(alt)}' src='data:image/png;base64,{data}'>"


def _figures(run_dir: Path, tag: str, verdicts) -> str:
    """The embodiment's figures side by side: model-parity heatmap, decoded actions, precision study grids."""
    figures = [_embedded_png(run_dir, verdicts.figures["model"].get(tag), alt=f"{tag} heatmap", css="thumb"),
               _embedded_png(run_dir, verdicts.figures["decoded"].get(tag), alt=f"{tag} decoded actions", css="thumb"),
               _embedded_png(run_dir, verdicts.figures["training"].get(tag), alt=f"{tag} training step", css="thumb")]
    figures += [_embedded_png(run_dir, path, alt=f"{tag} precision study", css="thumb")
                for path in verdicts.figures["precision"].get(tag, [])]
    shown = [f for f in figures if f]
    return f"<div class='figures'>{''.join(shown)}</div>" if shown else ""


def _tag_section(run_dir: Path, tag: str, verdicts) -> str:
    """One embodiment: where it fails, its figures, where its models diverge, its rows (collapsed)."""
    summary = verdicts.tags.get(tag, {})
    rows = [r for r in verdicts.rows if r.tag == tag]
    where = [line for line in verdicts.where if line.tag == tag]
    counts = (f"<p>Violating cells (horizon x dim, max over batch): {summary.get('n_violating_valid', 'n/a')} inside "
              f"the valid {summary.get('valid_horizon')} x {summary.get('valid_dim')} region, "
              f"{summary.get('n_violating_padding', 'n/a')} in padding.</p>") if summary.get("n_violating_cells") else ""
    stages = summary.get("stages") or {}
    profile = _embedded_png(run_dir, verdicts.figures["stages"].get(tag), alt=f"{tag} stage profile", css="wide")
    flagged = [{k: r[k] for k in ("stage", "step", "max|delta|", "relative", "added (relative)")}
               for r in stages.get("stages", []) if r.get("flagged")]
    if profile and flagged:
        profile = f"<details><summary>Stage profile ({len(flagged)} flagged)</summary>{profile}{_table(flagged[:12])}</details>"
    first = verdicts.first_divergence.get(tag) or {}
    routine = status_of([r for r in rows if r.check == "model parity"]) == "PASS" and first.get("state") != "diverges"
    return (f"<section id='{_anchor(tag)}'><h3>{html.escape(tag)}: {status_of(rows)}</h3>"
            f"{_where(where, with_tag=False)}{'' if routine else _divergence(first)}{counts}"
            f"{_figures(run_dir, tag, verdicts)}{profile}{_recipe(summary.get('training recipe') or [])}"
            f"<details><summary>Verdict rows ({len(rows)})</summary>{_table([r.fields for r in rows])}</details></section>")


def _recipe(rows: list[dict]) -> str:
    """Each side's fine-tuning recipe setting by setting (TRAIN=1), collapsed unless a setting differs."""
    if not rows:
        return ""
    differing = [r["setting"] for r in rows if r.get("differs")]
    table = _table([{"setting": r["setting"], "original": json.dumps(r["original"]), "LeRobot": json.dumps(r["lerobot"]),
                     "": "DIFFERS" if r.get("differs") else ""} for r in rows])
    label = f"{len(differing)} differ: {', '.join(differing)}" if differing else "identical"
    return f"<details{' open' if differing else ''}><summary>Fine-tuning recipe ({html.escape(label)})</summary>{table}</details>"


def _divergence(first: dict | None) -> str:
    """Where the models start to differ, with its state said: diverges, none diverges, or never compared."""
    from groot_lib.compare.stage_diff import stage_label

    if not first:
        return ""
    state = first.get("state")
    if state in ("not compared", "unknown"):
        return f"<p class='first-divergence'>Stages: {state} ({html.escape(first.get('why', ''))}).</p>"
    if state == "none":
        return (f"<p class='first-divergence'>Stages: all {first.get('stages compared')} named stages compared, "
                "none beyond rounding.</p>")
    label = stage_label(first["stage"], first["step"])
    size = (f"max |delta| {first['max|delta|']:.3g}, relative {first['relative']:.3g}"
            if first.get("max|delta|") is not None else "shapes differ")
    role = {"source": "it adds the error itself", "inherits": "its inputs already differ"}.get(first.get("role"), "")
    return (f"<p class='first-divergence'><b>Diverges first at {html.escape(label)}</b> ({size}"
            f"{'; ' + role if role else ''}).</p>")


def _settings_table(settings: dict) -> str:
    """The effective value of every setting and where it came from (flag, environment variable, default)."""
    from groot_lib.compare.numbers import fmt

    sources = settings.get("sources", {})
    shown = {k: v for k, v in sorted(settings.items()) if k not in ("sources", "memory")}
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(fmt(v))}</td>"
                   f"<td>{html.escape(sources.get(k, ''))}</td></tr>" for k, v in shown.items())
    memory = settings.get("memory") or {}
    if memory:
        rows += "".join(f"<tr><th>memory {html.escape(str(k))}</th><td>{html.escape(fmt(v))}</td><td>planner</td></tr>"
                        for k, v in memory.items())
    return f"<table><thead><tr><th>setting</th><th>value</th><th>from</th></tr></thead>{rows}</table>"


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


def _provenance(run_dir: Path, source: dict, verdicts) -> str:
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
    # a live run records its machine in source.json; recordings in their provenance's producer (and every
    # artifact's meta::producer); imported artifacts in meta::producer alone
    runs = _stored_runs(run_dir / "artifacts", "meta::producer")
    original_machine = (source.get("machine") or (recording.get("producer") or {}).get("machine")
                        or next((r.get("machine") for r in runs.values() if r.get("machine")), None))
    lerobot = verdicts.lerobot if verdicts is not None else {}
    rows = [("original code", original), ("original machine", machine.describe(original_machine)),
            ("LeRobot code", code_identity.describe(lerobot.get("code"))),
            ("LeRobot machine", machine.describe(lerobot.get("machine")))]
    for side, found in (("original", runs), ("LeRobot", _stored_runs(run_dir / "lerobot", "meta::info"))):
        for variant, run in found.items():
            rows.append((f"{side} {variant}", " | ".join(f"{k} {run[k]}" for k in RUN_FIELDS if run.get(k))))
    fingerprint = _stored_runs(run_dir / "artifacts", "meta::checkpoint")
    if fingerprint:
        first = next(iter(fingerprint.values()))
        rows.append(("checkpoint", f"{first.get('name')} (fingerprint {first.get('fingerprint')} of "
                                   f"{', '.join(first.get('files', []))})"))
    return "<table>" + "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows) + \
        "</table>"


def _reuse_line(source: dict, verdicts) -> str:
    """How much of this report was computed now, and how much reused from the store."""
    def count(rows):
        tally: dict[str, int] = {}
        for row in rows:
            tally[row.get("status", "?")] = tally.get(row.get("status", "?"), 0) + 1
        return ", ".join(f"{n} {status}" for status, n in sorted(tally.items())) or "none"

    return (f"Original artifacts: {count(source.get('rows', []))}. "
            f"LeRobot outputs: {count(verdicts.replays if verdicts is not None else [])}.")


def verdict_sentence(found: dict[tuple[str, str], tuple[str, str]], *, errors: list[str],
                     refused: dict[str, str]) -> str:
    """'2 of 16 cells FAIL (libero_sim: model parity), 1 SUSPECT, 8 not compared': the answer in one line."""
    judged = {k: v for k, v in found.items() if v[0] in ("PASS", "FAIL", "SUSPECT")}
    failing = [k for k, v in judged.items() if v[0] == "FAIL"]
    suspect = [k for k, v in judged.items() if v[0] == "SUSPECT"]
    skipped = len(found) - len(judged)
    parts = [f"{len(judged) - len(failing)} of {len(judged)} checks pass"]
    if failing:
        parts.append(f"{len(failing)} FAIL (" + "; ".join(f"{t}: {c}" for t, c in failing[:4])
                     + (", ..." if len(failing) > 4 else "") + ")")
    if suspect:
        parts.append(f"{len(suspect)} SUSPECT: within atol/rtol, far above rounding ("
                     + "; ".join(f"{t}: {c}" for t, c in suspect[:4]) + (", ..." if len(suspect) > 4 else "") + ")")
    if skipped:
        parts.append(f"{skipped} not compared")
    if refused:
        parts.append(f"{len(refused)} variant(s) REFUSED")
    if errors:
        parts.append(f"{len(errors)} notebook error(s)")
    return "; ".join(parts) + "."


def write_index(run_dir: Path, *, banner: str, verdicts, pages: dict[str, Path],
                errors: list[str], settings: dict, source: dict | None = None) -> Path:
    """``run_dir/index.html``, answer first: where the original's outputs came from, the verdict, the matrix,
    one "where" line per failing or SUSPECT cell, the figures; provenance, settings and notes collapsed below.
    ``verdicts``: report_folder.Verdicts, or None when the consumer did not finish."""
    from groot_lib.core.report_folder import Verdicts
    from groot_lib.workbench.summary import not_compared_lines

    source = source or {}
    shown = verdicts or Verdicts.empty()  # the consumer did not finish: the page still says so
    status = "PASS" if verdicts is not None and verdicts.passed and not errors else ("ERROR" if errors else "FAIL")
    refused = {**source.get("refused", {}), **shown.refused}
    found = cells(shown)
    links = " | ".join([*(f"<a href='{html.escape(p.name)}'>{html.escape(name)} notebook</a>"
                          for name, p in pages.items()), "<a href='summary.txt'>summary.txt</a>",
                        "<a href='progress.log'>progress log</a>", "<a href='kernels.log'>kernels' stderr</a>"])
    parts = [
        f"<!doctype html><meta charset='utf-8'><title>gr00t-parity: {status}</title>{STYLE}",
        f"<p class='banner'>{html.escape(banner)}</p>",
        f"<h1>gr00t-parity: <span class='{status.lower()}'>{status}</span></h1>",
        f"<p class='verdict'>{html.escape(verdict_sentence(found, errors=errors, refused=refused))}</p>",
        f"<p class='links'>{links}</p>",
    ]
    parts += [f"<pre class='fail'>{html.escape(err)}</pre>" for err in errors]
    parts += [f"<p class='refused'>REFUSED {html.escape(v)}: {html.escape(why)}</p>" for v, why in refused.items()]
    if found:
        parts.append(_matrix(shown))
    parts.append(_where(shown.where))
    skipped = not_compared_lines(shown.not_compared)
    if skipped:
        parts.append("<p class='nc'>Not compared: " + html.escape("; ".join(skipped)) + "</p>")
    parts += [_tag_section(run_dir, tag, shown) for tag in dict.fromkeys(r.tag for r in shown.rows)]
    if shown.sweep:
        parts.append(f"<details><summary>Input sweep ({shown.sweep_cases} more observation(s) per embodiment)</summary>"
                     "<p>Per check, max |delta| across the cases and the worst case with its inputs (SWEEP; "
                     "core/sweep_cases.py).</p>" + _table([{**r.fields, "worst inputs": json.dumps(
                         r.fields.get("worst inputs"), ensure_ascii=False)} for r in shown.sweep]) + "</details>")
    if shown.precision:
        parts.append("<details><summary>Precision study</summary><p>Cross-implementation gap at low precision vs k x "
                     "the larger same-implementation noise floor (max |delta| on action_pred, same initial noise).</p>"
                     + _table([r.fields for r in shown.precision]) + "</details>")
    notes = [*settings.get("notes", []), *source.get("notes", []), *shown.notes]
    parts.append(f"<details><summary>Provenance</summary><p>{html.escape(_reuse_line(source, verdicts))}</p>"
                 f"{_provenance(run_dir, source, verdicts)}</details>")
    parts.append("<details><summary>Settings</summary>"
                 f"{_settings_table({k: v for k, v in settings.items() if k != 'notes'})}</details>")
    if notes:
        parts.append(f"<details><summary>Notes ({len(notes)})</summary><ul>"
                     + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul></details>")
    parts.append(f"<details><summary>All verdicts ({len(shown.rows)} rows)</summary>"
                 f"{_table([r.fields for r in shown.rows])}</details>")
    return atomic_write_text(run_dir / "index.html", "\n".join(parts))


if __name__ == "__main__":
    raise SystemExit(main())
