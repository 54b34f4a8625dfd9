"""Where does it diverge: the two implementations' named stages (backends/stage_hooks.py), compared in firing order.

Why: a failing ``action_pred`` says *that* the models differ; the first stage whose error exceeds what rounding
explains says *where it starts*: every stage after it inherits the error. A stage's error is taken relative
to its own scale (max |delta| / max |original|), set against the relative gap rounding explains for the device
pair (compare/expected_gap.py: the action_pred gap, on outputs of order 1) times SUSPECT_FACTOR, the same
margin the SUSPECT verdict uses. numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from groot_lib.compare.expected_gap import SUSPECT_FACTOR, expected_gap

NOTES_KEY = "__notes__"
INPUTS = "#in"  # backends/stages.INPUTS: "<key>#in" holds a stage call's recorded inputs (JSON), "<key>#in:<path>" arrays
# What a recorded stage input is, in words (the names are the modules' own keyword arguments)
INPUT_GLOSS = {"temb": "the timestep embedding", "timestep": "the timestep", "timesteps": "the timesteps",
               "position_embeddings": "the rotary position embeddings", "attention_mask": "the attention mask",
               "encoder_hidden_states": "the VL features it cross-attends to",
               "encoder_attention_mask": "the VL features' mask", "hidden_states": "its hidden states",
               "cat_ids": "the embodiment id", "embodiment_id": "the embodiment id", "position_ids": "the position ids",
               "cache_position": "the cache positions", "grid_thw": "the image grid"}
# stages that run once per flow-matching step (their call is the step); the rest run once
PER_STEP = ("sampler.", "action_encoder", "timestep_encoder", "dit.", "action_decoder")


def stage_label(stage: str, call: int) -> str:
    """'dit.block2 at flow step 1', 'vl.layernorm' (one label for the notebook, index.html and the terminal)."""
    if stage.startswith(PER_STEP):
        return f"{stage} at flow step {call}"
    return f"{stage}, call {call}" if call else stage


@dataclass
class StageDelta:
    stage: str  # e.g. "dit.block2"
    call: int  # the module's call: the flow-matching step for per-step stages
    shapes: tuple[tuple, tuple]  # (original, LeRobot)
    max_abs: float | None = None  # None when not comparable
    relative: float | None = None  # max |delta| / max |original|
    flagged: bool = False
    added: float | None = None  # relative error this stage adds on the original's own inputs (None: not re-run)
    only: str | None = None  # "original" / "LeRobot": the one side that ran this call (its capture was complete)

    def role(self, threshold: float) -> str:
        """'source' (it adds the error), 'inherits' (identical inputs give identical outputs), or ''."""
        if not self.flagged or self.added is None:
            return ""
        return "source" if self.added > threshold else "inherits"

    @property
    def name(self) -> str:
        return stage_label(self.stage, self.call)

    def as_dict(self) -> dict:
        return {"stage": self.stage, "step": self.call, "max|delta|": self.max_abs, "relative": self.relative,
                "added (relative)": self.added, "flagged": self.flagged, "shapes": [list(s) for s in self.shapes],
                **({"only": self.only} if self.only else {})}


@dataclass
class StageReport:
    rows: list[StageDelta]
    threshold: float  # relative error above which a stage is flagged
    basis: str
    notes: list[str] = field(default_factory=list)
    # the first flagged stage's recorded inputs that already differ between the two runs, largest first:
    # [{"input", "max|delta|", "relative"}]; None when either side did not record that stage's inputs
    first_inputs: list[dict] | None = None

    @property
    def first(self) -> StageDelta | None:
        return next((r for r in self.rows if r.flagged), None)

    @property
    def sources(self) -> list[StageDelta]:
        """Stages that add error of their own on identical inputs (re-run on the original's stage inputs)."""
        return [r for r in self.rows if r.role(self.threshold) == "source"]

    def summary(self) -> dict:
        """verdicts.json's ``first_divergence`` (None when every stage is within rounding) and the table."""
        first = self.first
        return {"first_divergence": None if first is None else {
                    "stage": first.stage, "step": first.call, "max|delta|": first.max_abs, "relative": first.relative,
                    "added (relative)": first.added, "role": first.role(self.threshold),
                    "inputs differing": self.first_inputs, **({"only": first.only} if first.only else {})},
                "sources": [{"stage": r.stage, "step": r.call, "added (relative)": r.added} for r in self.sources],
                "threshold (relative)": self.threshold, "basis": self.basis, "notes": self.notes,
                "stages": [r.as_dict() for r in self.rows]}

    def describe(self) -> str:
        """Where the divergence starts, in one sentence: the stage, and whether it adds the error itself or was
        given inputs that already differ (and which), for the notebook, index.html and the terminal alike."""
        first = self.first
        if first is None:
            return f"no named stage exceeds rounding ({len(self.rows)} stages compared, relative threshold {self.threshold:.2g})"
        if first.only:
            return f"diverges first at {first.name}: only the {first.only} ran it" + self._calls_hint(first)
        if first.max_abs is None:
            return f"diverges first at {first.name}: shapes {first.shapes[0]} vs {first.shapes[1]}"
        text = f"diverges first at {first.name} (max |delta| {first.max_abs:.3g}, relative {first.relative:.3g})"
        role = first.role(self.threshold)
        if role == "source":
            text += f", and adds it itself: re-run on the original's own inputs it differs by {first.added:.3g}"
        elif role == "inherits":
            text += ", but adds no error of its own (re-run on the original's inputs it matches): " + (
                "its inputs already differ (LeRobot's stage inputs were not recorded)" if self.first_inputs is None
                else "its inputs already differ: " + ", ".join(
                    f"{r['input']} max |delta| {r['max|delta|']:.3g}" if r["max|delta|"] is not None
                    else f"{r['input']} ({r['note']})" for r in self.first_inputs[:3])
                if self.first_inputs else "its recorded inputs match, so the difference enters through something "
                                          "the hooks do not see (a buffer, a global, the random state)")
        else:
            text += "; not re-run on the original's inputs, so whether it adds the error is not known"
        later = [r.name for r in self.sources if r is not first]
        return text + (f"; other stages adding error: {', '.join(later[:4])}" if later else "")

    def _calls_hint(self, row: StageDelta) -> str:
        """How many times each side called that stage, when it is called per flow step (a step count differs)."""
        calls = {side: 1 + max((r.call for r in self.rows if r.stage == row.stage
                                and (r.only in (None, side))), default=-1) for side in ("original", "LeRobot")}
        if row.call == 0 or calls["original"] == calls["LeRobot"]:
            return ""
        return (f" (the original calls {row.stage} {calls['original']} times, LeRobot {calls['LeRobot']}: a different "
                "number of flow steps)")

    @property
    def last(self) -> str:
        """The last stage compared, in words (a fault after it is invisible to the stages)."""
        return self.rows[-1].name if self.rows else "none"


def split_key(key: str) -> tuple[int, str, int]:
    """'0012:dit.block2@1' -> (12, 'dit.block2', 1)."""
    seq, rest = key.split(":", 1)
    stage, call = rest.rsplit("@", 1)
    return int(seq), stage, int(call)


def _input_key(captured: dict[str, np.ndarray], stage: str, call: int) -> str | None:
    return next((k for k in captured if k.endswith(INPUTS) and split_key(k[: -len(INPUTS)])[1:] == (stage, call)),
                None)


def _recorded_inputs(captured: dict[str, np.ndarray], key: str, model_inputs: dict[str, np.ndarray]) -> dict:
    """{argument path in words: array} of one recorded stage call (backends/stages: a JSON spec whose tensors
    are this call's own arrays, another key of the capture, or one of the model's inputs, ``in::<name>``)."""
    import json

    found: dict[str, np.ndarray] = {}

    def walk(node, where: str) -> None:
        if not isinstance(node, dict):
            return
        if "t" in node:
            ref = node["t"]
            array = (model_inputs.get(ref[len("in::"):]) if ref.startswith("in::") else
                     captured.get(ref, captured.get(f"{key}:{ref}")))
            if array is not None:
                found[where] = np.asarray(array)
        for i, item in enumerate(node.get("seq", [])):
            walk(item, f"{where}[{i}]")
        for name, item in node.get("map", {}).items():
            walk(item, f"{where}.{name}" if where else name)

    spec = json.loads(str(captured[key]))
    for i, item in enumerate(spec.get("args", {}).get("seq", [])):
        walk(item, f"argument {i}")
    walk(spec.get("kwargs", {}), "")
    return found


def input_differences(original: dict[str, np.ndarray], lerobot: dict[str, np.ndarray], stage: str, call: int, *,
                      threshold: float, original_inputs: dict[str, np.ndarray] | None = None) -> list[dict] | None:
    """Which recorded inputs of one stage call differ between the two runs beyond ``threshold`` (relative),
    largest first, each named by its argument and what it is (``INPUT_GLOSS``); None when a side did not record
    that call's inputs. Says *why* a stage that adds no error of its own still diverges."""
    ours, theirs = _input_key(lerobot, stage, call), _input_key(original, stage, call)
    if ours is None or theirs is None:
        return None
    a = _recorded_inputs(lerobot, ours, {})
    b = _recorded_inputs(original, theirs, original_inputs or {})
    rows = []
    for name in [n for n in b if n in a]:
        x, y = a[name].astype(np.float64), b[name].astype(np.float64)
        gloss = INPUT_GLOSS.get(name.split(".")[0].split("[")[0])
        label = f"{name} ({gloss})" if gloss else name
        if x.shape != y.shape:
            rows.append({"input": label, "max|delta|": None, "relative": None,
                         "note": f"shapes differ: {y.shape} vs {x.shape}"})
            continue
        if not x.size:
            continue
        with np.errstate(invalid="ignore"):
            delta = float(np.nanmax(np.abs(x - y))) if np.isfinite(x - y).any() else float("inf")
        relative = delta / max(float(np.nanmax(np.abs(y))) if np.isfinite(y).any() else 0.0, 1e-12)
        if relative > threshold:
            rows.append({"input": label, "max|delta|": delta, "relative": relative})
    return sorted(rows, key=lambda r: -(r["relative"] if r["relative"] is not None else float("inf")))


def compare_stages(original: dict[str, np.ndarray], lerobot: dict[str, np.ndarray], *, original_device: str | None,
                   lerobot_device: str | None, dtype: str = "float32",
                   reruns: dict[str, np.ndarray] | None = None,
                   original_inputs: dict[str, np.ndarray] | None = None) -> StageReport:
    """Every stage the original recorded, in its firing order, against LeRobot's same stage and call; with
    ``reruns`` (LeRobot's stages re-run on the original's recorded inputs) also the error each stage adds, and for
    a first diverging stage that adds none, which of its inputs already differ (``input_differences``)."""
    gap = expected_gap(original_device, lerobot_device, dtype)
    threshold = SUSPECT_FACTOR * gap.max_abs
    notes = [f"{side}: {str(found[NOTES_KEY])}" for side, found in (("original", original), ("LeRobot", lerobot))
             if NOTES_KEY in found]
    theirs = {split_key(k)[1:]: v for k, v in lerobot.items() if k != NOTES_KEY and "#" not in k}
    reruns = {split_key(k)[1:]: v for k, v in (reruns or {}).items()}
    # a capture cut short by its byte budget lacks later stages by design; a complete one lacks only what never ran
    complete = {side: "stage capture stopped" not in str(found.get(NOTES_KEY, ""))
                for side, found in (("original", original), ("LeRobot", lerobot))}
    rows = []
    for key in sorted((k for k in original if k != NOTES_KEY and "#" not in k), key=lambda k: split_key(k)[0]):
        _, stage, call = split_key(key)
        ref = np.asarray(original[key], dtype=np.float64)
        if (stage, call) not in theirs:
            notes.append(f"{stage}@{call}: not in LeRobot's capture")
            if complete["LeRobot"]:
                rows.append(StageDelta(stage, call, (ref.shape, ()), flagged=True, only="original"))
            continue
        ours = np.asarray(theirs.pop((stage, call)), dtype=np.float64)
        row = StageDelta(stage, call, (ref.shape, ours.shape))
        if ref.shape == ours.shape and ref.size:
            with np.errstate(invalid="ignore"):
                delta = np.abs(ours - ref)
            row.max_abs = float(np.nanmax(delta)) if np.isfinite(delta).any() else float("inf")
            if not np.isfinite(ours).all() or not np.isfinite(ref).all():
                row.max_abs = float("inf")  # NaN/Inf on one side: diverged
            scale = float(np.nanmax(np.abs(ref))) if np.isfinite(ref).any() else 0.0
            row.relative = row.max_abs / max(scale, 1e-12)
            row.flagged = row.relative > threshold
            again = reruns.get((stage, call))
            if again is not None and np.asarray(again).shape == ref.shape:
                added = float(np.nanmax(np.abs(np.asarray(again, dtype=np.float64) - ref))) if ref.size else 0.0
                row.added = added / max(scale, 1e-12) if np.isfinite(added) else float("inf")
        else:  # a different shape is a divergence too (never cropped to a common shape)
            row.flagged = True
            notes.append(f"{stage}@{call}: shapes differ ({ref.shape} vs {ours.shape})")
        rows.append(row)
    notes += [f"{stage}@{call}: not in the original's capture" for stage, call in sorted(theirs)]
    if complete["original"]:
        fired = {split_key(k)[1:]: split_key(k)[0] for k in lerobot if k != NOTES_KEY and "#" not in k}
        rows += [StageDelta(stage, call, ((), np.shape(value)), flagged=True, only="LeRobot")
                 for (stage, call), value in sorted(theirs.items(), key=lambda item: fired[item[0]])]
    report = StageReport(rows, threshold, f"{SUSPECT_FACTOR:g} x {gap.describe()}", notes)
    first = report.first
    if first is not None and first.role(threshold) != "source":
        report.first_inputs = input_differences(original, lerobot, first.stage, first.call, threshold=threshold,
                                                original_inputs=original_inputs)
    return report
