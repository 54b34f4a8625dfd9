"""What ``make report`` prints when it ends: per tag and check, the verdict and its numbers; every error.

Why: the HTML is for reading, the terminal is for knowing. A run that fails must say which tag,
which check, by how much (max |delta|, the atol that would pass) or which notebook cell raised
what, without opening a page. Built from verdicts.json alone, and also saved as summary.txt.
"""

from __future__ import annotations

from groot_lib.compare.numbers import fmt
from groot_lib.workbench.notebook_runner import STOP_SIGNALS

EXIT_MEANING = {0: "every check PASSES", 1: "some check FAILS (or a variant was refused)",
                2: "the run could not finish (error)",
                **{128 + s: f"stopped by {s.name} ({sender}): kernels killed, no report written"
                   for s, sender in sorted(STOP_SIGNALS.items())}}


def _group(rows: list[dict]) -> dict[tuple[str, str], list[dict]]:
    grouped: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        grouped.setdefault((row["tag"], row["check"]), []).append(row)
    return grouped


def _line(tag: str, check: str, status: str, detail: str) -> str:
    return f"  {tag:<46} {check:<24} {status:<8} {detail}"


def status_of(rows: list[dict]) -> str:
    """FAIL if any row fails, else SUSPECT if any is flagged, else PASS (the terminal's and the index's rule)."""
    if any(r.get("verdict") != "PASS" for r in rows):
        return "FAIL"
    return "SUSPECT" if any(r.get("flag") == "SUSPECT" for r in rows) else "PASS"


def worst_row(rows: list[dict]) -> dict:
    """The row a check is summed up by: failing rows first, then SUSPECT ones, then the largest max |delta| (a
    statistic that does not exist, e.g. on a shape mismatch, counts as the largest)."""
    def rank(r):
        size = r.get("max|delta|")
        return (r.get("verdict") != "PASS", r.get("flag") == "SUSPECT", size is None, size or 0.0)

    return max(rows, key=rank)


def check_cell(rows: list[dict]) -> tuple[str, str]:
    """(status, what and how much) of one check of one embodiment: 'action_pred max 0.079', shapes when they
    differ; index.html's matrix cell and the terminal's line say the same."""
    worst = worst_row(rows)
    what = worst["tensor"]
    if worst.get("max|delta|") is None:
        detail = f"{what}: {worst.get('reason') or 'n/a'}"
    else:
        detail = f"{what} max {fmt(worst['max|delta|'])}"
        if worst.get("x expected gap") is not None:
            detail += f", {fmt(worst['x expected gap'])}x expected gap"
    return status_of(rows), detail


def precision_cell(row: dict) -> tuple[str, str]:
    """(status, the cross-implementation gap against its bound): 'cross 0.055 <= bound 0.088'."""
    if row.get("cross gap") is None or row.get("bound") is None:
        return row["verdict"], f"n/a: {row.get('reason') or 'no gap measured'}"
    holds = row["cross gap"] <= row["bound"]
    return row["verdict"], f"cross {fmt(row['cross gap'])} {'<=' if holds else '>'} bound {fmt(row['bound'])}"


def sweep_cell(rows: list[dict]) -> tuple[str, str]:
    """(status, worst case) of one embodiment's input sweep (verdicts.json sweep.summary rows)."""
    failed = [r for r in rows if r["verdict"] != "PASS"]
    suspect = [r for r in rows if r.get("flag") == "SUSPECT"]
    worst = max(failed or suspect or rows, key=lambda r: (r["max"] is None, r["max"] or 0))
    status = "FAIL" if failed else "SUSPECT" if suspect else "PASS"
    return status, (f"{rows[0]['cases']} cases; worst {worst['tensor']} ({worst['check']}) max {fmt(worst['max'])} in "
                    f"{worst['worst case']}")


def not_compared_lines(items: list[dict]) -> list[str]:
    """Checks that could not run, grouped by check and reason across embodiments (one line each)."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for item in items:
        grouped.setdefault((item["check"], item["why"]), []).append(item["tag"])
    return [f"{check} on {', '.join(tags) if tags != ['*'] else 'this run'}: {why}" for (check, why), tags in
            grouped.items()]


def where_by_tag(lines: list[dict]) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = {}
    for line in lines:
        grouped.setdefault(line["tag"], []).append(line)
    return grouped


def terminal_summary(*, code: int, index, banner: str, verdicts: dict | None, errors: list[str],
                     refused: dict[str, str] | None = None) -> str:
    """The run in ~40 lines for 4 tags: the verdict, each check's worst tensor by max |delta|, precision against
    its bound, where each failing tag goes wrong, what could not be compared, errors."""
    verdicts = verdicts or {}
    lines = [f"gr00t-parity: {'PASS' if code == 0 else 'FAIL' if code == 1 else 'ERROR'} "
             f"(exit {code}: {EXIT_MEANING.get(code, '?')})", banner]
    rows = verdicts.get("rows", [])
    if rows:
        lines.append(_line("tag", "check", "result", "worst tensor (by max |delta|)"))
        for (tag, check), group in _group(rows).items():
            status, detail = check_cell(group)
            passing = sum(r["verdict"] == "PASS" for r in group)
            lines.append(_line(tag, check, status, detail + (f" [{passing}/{len(group)} pass]" if len(group) > 1 else "")))
        for row in verdicts.get("precision", []):
            lines.append(_line(row["tag"], f"precision {row['variant']}", *precision_cell(row)))
    sweep_rows = verdicts.get("sweep", {}).get("summary", [])
    for tag in dict.fromkeys(r["tag"] for r in sweep_rows):
        lines.append(_line(tag, "input sweep", *sweep_cell([r for r in sweep_rows if r["tag"] == tag])))
    where = where_by_tag(verdicts.get("where", []))
    if where:
        lines.append("where:")
        for tag, group in where.items():
            more = f" (+{len(group) - 1} more in index.html)" if len(group) > 1 else ""
            lines.append(f"  {tag} / {group[0]['check']} {group[0]['status']}: {group[0]['text']}{more}")
    skipped = not_compared_lines(verdicts.get("not_compared", []))
    if skipped:
        lines.append("not compared:")
        lines += [f"  {line}" for line in skipped]
    suspect = [r for r in rows if r.get("flag") == "SUSPECT"] + \
        [r for r in verdicts.get("sweep", {}).get("summary", []) if r.get("flag") == "SUSPECT"]
    if suspect:
        lines.append(f"SUSPECT: {len(suspect)} check(s) pass atol/rtol but sit far above the gap rounding explains "
                     "for their devices: a real divergence is likely (see 'x expected gap').")
    for variant, why in (refused or {}).items():
        lines.append(f"REFUSED {variant}: {why}")
    for error in errors:
        body = error.strip().splitlines()
        lines.append("ERROR " + body[0])
        lines += ["      " + line for line in body[1:]]
    lines.append(f"report: {index}")
    return "\n".join(lines)
