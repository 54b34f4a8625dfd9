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


def _line(tag: str, check: str, status: str, detail: str) -> str:
    return f"  {tag:<46} {check:<24} {status:<8} {detail}"


def by_cell(rows: list) -> dict[tuple[str, str], list]:
    """Records (report_folder.Row, SweepRow) grouped by (tag, check), in their order."""
    grouped: dict[tuple[str, str], list] = {}
    for row in rows:
        grouped.setdefault((row.tag, row.check), []).append(row)
    return grouped


def status_of(rows: list) -> str:
    """FAIL if any row fails, else SUSPECT if any is flagged, else PASS (the terminal's and the index's rule)."""
    statuses = {r.status for r in rows}
    return "FAIL" if "FAIL" in statuses else "SUSPECT" if "SUSPECT" in statuses else "PASS"


def worst_row(rows: list):
    """The row a check is summed up by: failing rows first, then SUSPECT ones, then the largest max |delta| (a
    statistic that does not exist, e.g. on a shape mismatch, counts as the largest)."""
    return max(rows, key=lambda r: (r.status == "FAIL", r.status == "SUSPECT", r.max_abs is None, r.max_abs or 0.0))


def check_cell(rows: list) -> tuple[str, str]:
    """(status, what and how much) of one check of one embodiment: 'action_pred max 0.079', its reason when no
    statistic exists; index.html's matrix cell and the terminal's line say the same."""
    worst = worst_row(rows)
    if worst.max_abs is None:
        return status_of(rows), f"{worst.tensor}: {worst.reason or 'n/a'}"
    detail = f"{worst.tensor} max {fmt(worst.max_abs)}"
    if worst.expected_gap_ratio is not None:
        detail += f", {fmt(worst.expected_gap_ratio)}x expected gap"
    return status_of(rows), detail


def precision_cell(row) -> tuple[str, str]:
    """(status, the cross-implementation gap against its bound): 'cross 0.055 <= bound 0.088'."""
    if row.cross_gap is None or row.bound is None:
        return row.verdict, f"n/a: {row.reason or 'no gap measured'}"
    return row.verdict, f"cross {fmt(row.cross_gap)} {'<=' if row.cross_gap <= row.bound else '>'} bound {fmt(row.bound)}"


def sweep_cell(rows: list) -> tuple[str, str]:
    """(status, worst case) of one embodiment's input sweep (report_folder.SweepRow)."""
    worst = max(rows, key=lambda r: (r.status == "FAIL", r.status == "SUSPECT", r.max_abs is None, r.max_abs or 0))
    return status_of(rows), (f"{rows[0].cases} cases; worst {worst.tensor} ({worst.check}) max {fmt(worst.max_abs)} "
                             f"in {worst.worst_case}")


def not_compared_lines(items: list) -> list[str]:
    """Checks that could not run (report_folder.NotCompared), grouped by check and reason across embodiments."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for item in items:
        grouped.setdefault((item.check, item.why), []).append(item.tag)
    return [f"{check} on {', '.join(tags) if tags != ['*'] else 'this run'}: {why}" for (check, why), tags in
            grouped.items()]


def terminal_summary(*, code: int, index, banner: str, verdicts, errors: list[str],
                     refused: dict[str, str] | None = None) -> str:
    """The run in ~40 lines for 4 tags (``verdicts``: report_folder.Verdicts, or None when the consumer did not
    finish): the verdict, each check's worst tensor by max |delta|, precision against its bound, where each failing
    tag goes wrong, what could not be compared, errors."""
    lines = [f"gr00t-parity: {'PASS' if code == 0 else 'FAIL' if code == 1 else 'ERROR'} "
             f"(exit {code}: {EXIT_MEANING.get(code, '?')})", banner]
    if verdicts is not None and verdicts.rows:
        lines.append(_line("tag", "check", "result", "worst tensor (by max |delta|)"))
        for (tag, check), group in by_cell(verdicts.rows).items():
            status, detail = check_cell(group)
            passing = sum(r.verdict == "PASS" for r in group)
            lines.append(_line(tag, check, status, detail + (f" [{passing}/{len(group)} pass]" if len(group) > 1 else "")))
        for row in verdicts.precision:
            lines.append(_line(row.tag, f"precision {row.variant}", *precision_cell(row)))
    if verdicts is not None:
        tags = list(dict.fromkeys(r.tag for r in verdicts.sweep))
        lines += [_line(tag, "input sweep", *sweep_cell([r for r in verdicts.sweep if r.tag == tag])) for tag in tags]
        where: dict[str, list] = {}
        for line in verdicts.where:
            where.setdefault(line.tag, []).append(line)
        if where:
            lines.append("where:")
            for tag, group in where.items():
                more = f" (+{len(group) - 1} more in index.html)" if len(group) > 1 else ""
                lines.append(f"  {tag} / {group[0].check} {group[0].status}: {group[0].text}{more}")
        skipped = not_compared_lines(verdicts.not_compared)
        if skipped:
            lines.append("not compared:")
            lines += [f"  {line}" for line in skipped]
        if verdicts.suspect:
            lines.append(f"SUSPECT: {len(verdicts.suspect)} check(s) pass atol/rtol but sit far above the gap rounding "
                         "explains for their devices: a real divergence is likely (see 'x expected gap').")
    for variant, why in (refused or {}).items():
        lines.append(f"REFUSED {variant}: {why}")
    for error in errors:
        body = error.strip().splitlines()
        lines.append("ERROR " + body[0])
        lines += ["      " + line for line in body[1:]]
    lines.append(f"report: {index}")
    return "\n".join(lines)
