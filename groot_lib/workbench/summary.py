"""What ``make report`` prints when it ends: per tag and check, the verdict and its numbers; every error.

Why: the HTML is for reading, the terminal is for knowing. A run that fails must say which tag,
which check, by how much (max |delta|, the atol that would pass) or which notebook cell raised
what, without opening a page. Built from verdicts.json alone, and also saved as summary.txt.
"""

from __future__ import annotations

from groot_lib.compare.numbers import fmt

EXIT_MEANING = {0: "every check PASSES", 1: "some check FAILS (or a variant was refused)",
                2: "the run could not finish (error)", 130: "interrupted"}


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


def _check_detail(rows: list[dict]) -> tuple[str, str]:
    """One check of one tag: FAIL if any tensor fails; the worst tensor's numbers."""
    failing = [r for r in rows if r["verdict"] != "PASS"]
    suspect = [r for r in rows if r.get("flag") == "SUSPECT"]
    status = status_of(rows)
    shown = failing or suspect or rows
    worst = max(shown, key=lambda r: -1.0 if r.get("min atol to pass") is None else r["min atol to pass"])
    if worst.get("max|delta|") is None:  # shape mismatch or missing tensor: no element statistics
        detail = f"{worst['tensor']}: {worst.get('reason') or 'n/a'}"
    else:
        detail = (f"{worst['tensor']}: max|delta| {fmt(worst['max|delta|'])}, min atol {fmt(worst['min atol to pass'])}"
                  + (f", {fmt(worst['x expected gap'])}x expected gap" if worst.get("x expected gap") is not None else "")
                  + (f" ({worst['reason']})" if worst.get("reason") else ""))
    if len(rows) > 1:
        detail += f" [{len(rows) - len(failing)}/{len(rows)} tensors pass]"
    return status, detail


def _sweep_by_tag(summary: list[dict]) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = {}
    for row in summary:
        grouped.setdefault(row["tag"], []).append(row)
    return grouped


def terminal_summary(*, code: int, index, banner: str, verdicts: dict | None, errors: list[str],
                     refused: dict[str, str] | None = None) -> str:
    lines = [f"gr00t-parity: {'PASS' if code == 0 else 'FAIL' if code == 1 else 'ERROR'} "
             f"(exit {code}: {EXIT_MEANING.get(code, '?')})", banner]
    rows = (verdicts or {}).get("rows", [])
    if rows:
        lines.append(_line("tag", "check", "result", "worst tensor"))
        for (tag, check), group in _group(rows).items():
            lines.append(_line(tag, check, *_check_detail(group)))
        for row in (verdicts or {}).get("precision", []):
            detail = (f"cross gap {fmt(row['cross gap'])} vs {fmt(row['k'])} x floor "
                      f"{fmt(max(row['original floor'] or 0, row['LeRobot floor'] or 0))}")
            if row["verdict"] != "PASS":
                detail += f" ({row['reason']})"
            lines.append(_line(row["tag"], f"precision {row['variant']}", row["verdict"], detail))
    for tag, group in _sweep_by_tag((verdicts or {}).get("sweep", {}).get("summary", [])).items():
        failed = [r for r in group if r["verdict"] != "PASS"]
        worst = max(failed or group, key=lambda r: (r["max"] is None, r["max"] or 0))
        detail = (f"{group[0]['cases']} cases; worst {worst['tensor']} ({worst['check']}): max|delta| "
                  f"{fmt(worst['max'])} in {worst['worst case']}"
                  + (f" ({worst['why']})" if failed else ""))
        lines.append(_line(tag, "input sweep", "FAIL" if failed else "PASS", detail))
    suspect = [r for r in rows if r.get("flag") == "SUSPECT"]
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
