"""One line per failing or SUSPECT check that says *where*: the first diverging stage and whether it adds the error
or was given inputs that already differ; the state element, token position or camera view; the action group.

Why: "FAIL, max 1.19e-07" sends a researcher to open three pages. The consumer has every comparison in hand, so it
writes these lines once into verdicts.json ("where"), and index.html and the terminal show them as they are.
numpy only.
"""

from __future__ import annotations

from groot_lib.compare.numbers import fmt
from groot_lib.compare.comparison import Comparison


def _worst(c: Comparison) -> str:
    """', worst at batch 1, step 3, eef[5]' (named when the comparison knows how), or ''."""
    shown = [w for w in c.worst if w[3] != 0.0]
    if not shown:
        return ""
    idx = shown[0][0]
    return f", worst at {c.name_index(idx) if c.name_index else idx}"


def amount(c: Comparison) -> str:
    """What fails and by how much, in a few words: 'action_pred max |delta| 0.079 (320 of 10560 beyond tolerance)'."""
    if not c.comparable:
        return f"{c.name}: shapes differ, LeRobot {c.shape_actual} vs original {c.shape_expected} (never cropped)"
    if not c.passed and c.reason.startswith("NaN/Inf"):
        return f"{c.name}: {c.reason}"
    text = f"{c.name} max |delta| {fmt(c.max_abs)}"
    if not c.passed:
        text += f" ({c.n_mismatch} of {c.n_total} beyond atol {c.atol:g} + rtol {c.rtol:g} x |original|)"
    elif c.suspect:
        text += f" ({c.noise.ratio:.3g}x what rounding explains for these devices)"
    return text + _worst(c)


def stages_text(result) -> str:
    """Where the models start to differ, for a failing or SUSPECT model-parity row (result: parity.TagResult or
    a sweep case with the same ``stages`` / ``stages_missing``)."""
    stages = result.stages
    if stages is None:
        return f"stages not compared: {result.stages_missing}"
    if stages.first is None:
        return (f"no named stage diverges ({len(stages.rows)} compared), so the fault lies after the last one "
                f"({stages.last}): in the sampler's final update or in how action_pred is returned")
    return stages.describe()


def model_line(result) -> str:
    return f"{amount(result.model)}; {stages_text(result)}"


def _input_detail(c: Comparison) -> str:
    """The first row of a failing input's details (compare/inputs.py) in words."""
    row = c.details[0] if c.details else None
    if row is None:
        return ""
    if "element" in row:  # a state element
        raw = f", raw {fmt(row['raw'])}" if "raw" in row else ""
        return (f" at {row['element']} (LeRobot {fmt(row['LeRobot'])}, original {fmt(row['original'])}{raw})")
    if "first differing position" in row:  # tokens
        where = row["index in input_ids"]
        return (f": batch {row['batch']} first differs at real token {row['first differing position']}"
                + (f" (index {where} in input_ids)" if where is not None else "")
                + f", LeRobot '{row['LeRobot']}' vs original '{row['original']}'"
                + (f"; lengths {row['LeRobot length']} vs {row['original length']}"
                   if row["LeRobot length"] != row["original length"] else ""))
    if "view" in row:  # camera views: name the ones that differ
        views = [r for r in c.details if r.get("max |delta|") is None or r["max |delta|"] > 0]
        return ": in " + "; ".join(f"{r['view']} (" + (r.get("note") or f"max |delta| {fmt(r['max |delta|'])}") + ")"
                                   for r in views[:3]) + (f" and {len(views) - 3} more view(s)" if len(views) > 3 else "")
    return ""


def preprocessor_line(comparisons: list[Comparison], effect: dict | None = None) -> str:
    failing = [c for c in comparisons if not c.passed]
    parts = [amount(c) + _input_detail(c) for c in failing[:3]]
    if len(failing) > 3:
        parts.append(f"{len(failing) - 3} more tensor(s)")
    text = "; ".join(parts)
    if effect is not None:
        text += f"; on action_pred this changes LeRobot's own answer by {fmt(effect['max|delta|'])}"
    return text


def decoded_line(c: Comparison) -> str:
    groups = next((n for n in c.notes if n.startswith("outside tolerance in")), "")
    return amount(c) + (f"; {groups}" if groups else "") + (f"; {c.reason}" if not c.comparable and c.reason else "")


def status_of(comparisons: list[Comparison]) -> str:
    if any(not c.passed for c in comparisons):
        return "FAIL"
    return "SUSPECT" if any(c.suspect for c in comparisons) else "PASS"


def tag_lines(result) -> list[dict]:
    """{tag, check, status, text} for each FAIL or SUSPECT check of one embodiment (parity.TagResult)."""
    out = []
    if result.model.status != "PASS":
        out.append({"check": result.model.check, "status": result.model.status, "text": model_line(result)})
    if result.preprocessor and status_of(result.preprocessor) != "PASS":
        out.append({"check": result.preprocessor[0].check, "status": status_of(result.preprocessor),
                    "text": preprocessor_line(result.preprocessor, result.preprocessing_effect)})
    if result.decoded is not None and result.decoded.status != "PASS":
        out.append({"check": result.decoded.check, "status": result.decoded.status, "text": decoded_line(result.decoded)})
    for check in dict.fromkeys(c.check for c in result.training):
        failing = [c for c in result.training if c.check == check and c.status != "PASS"]
        if failing:
            out.append({"check": check, "status": status_of(failing), "text": training_line(failing)})
    return [{"tag": result.tag, **line} for line in out]


def training_line(failing: list[Comparison]) -> str:
    """The failing tensors of one training check (compare/training.py), each with its reason and what its notes
    localise: the first diverging gradient, parameters trained on one side only, recipe differences."""
    parts = []
    for c in failing:
        text = amount(c) if c.comparable and c.n_total else f"{c.name}: {c.reason}"
        notes = [n for n in c.notes if not n.startswith("largest relative")]
        parts.append(text + "".join(f"; {n}" for n in notes))
    return " | ".join(parts)


def precision_line(verdict) -> dict | None:
    """The precision study's gap against its bound, for a failing verdict (compare.precision.PrecisionVerdict)."""
    if verdict.passed:
        return None
    return {"tag": verdict.tag, "check": f"precision {verdict.variant}", "status": "FAIL", "text": verdict.reason}


def sweep_line(case) -> dict | None:
    """A failing or SUSPECT input-sweep case: which case, its inputs in brief, and where, with the fixed
    observation's rules (compare.sweep.SweepCaseResult)."""
    status = status_of(case.comparisons)
    if status == "PASS":
        return None
    model = next((c for c in case.comparisons if c.check == "model parity"), None)
    pre = [c for c in case.comparisons if c.check == "preprocessor parity"]
    decoded = next((c for c in case.comparisons if c.check == "decoded actions"), None)
    parts = []
    if model is not None and model.status != "PASS":
        parts.append(f"{amount(model)}; {stages_text(case)}")
    if pre and status_of(pre) != "PASS":
        parts.append(preprocessor_line(pre))
    if decoded is not None and decoded.status != "PASS":
        parts.append(decoded_line(decoded))
    brief = ", ".join(f"{k} {v}" for k, v in case.inputs.items() if k in ("batch", "images", "resolution", "states"))
    return {"tag": case.tag, "check": "input sweep", "status": status,
            "text": f"{case.case} ({brief}): " + " | ".join(parts)}


def lines(results, precision, sweep) -> list[dict]:
    """Every FAIL or SUSPECT cell's where line, tags in order, the fixed observation's checks first."""
    out = [line for r in results for line in tag_lines(r)]
    out += [line for line in map(precision_line, precision) if line]
    out += [line for line in map(sweep_line, sweep) if line]
    order = {r.tag: i for i, r in enumerate(results)}
    return sorted(out, key=lambda line: order.get(line["tag"], len(order)))
