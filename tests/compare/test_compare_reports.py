"""make compare-reports on two real reports: B judges A's own artifacts (ARTIFACTS=) with ATOL=0 RTOL=0, so its
rounding-level gaps (state, decoded actions at ~1e-7) really FAIL where A's passed, under really different settings."""

from __future__ import annotations

import html
import json
import re
import subprocess

import pytest

from groot_lib.compare import reports
from groot_lib.compare.numbers import fmt
from groot_lib.core import report_folder
from groot_lib.workbench.workflow import REPO, run_report

TAG = "libero_sim"


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """(reports root, A, B): A the default fp32 report of one tag, B the same artifacts judged with zero tolerance."""
    root = tmp_path_factory.mktemp("compare")
    common = {"out_root": root / "reports", "artifacts_root": root / "store", "variants": "fp32-sdpa", "tags": TAG,
              "quiet": True}
    code_a, index_a = run_report(**common)
    code_b, index_b = run_report(**common, atol=0, rtol=0, artifacts=str(index_a.parent / "artifacts"))
    assert (code_a, code_b) == (0, 1)
    return root / "reports", index_a.parent, index_b.parent


def verdicts(folder):
    return report_folder.read_verdicts(folder)


def planted(folder, tmp_path, name, edit):
    """A copy of ``folder``'s verdicts.json, edited by ``edit``, alone in ``tmp_path/name`` (all compare reads)."""
    out = tmp_path / name
    out.mkdir()
    data = json.loads((folder / "verdicts.json").read_text())
    edit(data)
    (out / "verdicts.json").write_text(json.dumps(data))
    return out


def test_flips_exit_1_and_come_first(pair, capsys):
    _, a, b = pair
    failing = [r for r in verdicts(b).rows if r.verdict == "FAIL"]
    assert failing and all(r.verdict == "PASS" for r in verdicts(a).rows)
    assert reports.main([str(a), str(b)]) == 1
    out = capsys.readouterr().out
    expected = [f"FLIP PASS -> FAIL  {r.tag} / {r.check} / {r.tensor}  "
                f"max|delta| {reports.fmt(r.max_abs)} -> {reports.fmt(r.max_abs)}" for r in failing]
    lines = out.splitlines()
    assert f"got worse: {len(failing)} check(s)" in lines
    flips = [line for line in lines if line.startswith("FLIP ") and " -> " in line]
    assert flips == expected
    header = next(i for i, line in enumerate(lines) if line.startswith("change "))
    assert lines.index(flips[-1]) < header  # listed before the table
    marked = [line.split()[0] for line in lines[header + 1:] if line.strip() and not line.startswith("comparison:")]
    assert marked.count("FLIP") == len(failing)


def test_nothing_worse_exits_0_and_improvements_are_marked(pair, capsys):
    _, a, b = pair
    assert reports.main([str(a), str(a)]) == 0
    out = capsys.readouterr().out
    assert "nothing got worse" in out and "FLIP" not in out and "warning:" not in out
    assert reports.main([str(b), str(a)]) == 0  # FAIL -> PASS: better, never a failure
    rows = reports.gap_changes(verdicts(b), verdicts(a))
    assert {r["change"] for r in rows} == {"", "fixed"} and "FLIP" not in capsys.readouterr().out


def test_differing_settings_warn_in_text_and_page(pair, capsys):
    _, a, b = pair
    assert reports.main([str(a), str(b)]) == 1
    warnings = [line for line in capsys.readouterr().out.splitlines() if line.startswith("warning:")]
    mode = verdicts(a).source["mode"]  # live with gr00t installed, recorded without
    assert warnings == ["warning: atol differs: A 0.001, B 0", "warning: rtol differs: A 0.001, B 0",
                        f"warning: source of the original's outputs differs: A {mode}, B imported"]
    page = (b / f"compare-to-{a.name}.html").read_text()
    for line in warnings:
        assert f"<p class='suspect'>{html.escape(line)}</p>" in page


def test_the_page_lists_flips_first_coloured(pair):
    _, a, b = pair
    out, rows = reports.write_comparison(a, b)
    page = out.read_text()
    worse_at, every_at = page.index("Got worse"), page.index("Every gap")
    flipped = [r for r in rows if r["change"] == "FLIP"]
    coloured = re.findall(r"<tr class='fail'><td>FLIP</td><td>([^<]+)</td><td>([^<]+)</td><td>([^<]+)</td>", page)
    assert coloured == 2 * [(r["tag"], r["check"], r["tensor"]) for r in flipped]  # the flips section, then the table
    assert worse_at < page.index("<tr class='fail'>") < every_at
    assert ".fail{background:#fdd" in page and "src='data:image/png;base64," in page


def test_a_bare_stamp_latest_and_previous_resolve_under_the_reports_root(pair, capsys):
    root, a, b = pair
    assert reports.main([a.name, b.name, "--reports-root", str(root)]) == 1
    assert reports.main(["previous", "latest", "--reports-root", str(root)]) == 1
    out = capsys.readouterr().out
    assert out.count(f"A: {a}  (") == 2 and out.count(f"B: {b}  (") == 2
    assert reports.resolve(str(a)) == a  # a folder stays a folder, whatever the root


def test_bad_input_exits_2_with_one_line(pair, tmp_path, capsys):
    root, a, _ = pair
    (tmp_path / "unfinished").mkdir()
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "verdicts.json").write_text("{not json")
    (tmp_path / "list").mkdir()
    (tmp_path / "list" / "verdicts.json").write_text("[]")
    (tmp_path / "empty").mkdir()
    cases = {"20991231T000000Z": f"no report folder 20991231T000000Z under {root}",
             str(tmp_path / "nope"): "no such folder; give a report folder, a bare stamp",
             str(tmp_path / "unfinished"): "is not a finished report: no verdicts.json",
             str(tmp_path / "broken"): "verdicts.json is not valid JSON",
             str(tmp_path / "list"): "verdicts.json holds a JSON list; expected the object"}
    for name, message in cases.items():
        assert reports.main([str(a), name, "--reports-root", str(root)]) == 2
        err = capsys.readouterr().err
        assert len(err.splitlines()) == 1 and message in err and "Traceback" not in err
    assert reports.main(["latest", "previous", "--reports-root", str(tmp_path / "empty")]) == 2
    assert "'latest' needs 1 finished report(s)" in capsys.readouterr().err


def test_null_and_gone_checks_read_n_a_and_absent(pair, tmp_path, capsys):
    """A shape mismatch writes max|delta| null; a check B dropped is GONE: both got worse, neither crashes."""
    _, a, _ = pair

    def edit(data):
        row = next(r for r in data["rows"] if r["check"] == "model parity")
        row["max|delta|"], row["verdict"] = None, "FAIL"
        data["rows"] = [r for r in data["rows"] if r["tensor"] != "input_ids"]

    b = planted(a, tmp_path, "B", edit)
    assert reports.main([str(a), str(b)]) == 1
    lines = capsys.readouterr().out.splitlines()
    # A's own gap: 0 with gr00t live, ~2e-6 against the recordings made on another CPU
    was = fmt(next(r.max_abs for r in verdicts(a).rows if r.check == "model parity"))
    assert f"FLIP PASS -> FAIL  {TAG} / model parity / action_pred  max|delta| {was} -> n/a" in lines, lines
    assert f"GONE PASS -> absent  {TAG} / preprocessor parity / input_ids  max|delta| 0 -> absent" in lines
    assert ["FLIP", TAG, "model", "parity", "action_pred", was, "n/a", "n/a", "PASS", "FAIL"] in \
        [line.split() for line in lines]  # B max|delta| and B / A are n/a
    texts = {t.get_text() for t in reports.figure(reports.gap_changes(verdicts(a), verdicts(b))).axes[0].texts}
    assert {"B: n/a", "B: absent"} <= texts


def test_exact_zeros_are_written_as_zeros_not_drawn_as_small_bars(pair):
    _, a, b = pair
    rows = reports.gap_changes(verdicts(a), verdicts(b))
    ax = reports.figure(rows).axes[0]
    values = [(i + offset, r[f"{side} max|delta|"]) for i, r in enumerate(rows)
              for offset, side in ((-0.2, "A"), (0.2, "B"))]
    zeros = {round(y, 1) for y, v in values if v == 0}
    positive = {round(y, 1): v for y, v in values if v}
    assert zeros and positive  # the real reports hold both
    written = {round(t.get_position()[1], 1) for t in ax.texts if t.get_text().endswith(": 0")}
    assert written == zeros
    bars = {round(p.get_y() + p.get_height() / 2, 1): p.get_x() + p.get_width() for p in ax.patches}
    assert bars == pytest.approx(positive)  # one bar per nonzero value, ending at it; none for a zero
    assert ax.get_xscale() == "log" and ax.get_xlim()[0] < min(positive.values())


def test_make_compare_reports_fails_on_a_flip(pair):
    """GNU make turns any failing recipe into its own status 2; its 'Error 1' names the comparison's own status."""
    _, a, b = pair
    same = subprocess.run(["make", "compare-reports", f"A={a}", f"B={a}"], cwd=REPO, capture_output=True, text=True)
    assert same.returncode == 0, same.stderr
    flipped = subprocess.run(["make", "compare-reports", f"A={a}", f"B={b}"], cwd=REPO, capture_output=True, text=True)
    assert flipped.returncode != 0 and "compare-reports] Error 1" in flipped.stderr and "FLIP" in flipped.stdout
