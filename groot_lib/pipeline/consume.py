"""The consumer end to end, in the groot-lerobot kernel: import LeRobot while the producer runs, replay the
artifacts through LeRobot (``pipeline.replay``: stored, so reruns with new tolerances load no model), run the
checks of ``compare.parity`` and write verdicts.json. The notebook only displays what this module returns.
"""

from __future__ import annotations

import importlib
import json
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from groot_lib.core import checkpoint as ckpt
from groot_lib.core import report_folder, settings
from groot_lib.core.atomic import atomic_write_bytes
from groot_lib.core.artifact import Artifact, drop_prefetched, find_artifacts, load_artifact
from groot_lib.compare.parity import (TagResult, decoded_parity, heatmap_title, model_parity, precision_study,
                                      preprocessor_parity, stage_parity)
from groot_lib.compare.comparison import Comparison
from groot_lib.compare.training import training_parity
from groot_lib.core.errors import ParityError
from groot_lib.compare.precision import PrecisionVerdict
from groot_lib.compare.sweep_verdicts import SweepCaseResult, SweepSummary, summarise
from groot_lib.compare.where import lines as where_lines, status_of
from groot_lib.pipeline import handoff, progress
from groot_lib.pipeline.replay import ReplaySet, replay_all
from groot_lib.core.variants import DEFAULT_VARIANT


# The workbench's own imports for the checks and figures after the replay: while the producer works they cost
# no wall time; after it, a second or two each report.
WORKBENCH_STEPS = ("pandas", "matplotlib.figure", "matplotlib.backends.backend_agg", "groot_lib.compare.plots")


def await_producer(artifacts_dir) -> tuple[dict, dict]:
    """The consumer's first step: import LeRobot while the producer runs (``make report`` starts both
    notebooks at once), stop importing once it is done, then take its source.json (or fail fast when no
    producer is running). Returns (source, timings)."""
    warm = warm_up(until=lambda: handoff.is_published(artifacts_dir))
    imported = f"imported {', '.join(warm['imported']) or 'nothing'} in {warm['seconds']:.1f} s"
    progress.note("consumer", f"{imported}; " + ("the original's outputs are ready" if handoff.is_published(artifacts_dir)
                                                 else "waiting for the producer"))
    start = time.perf_counter()
    with progress.span("consumer", "waiting for the producer"):
        source = handoff.wait_for_source(artifacts_dir, while_waiting=_reader_ahead(artifacts_dir))
    return source, {"imports": warm["seconds"], "imported": warm["imported"],
                    "waited for producer": round(time.perf_counter() - start, 2)}


def _reader_ahead(artifacts_dir):
    """Reads each artifact the producer has published (a hard link appears whole) while the consumer waits for
    the rest, so the replay's loads take them from memory (``artifact.prefetch``): at real size that is 40 MB
    per tag and variant off the path between the producer's release and the consumer's load."""
    from groot_lib.core import upstream
    from groot_lib.core.artifact import prefetch
    from groot_lib.core.sweep_cases import SWEEP_DIR

    root, seen = Path(artifacts_dir), set()

    def read_ahead() -> None:
        for path in [*root.glob("*.npz"), *(root / SWEEP_DIR).glob("*/*.npz")]:
            if path in seen or path.name.startswith("."):
                continue
            seen.add(path)
            try:
                if not upstream.is_upstream(path):
                    prefetch(path)
            except (OSError, ParityError):
                pass  # the replay's own load says what is wrong with it

    return read_ahead


def warm_up(until=None) -> dict:
    """Import LeRobot's stack step by step until ``until()`` turns true, then the workbench's own.

    ``make report`` starts the consumer beside the producer, so these imports overlap the
    producer's work; once the producer is done they stop, because a rerun whose LeRobot
    outputs are all stored needs none of them (any step left is imported on first use).
    """
    from groot_lib.backends import contract, process

    lb = contract.backend("lerobot")
    done, totals = [], {}
    with progress.span("consumer", "imports", totals):
        for module in lb.IMPORTS:
            if until is not None and until():
                break
            try:
                importlib.import_module(module)
            except Exception:  # noqa: BLE001 - let the backend say what is missing and how to fix it
                lb.require()
                raise
            done.append(module)
    with progress.span("consumer", "workbench imports"):
        for module in WORKBENCH_STEPS:
            if until is not None and until():
                break
            importlib.import_module(module)
            done.append(module)
        process.imports_done()
    return {"seconds": round(totals["imports"], 2), "imported": done}


def load_artifacts(artifacts_dir, checkpoint: Path, tags=None, variants=None, *,
                   trust_legacy: bool = False) -> dict[str, dict[str, Artifact]]:
    """variant -> tag -> artifact, validated against the checkpoint's fingerprint.

    The fp32 reference must exist for every requested tag; other variants are optional
    (the precision study reports what is missing).
    """
    found = find_artifacts(artifacts_dir)
    wanted = tags or sorted(found)
    missing = [t for t in wanted if t not in found]
    if missing:
        raise ParityError(f"no artifact for tag(s) {missing} in {artifacts_dir}; found {sorted(found)}. "
                          "Re-run the producer for them.")
    expected = ckpt.fingerprint(checkpoint)["fingerprint"]
    loaded = {}
    for variant in [DEFAULT_VARIANT, *[v for v in (variants or []) if v != DEFAULT_VARIANT]]:
        paths = find_artifacts(artifacts_dir, variant)
        loaded[variant] = {t: load_artifact(paths[t], expected_fingerprint=expected, trust_legacy=trust_legacy)
                           for t in wanted if t in paths}
    return loaded


def load_sweep(artifacts_dir, checkpoint: Path, tags: list[str]) -> dict[tuple[str, str], Artifact]:
    """(tag, case) -> the input sweep's artifacts (``core.sweep.case_path``), fingerprint-checked."""
    from groot_lib.core.sweep_cases import case_dirs

    expected = ckpt.fingerprint(checkpoint)["fingerprint"]
    return {(tag, case_dir.name): load_artifact(path, expected_fingerprint=expected)
            for case_dir in case_dirs(artifacts_dir)
            for tag, path in find_artifacts(case_dir).items() if tag in tags}


@dataclass
class ConsumerReport:
    """Everything the consumer notebook shows and ``verdicts.json`` records."""

    results: list[TagResult]
    precision: list[PrecisionVerdict]
    replays: ReplaySet
    refused: dict[str, str]  # variant -> why (the producer's and this kernel's refusals)
    k: float
    noise_mode: str
    timings: dict = field(default_factory=dict)
    figures: dict = field(default_factory=dict, repr=False)  # what heatmaps() drew, kept for the report folder
    sweep: list[SweepCaseResult] = field(default_factory=list)  # the input sweep, case by case (SWEEP=N)
    variants: list[str] = field(default_factory=list)  # the variants judged (the precision study needs two)
    judged: dict = field(default_factory=dict)  # what the original's outputs were made with: seed, batch, checkpoint

    @property
    def passed(self) -> bool:
        return (bool(self.results) and all(r.passed for r in self.results) and all(r.passed for r in self.sweep)
                and all(v.passed for v in self.precision) and not self.refused)

    @property
    def sweep_summary(self) -> list[SweepSummary]:
        return summarise(self.sweep)

    @property
    def suspect(self) -> list[Comparison]:
        return [c for r in self.results for c in r.comparisons if c.suspect] + \
               [c for r in self.sweep for c in r.comparisons if c.suspect]

    def not_compared(self) -> list[dict]:
        """{tag, check, why} for every check that could not run: a report judged on less says so, everywhere."""
        out = []
        for r in self.results:
            if not r.preprocessor:
                out.append({"tag": r.tag, "check": "preprocessor parity", "why": r.preprocessor_missing})
            if r.decoded is None:
                out.append({"tag": r.tag, "check": "decoded actions", "why": r.decoded_missing})
            if not r.training:
                out.append({"tag": r.tag, "check": "training step", "why": r.training_missing})
            if r.stages is None and r.model.status != "PASS":
                out.append({"tag": r.tag, "check": "stage localisation", "why": r.stages_missing})
        for case in self.sweep:
            if case.stages is None and status_of(case.comparisons) != "PASS":
                out.append({"tag": case.tag, "check": f"stage localisation ({case.case})", "why": case.stages_missing})
        low = [v for v in self.variants if v != DEFAULT_VARIANT]
        if not low:
            out.append({"tag": "*", "check": "precision study",
                        "why": "no low-precision variant ran (VARIANTS holds fp32-sdpa only, or the imported folder "
                               "has fp32 artifacts only)"})
        return out

    def where(self) -> list[dict]:
        """One line per FAIL or SUSPECT cell: where it fails and by how much (compare/where.py)."""
        return where_lines(self.results, self.precision, self.sweep)

    @property
    def reused(self) -> bool:
        return bool(self.replays.replays) and all(r.status == "reused" for r in self.replays.replays.values())

    @contextmanager
    def _timed_plots(self):
        """Accumulate plotting seconds into ``timings['plots']`` (timings.json's plots phase)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings["plots"] = round(self.timings.get("plots", 0.0) + time.perf_counter() - start, 2)

    def _drawn_once(self, name: str, draw) -> list:
        """``draw()``'s figures, drawn (and timed) on the first call only: the notebook shows them and
        ``write_verdicts`` saves the same PNGs into the report folder."""
        if name not in self.figures:
            with self._timed_plots():
                self.figures[name] = draw()
        return self.figures[name]

    def heatmaps(self) -> list[tuple[str, bytes | str]]:
        """(title, PNG) per tag: model parity |delta| over horizon x dim, or (title, why there is none)."""
        from groot_lib.compare import plots

        def draw(r: TagResult) -> tuple[str, bytes | str]:
            title, data = heatmap_title(r.tag, r.model), r.heatmap_data()
            if not data:
                why = r.model.reason or (f"action_pred {r.original_action.shape} is smaller than the embodiment's "
                                         f"valid region ({r.layout.action_horizon} x {r.layout.action_dim})")
                return title, f"no heatmap: {why}"
            return title, plots.png(plots.action_heatmap(data["delta_hd"], violations_hd=data["violations_hd"],
                                                         layout=r.layout, title=title))

        return self._drawn_once("heatmaps", lambda: [draw(r) for r in self.results])

    def decoded_heatmaps(self) -> list[tuple[str, bytes | str]]:
        """(title, PNG) per tag: decoded-action |delta| over (horizon x named action dims), or (title, why none)."""
        from groot_lib.compare import plots

        def draw(r: TagResult) -> tuple[str, bytes | str]:
            title = f"{r.tag}: decoded actions " + (r.decoded.status if r.decoded else "not compared")
            data = r.decoded_heatmap_data()
            if not data:
                return title, "no heatmap: " + (r.decoded_missing or (r.decoded.reason if r.decoded else ""))
            return title, plots.png(plots.action_heatmap(data["delta_hd"], violations_hd=data["violations_hd"],
                                                         layout=r.layout, title=title))

        return self._drawn_once("decoded", lambda: [draw(r) for r in self.results])

    def training_heatmaps(self) -> list[tuple[str, bytes | str]]:
        """(title, PNG) per tag that ran the training step: its action-loss |delta| over (horizon x named action
        dims), or (title, why there is none)."""
        from groot_lib.compare import plots
        from groot_lib.compare.where import status_of

        def draw(r: TagResult) -> tuple[str, bytes | str]:
            title = f"{r.tag}: training step {status_of(r.training)} (action loss |delta|)"
            data = r.training_heatmap_data()
            if not data:
                return title, "no heatmap: " + (r.training_missing or "the training step's action loss was not compared")
            return title, plots.png(plots.action_heatmap(data["delta_hd"], violations_hd=data["violations_hd"],
                                                         layout=r.layout, title=title))

        return self._drawn_once("training", lambda: [draw(r) for r in self.results if r.training])

    def recipes(self) -> dict[str, list[dict]]:
        """tag -> each fine-tuning recipe setting side by side (compare/training.recipe_rows), for tags that ran it."""
        return {r.tag: r.recipe for r in self.results if r.recipe}

    def stage_figures(self) -> list[tuple[str, str, bytes]]:
        """(tag, title, PNG) of the stage profile for each tag that shows its stages (TagResult.shows_stages)."""
        from groot_lib.compare import plots

        def draw(r: TagResult) -> tuple[str, str, bytes]:
            title = f"{r.tag}: {r.stages.describe()}"
            return r.tag, title, plots.png(plots.stage_profile(r.stages.rows, threshold=r.stages.threshold,
                                                               title=title))

        return self._drawn_once("stages", lambda: [draw(r) for r in self.results if r.shows_stages])

    def precision_figures(self) -> list[tuple[str, str, bytes]]:
        """(tag, variant, PNG) per tag and variant: the four gaps on one shared colour scale (heatmap_grid's)."""
        from groot_lib.compare import plots

        def draw(v) -> tuple[str, str, bytes] | None:
            panels = v.heatmap_panels()
            if not panels:
                return None
            fig = plots.heatmap_grid(panels, ncols=2)
            fig.suptitle(plots.wrapped(f"{v.tag} / {v.variant}: {'PASS' if v.passed else 'FAIL'}\n{v.reason}",
                                       fig.get_figwidth(), 11), fontsize=11)
            return v.tag, v.variant, plots.png(fig)

        return self._drawn_once("precision", lambda: [f for f in map(draw, self.precision) if f])


class Checks:
    """Model, preprocessor and decoded-action parity of one artifact against LeRobot's replay of it, with the
    checkpoint's layouts and statistics and the backbone's tokenizer loaded once: the same checks for a tag's fixed
    observation and for each input-sweep case."""

    def __init__(self, checkpoint: Path, knobs, tags: list[str]):
        self.knobs = knobs
        self.layouts = {tag: ckpt.embodiment_layout(checkpoint, tag) for tag in tags}
        self.statistics = ckpt.read_json(checkpoint / "statistics.json")
        self.decoder = TokenDecoder(checkpoint)

    def run(self, tag: str, replay, artifact: Artifact):
        """(model, [preprocessor], why no preprocessor, decoded, why no decoded)."""
        atol, rtol, layout = self.knobs.atol, self.knobs.rtol, self.layouts[tag]
        model = model_parity(replay, artifact, atol=atol, rtol=rtol, noise_mode=self.knobs.noise_mode, layout=layout)
        if artifact.extra.get("upstream"):
            model.notes += _upstream_notes(artifact, layout, replay)
        pre, pre_missing = [], ""
        if artifact.raw:
            pre = preprocessor_parity(replay, artifact, atol=atol, rtol=rtol, layout=layout,
                                      statistics=self.statistics.get(tag, {}), decode=self.decoder)
        else:
            pre_missing = ("the original's file holds no raw observations" + (
                " (LeRobot's dump records only the collated inputs)" if artifact.extra.get("upstream") else ""))
        return (model, pre, pre_missing, *decoded_parity(replay, artifact, atol=atol, rtol=rtol, layout=layout))

    def tag(self, tag: str, replay, artifact: Artifact) -> TagResult:
        """A tag's fixed observation: every check, where its stages diverge, what preprocessing does to actions."""
        model, pre, pre_missing, decoded, decoded_missing = self.run(tag, replay, artifact)
        stages, missing = stage_parity(replay, artifact)
        training, recipe, training_missing = training_parity(replay, artifact, atol=self.knobs.atol,
                                                             rtol=self.knobs.rtol, layout=self.layouts[tag])
        return TagResult(tag, self.layouts[tag], model, pre, replay.action_pred, artifact.action_pred,
                         self.knobs.noise_mode, seconds=replay.seconds, stages=stages, stages_missing=missing,
                         preprocessor_missing=pre_missing, preprocessing_effect=_preprocessing_effect(replay),
                         decoded=decoded, decoded_missing=decoded_missing, lerobot_decoded=replay.decoded,
                         original_decoded=artifact.decoded_action, training=training,
                         training_missing=training_missing, recipe=recipe,
                         action_losses=((replay.training["action_loss"], artifact.training["action_loss"])
                                        if training and "action_loss" in replay.training else None))

    def case(self, tag: str, case: str, replay, artifact: Artifact) -> SweepCaseResult:
        """One input-sweep case, under the fixed observation's rules and localisation."""
        model, pre, _, decoded, _ = self.run(tag, replay, artifact)
        stages, missing = stage_parity(replay, artifact)
        return SweepCaseResult(tag, case, artifact.extra.get("sweep_case", {"case": case}),
                               [model, *pre, *([decoded] if decoded else [])], stages, missing)


def run_all(checkpoint, artifacts_dir, knobs=None, *, variants=None, source: dict | None = None,
            store_dir=None) -> ConsumerReport:
    """LeRobot replays (reused when stored), then model + preprocessor parity and the precision study.

    ``knobs``: the consumer's settings (``settings.for_notebook("consumer", ...)``; None: defaults and environment);
    ``variants``: the variants to judge (default: every variant the artifacts folder holds)."""
    from groot_lib.backends import process
    from groot_lib.core.artifact import find_variants

    knobs = knobs or settings.for_notebook("consumer")
    checkpoint = ckpt.resolve_checkpoint(checkpoint)
    device = process.resolve_device(knobs.device)
    variants = settings.parse_list(variants) or find_variants(artifacts_dir)
    artifacts = load_artifacts(artifacts_dir, checkpoint, knobs.tag_list, variants, trust_legacy=knobs.trust_legacy)
    if knobs.noise_mode == "inject":
        lacking = [a.path.name for a in artifacts[DEFAULT_VARIANT].values() if a.initial_noise is None]
        if lacking:
            raise ParityError(f"noise_mode='inject' but {', '.join(lacking)} in {artifacts_dir} have no "
                              "out::initial_noise; re-run the producer, or use noise_mode='seed'")
    sweep = load_sweep(artifacts_dir, checkpoint, list(artifacts[DEFAULT_VARIANT]))
    drop_prefetched()
    replays = replay_all(checkpoint, artifacts, knobs, variants=variants, device=device, store_dir=store_dir,
                         sweep=sweep)
    checks = Checks(checkpoint, knobs, list(artifacts[DEFAULT_VARIANT]))
    results = [checks.tag(tag, replays.replays[(tag, DEFAULT_VARIANT)], artifact)
               for tag, artifact in artifacts[DEFAULT_VARIANT].items()]
    swept = [checks.case(tag, case, replays.sweep[(tag, case)], artifact) for (tag, case), artifact in sweep.items()]
    precision = precision_study(replays, artifacts, variants, layouts=checks.layouts, k=knobs.precision_k)
    first = next(iter(artifacts[DEFAULT_VARIANT].values()))
    judged = {"seed": first.seed, "batch_size": first.batch_size,
              "checkpoint fingerprint": ckpt.fingerprint(checkpoint)["fingerprint"]}
    return ConsumerReport(results, precision, replays, {**(source or {}).get("refused", {}), **replays.refused},
                          knobs.precision_k, knobs.noise_mode, timings=dict(replays.timings), sweep=swept,
                          variants=list(variants), judged=judged)


class TokenDecoder:
    """ids -> token strings with the backbone's tokenizer from the HF cache, loaded only when a token
    sequence differs; ids as numbers when no tokenizer loads (said in the table)."""

    def __init__(self, checkpoint: Path):
        self.checkpoint, self.tokenizer, self.tried = checkpoint, None, False

    def __call__(self, ids: list[int]) -> list[str]:
        if not self.tried:
            self.tried = True
            from transformers import AutoTokenizer

            for model_id in ckpt.backbone_ids(self.checkpoint):
                try:
                    self.tokenizer = AutoTokenizer.from_pretrained(model_id)
                    break
                except Exception:  # noqa: BLE001 - not cached: try the next id, else plain ids
                    continue
        if self.tokenizer is None:
            return [f"#{i}" for i in ids]
        return [repr(t)[1:-1] for t in self.tokenizer.convert_ids_to_tokens(ids)]


def _upstream_notes(artifact: Artifact, layout, replay) -> list[str]:
    """What a LeRobot dump (core/upstream.py) can and cannot show, checked against the checkpoint where possible."""
    from groot_lib.core import upstream

    notes = [f"{artifact.path.name}: LeRobot's dump_original_n1_7.py output, read on trust; {artifact.extra['warning']}"]
    notes += upstream.check_against(artifact, layout)
    dumped = str(artifact.producer.get("device", ""))
    replayed = str(replay.info.get("provenance", {}).get("device", ""))
    if dumped and replayed and dumped.split(":")[0] != replayed.split(":")[0]:
        notes.append(f"dumped on {dumped}, replayed on {replayed}: the same seed draws different initial noise on the "
                     f"two generators and the dump records none, so action_pred cannot match; replay on {dumped} "
                     f"(DEVICE={dumped} or GROOT_PARITY_DEVICE={dumped})")
    return notes


def _preprocessing_effect(replay) -> dict | None:
    """LeRobot's model on LeRobot's own preprocessed inputs vs on the original's: what a preprocessing
    difference does to the actions (None when the replay predates it or its inputs could not run)."""
    e2e = replay.arrays.get("e2e_pred")
    if e2e is None or e2e.shape != replay.action_pred.shape:
        return None
    delta = np.abs(e2e.astype(np.float64) - replay.action_pred.astype(np.float64))
    return {"max|delta|": float(delta.max()), "mean|delta|": float(delta.mean())}


def _tag_summary(result: TagResult, limit: int = 200) -> dict:
    data = result.heatmap_data()
    cells = np.argwhere(data["violations_hd"]).tolist() if data else []
    valid = np.argwhere(data["violations_hd"] & result.layout.valid_mask(data["violations_hd"].shape)) if data else []
    stages = result.stages.summary() if result.stages else {"first_divergence": None,
                                                            "not compared": result.stages_missing}
    return {"passed": result.passed, "noise_mode": result.noise_mode, "seconds": round(result.seconds, 2),
            "first_divergence": result.divergence(), "stages": stages,
            "preprocessing effect on action_pred": result.preprocessing_effect,
            "decoded actions": (result.decoded.status if result.decoded else f"not compared: {result.decoded_missing}"),
            "training recipe": result.recipe,
            "input details": {c.name: [{k: v for k, v in row.items() if k != "images"} for row in c.details]
                              for c in result.preprocessor if c.details},
            "n_violating_cells": len(cells), "violating_cells": cells[:limit],
            "n_violating_valid": len(valid), "n_violating_padding": len(cells) - len(valid),
            "valid_horizon": result.layout.action_horizon, "valid_dim": result.layout.action_dim}


def json_safe(value):
    """NaN and Inf become null: verdicts.json stays strict JSON (the rows' reasons say what was non-finite)."""
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, (np.floating, np.integer)):
        return json_safe(value.item())
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def _save_figures(report: ConsumerReport, output_dir: Path) -> dict[str, dict]:
    """The figures the notebook showed, saved for the index page: verdicts.json's figure keys, each tag ->
    'figures/<tag><suffix>.png'; a tag whose entry is text (why there is no figure) has none."""
    def saved(pngs, suffix: str = "") -> dict[str, str]:
        return {tag: "figures/" + atomic_write_bytes(output_dir / "figures" / f"{tag}{suffix}.png", png).name
                for tag, png in pngs if isinstance(png, bytes)}

    trained = [r for r in report.results if r.training]
    precision_figures: dict[str, list[str]] = {}
    for tag, variant, png in report.precision_figures():
        precision_figures.setdefault(tag, []).extend(saved([(tag, png)], f"-precision-{variant}").values())
    return {"figures": saved((r.tag, png) for r, (_, png) in zip(report.results, report.heatmaps())),
            "stage_figures": saved(((tag, png) for tag, _, png in report.stage_figures()), "-stages"),
            "decoded_figures": saved(((r.tag, png) for r, (_, png) in zip(report.results, report.decoded_heatmaps())),
                                     "-decoded"),
            "training_figures": saved(((r.tag, png) for r, (_, png) in zip(trained, report.training_heatmaps())),
                                      "-training"),
            "precision_figures": precision_figures}


def write_verdicts(report: ConsumerReport, output_dir, *, source: dict, settings: dict) -> Path:
    """Machine-readable summary the report's index page is built from (atomic, strict JSON).

    Also hard-links LeRobot's stored outputs into ``output_dir/lerobot`` so the report keeps what it
    was judged on after ``make clean-artifacts``.
    """
    from groot_lib.core import machine
    from groot_lib.core import runinfo
    published = report.replays.publish(Path(output_dir) / "lerobot")

    figures = _save_figures(report, Path(output_dir))
    provenances = [r.info.get("provenance", {}) for r in report.replays.replays.values()]
    payload = {
        "passed": report.passed,
        "suspect": [f"{c.tag} / {c.check} / {c.name}" for c in report.suspect],
        "source": source,
        "settings": {**settings, "precision_k": report.k, **report.judged},
        "lerobot": {"code": report.replays.code,
                    "machine": next((p["machine"] for p in provenances if p.get("machine")), machine.cpu_info())},
        "rows": [c.as_row() for r in report.results for c in r.comparisons],
        "row_notes": [f"{c.tag} / {c.check} / {c.name}: {note}" for r in report.results for c in r.comparisons
                      for note in c.notes],
        "tags": {r.tag: _tag_summary(r) for r in report.results},
        # where each tag's models start to differ: {"state": "diverges", stage...}, {"state": "none", compared N}
        # or {"state": "not compared", "why"}: never one null for both "none diverged" and "never compared"
        "first_divergence": {r.tag: r.divergence() for r in report.results},
        "where": report.where(),
        "not_compared": report.not_compared(),
        "sweep": {"cases": len({(r.tag, r.case) for r in report.sweep}),
                  "summary": [s.as_row() for s in report.sweep_summary],
                  "failing": [{"tag": r.tag, "case": r.case, "inputs": r.inputs,
                               "checks": [c.as_row() for c in r.comparisons if not c.passed]}
                              for r in report.sweep if not r.passed]},
        "precision": [v.as_row() for v in report.precision],
        "precision_gaps": [g.as_row(v.tag, v.variant) for v in report.precision for g in v.gaps],
        "refused": report.refused,
        "replays": report.replays.rows(),
        "published": [p.name for p in published],
        **figures,
        "reused": report.reused,
        "notes": report.replays.notes,
        "timings": {**report.timings, "peak_rss_mb": runinfo.peak_rss_mb()},
    }
    return report_folder.write_verdicts(Path(output_dir), json.loads(json.dumps(json_safe(payload), default=float)))
