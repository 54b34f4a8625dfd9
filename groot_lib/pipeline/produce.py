"""Producer: per embodiment, build observations, run the original, write one artifact.

Runs in the groot-original kernel. When ``gr00t`` is not importable and the
checkpoint is the embedded tiny one, it serves the committed recordings instead
and says so; for any other checkpoint it stops with instructions.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from groot_lib.core import checkpoint as ckpt
from groot_lib.core import settings
from groot_lib.core.artifact import SCHEMA, Artifact, artifact_path, load_artifact, save_artifact
from groot_lib.core.errors import ParityError
from groot_lib.core import sweep_cases as input_sweep
from groot_lib.core.observations import OBSERVATION_RECIPE, TRAINING_RECIPE, build_observations
from groot_lib.core.sweep_cases import SWEEP_RECIPE, case_path
from groot_lib.core.store import DEFAULT_ROOT, code_digest, content_key, entry_path, publish
from groot_lib.core.variants import plan
from groot_lib.pipeline import handoff, progress
from groot_lib.pipeline import driver, training_step
from groot_lib.pipeline.driver import Job
from groot_lib.pipeline.sources import ProducerResult, use_recordings
from groot_lib.tiny import layout as tiny_layout



BACKEND = "original"  # reached through backends.contract.backend, which checks it
# the groot_lib code a stored artifact is keyed by: every module these import (core.store.module_closure); the
# backend is named, since the contract imports it by name at run time
KEY_CODE = ("pipeline.produce", f"backends.{BACKEND}")


def _stored(path: Path, key: str, fingerprint: str, notes: list[str]):
    """The stored artifact at ``path`` if it is valid and was written under ``key``; else None (and why)."""
    if not path.is_file():
        return None
    try:
        artifact = load_artifact(path, expected_fingerprint=fingerprint)
    except ParityError as exc:
        notes.append(f"stored {path} is unusable, recomputing it: {str(exc).splitlines()[0]}")
        return None
    if artifact.extra.get("store_key") != key:
        notes.append(f"stored {path} does not carry its key {key}, recomputing it")
        return None
    return artifact


def key_base(checkpoint: Path, gr00t: dict, *, seed: int, batch_size: int, device: str, stage_mb: float) -> dict:
    """What every stored original artifact is keyed by, beside its own tag, variant, noise and sweep case: the
    checkpoint's fingerprint and every file the model reads (the checkpoint's files, the backbone's HF cache),
    the observation recipe, seed, batch and device, gr00t's commit and the content of its sources (uncommitted
    edits included), the machine's math stack, versions, and the groot_lib code the producer goes through
    (derived from its imports). Never a name or version number alone."""
    from groot_lib.backends import math_stack
    from groot_lib.core import runinfo

    return {"schema": SCHEMA, "checkpoint": ckpt.fingerprint(checkpoint)["fingerprint"], "seed": seed,
            "batch_size": batch_size, "recipe": OBSERVATION_RECIPE, "device": device, "gr00t": gr00t.get("commit"),
            "gr00t_code": gr00t.get("code"),
            "checkpoint_files": ckpt.input_signature(checkpoint, os.environ.get("HF_HOME")),
            "machine": math_stack.machine_info(device),
            "versions": runinfo.versions("torch", "transformers", "gr00t", "numpy"),
            "code": code_digest(*KEY_CODE), "stage_mb": stage_mb}


@dataclass
class ProducerRun:
    """The original's jobs for one report (driver.Runner): one artifact per (tag, variant), plus the input sweep's
    cases on the reference variant's load; each keyed by ``base`` and its own tag, variant, noise and case.

    The hand-off between variants is explicit: ``settled`` keeps each tag's first-variant initial noise in
    ``first_noise`` as soon as that outcome is settled (reused or computed), and a later variant's ``compute``
    starts from it, so precision is the only thing that changes between variants."""

    checkpoint: Path
    output_dir: Path
    store_dir: Path
    device: str
    tags: list[str]
    seed: int
    stage_mb: float
    first: str  # the reference variant's name
    base: dict  # key_base: what every artifact is keyed by
    fingerprint: dict
    layouts: dict
    raws: dict  # tag -> the fixed observation
    cases: dict  # tag -> the input sweep's cases
    statistics: dict
    environment: dict
    backend: object  # backends.original, checked against the contract (backends.contract.backend)
    result: ProducerResult
    train: bool  # the reference variant's fixed observations also record one training step
    train_update: bool  # ... and one optimizer step
    first_noise: dict = field(default_factory=dict)  # tag -> the reference variant's initial noise
    side = "producer"

    def jobs(self, variant) -> list[Job]:
        noise = "drawn after seeding" if variant.name == self.first else f"injected from {self.first}"
        jobs = [self._job(tag, variant, noise, self.raws[tag], self.seed) for tag in self.tags]
        if variant.name == self.first:  # the input sweep (core/sweep_cases.py) rides on the reference model's one load
            jobs += [self._job(tag, variant, noise, input_sweep.observations(self.layouts[tag], case,
                                                                             self.statistics[tag]), case.seed, case)
                     for tag in self.tags for case in self.cases[tag]]
        return jobs

    def _job(self, tag: str, variant, noise: str, raw: dict, seed: int, case=None) -> Job:
        fields = {**self.base, "tag": tag, "variant": variant.name, "noise": noise,
                  **({"sweep": [SWEEP_RECIPE, case.describe()]} if case else {}),
                  **({"train": [TRAINING_RECIPE, self.train_update]} if self._trains(variant, case) else {})}
        key = content_key(fields)
        name = f"{tag}.{case.name}" if case else tag
        return Job(tag, variant, key, entry_path(self.store_dir, "original", name, variant.name, key),
                   {"noise": noise, "raw": raw, "seed": seed, "case": case})

    def _trains(self, variant, case) -> bool:
        return self.train and case is None and variant.name == self.first

    def read(self, job: Job):
        return _stored(job.path, job.key, self.fingerprint["fingerprint"], self.result.notes)

    def load(self, variant, todo: list[Job]):
        progress.note("producer", f"loading gr00t ({variant.name}, {self.device}) for {len(todo)} tag(s)")
        return self.backend.load(self.checkpoint, None, variant=variant, device=self.device)

    def compute(self, loaded, job: Job) -> dict:
        """Preprocess, sample (the reference variant also records its named stages and their inputs, for the
        fixed observation and each sweep case: where a divergence starts) and decode (what the robot gets; a decoder
        that cannot run is recorded, model parity still stands)."""
        from groot_lib.backends import contract, stage_hooks

        ob = self.backend
        raw, case = job.context["raw"], job.context["case"]
        inputs = ob.preprocess(loaded, self.layouts[job.tag], raw)
        stages = bool(self.stage_mb) and job.variant.name == self.first
        out = ob.sample(loaded, inputs, seed=job.context["seed"], noise=None if case else self.first_noise.get(job.tag),
                        capture_stages=stages, stage_inputs=stages, stage_mb=self.stage_mb)
        captured = out.pop("stages", None)
        decode_error = None
        try:
            out["decoded_action"] = ob.decode(loaded, self.layouts[job.tag], raw, out["action_pred"])
        except Exception as exc:  # noqa: BLE001 - the consumer reports it beside the other checks
            decode_error = f"{type(exc).__name__}: {exc}"
        if captured:  # repeated arrays (pixel_values, a block's input = the previous block's output) stored once
            captured = stage_hooks.compact(captured, model_inputs=inputs)
        training = (training_step.record(ob, loaded, self.layouts[job.tag], raw, seed=job.context["seed"],
                                         statistics=self.statistics[job.tag], update=self.train_update)
                    if self._trains(job.variant, case) else ({}, None))
        return {"out": out, "inputs": inputs, "stages": captured, "decode_error": decode_error,
                "training": training, "producer": contract.provenance_once(ob, loaded)}

    def store(self, job: Job, done: dict) -> dict:
        raw, case, decode_error = job.context["raw"], job.context["case"], done["decode_error"]
        save_artifact(Artifact(
            job.path, embodiment_tag=job.tag, seed=job.context["seed"], checkpoint=self.fingerprint,
            producer=done["producer"], raw=raw, inputs=done["inputs"], outputs=done["out"], variant=job.variant.name,
            stages=done["stages"] or {}, training=done["training"][0],
            extra={**({"training": done["training"][1]} if done["training"][1] else {}),
                   "observation_recipe": SWEEP_RECIPE if case else OBSERVATION_RECIPE,
                   "batch_size": int(next(iter(raw.values())).shape[0]), "noise": job.context["noise"],
                   "store_key": job.key, "environment": self.environment,
                   **({"sweep_case": case.describe()} if case else {}),
                   **({"decode_error": decode_error} if decode_error else {})}))
        return done["out"]

    def settled(self, outcome) -> None:
        """Hand the reference variant's noise on, publish the artifact into the report, say so."""
        job, case = outcome.job, outcome.job.context["case"]
        if case is None and job.variant.name == self.first:
            value = outcome.value
            self.first_noise[job.tag] = value.initial_noise if outcome.status == "reused" else value.get("initial_noise")
        what = f"{job.tag} {job.variant.name}" + (f" sweep {case.name}" if case else "")
        progress.note("producer", f"{what}: {outcome.status}"
                                  + (f" in {outcome.seconds:.1f} s" if outcome.status == "computed" else ""))
        self.result.rows.append({"tag": job.tag, "variant": job.variant.name, "status": outcome.status,
                                 "seconds": round(outcome.seconds, 2), "key": job.key,
                                 **({"case": case.name} if case else {})})
        if case:
            publish(job.path, case_path(self.output_dir, case.name, job.tag))
        else:
            path = publish(job.path, artifact_path(self.output_dir, job.tag, job.variant.name))
            self.result.artifacts.setdefault(job.tag, {})[job.variant.name] = path


@dataclass(frozen=True)
class Request:
    """What ``produce`` was asked for, resolved: the checkpoint and its tags, the knobs, the device, and where the
    outputs go (the store, the report's folder) with the environment they ran in."""

    checkpoint: Path
    tags: list[str]
    knobs: object  # settings.Knobs of the producer
    device: str
    output_dir: Path
    store_dir: Path
    environment: dict


def _tags(checkpoint: Path, knobs) -> list[str]:
    known = ckpt.embodiment_tags(checkpoint)
    tags = knobs.tag_list or known
    unknown = [t for t in tags if t not in known]
    if unknown:
        raise ParityError(f"embodiment tag(s) {unknown} are not in {checkpoint} (it has {known})")
    return tags


def _import_stack(knobs) -> tuple[str, dict, float]:
    """torch (the device check) and gr00t's stack, timed as the producer's imports: (device, gr00t's identity,
    seconds)."""
    from groot_lib.backends import contract, process

    imports: dict[str, float] = {}
    with progress.span("producer", "imports", imports):
        device = process.resolve_device(knobs.device)
        ob = contract.backend(BACKEND)
        status = ob.identity()
        if status["available"]:
            ob.import_stack()
            process.imports_done()
    return device, status, round(imports["imports"], 2)


def produce(checkpoint: str | os.PathLike, output_dir: str | os.PathLike, knobs=None, *,
            environment: dict | None = None, store_dir: str | os.PathLike | None = None,
            allow_recorded: bool = True) -> ProducerResult:
    """Run the original on every requested tag and variant; one artifact per (tag, variant).

    ``knobs``: the producer's settings (``settings.for_notebook("producer", ...)``; None: defaults and environment).
    Artifacts are kept in a content-addressed store (default ``build/artifacts``) and published into
    ``output_dir``; a valid stored one is reused and no model is loaded for it. Without gr00t, the embedded tiny
    default is served from the committed recordings (``sources.use_recordings``).
    """
    from groot_lib.backends import contract
    from groot_lib.core import runinfo

    ob = contract.backend(BACKEND)
    knobs = knobs or settings.for_notebook("producer")
    checkpoint, output_dir = ckpt.resolve_checkpoint(checkpoint), Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    store_dir = Path(store_dir) if store_dir else DEFAULT_ROOT
    tags = _tags(checkpoint, knobs)
    device, status, imported = _import_stack(knobs)
    runnable, refused = plan(settings.parse_list(knobs.variants), device, kernel=ob.KERNEL)
    if not status["available"]:
        if allow_recorded and tiny_layout.is_embedded(checkpoint):
            return use_recordings(checkpoint, output_dir, tags, [v.name for v in runnable], knobs, refused=refused,
                                  reason=f"gr00t not importable: {status['error']}")
        ob.require()  # raises with the how-to
    request = Request(checkpoint, tags, knobs, device, output_dir, store_dir, environment or {})
    run = _live_run(request, status=status, first=runnable[0].name, refused=refused, backend=ob)
    timings: dict[str, float] = {}
    driver.run(run, runnable, timings=timings, failed=run.result.refused)
    # Every model is released by now: the consumer may load its own once source.json is there (core/memory.py)
    run.result.timings = {k: round(v, 2) for k, v in timings.items()} | {
        "imports": imported, "peak_rss_mb": runinfo.peak_rss_mb(), "rss_after_release_mb": runinfo.rss_mb()}
    handoff.write_source(output_dir, run.result.source_info(gr00t=status, store=str(store_dir),
                                                            machine=run.base["machine"]))
    return run.result


def _live_run(request: Request, *, status: dict, first: str, refused: dict, backend) -> ProducerRun:
    """The original's jobs, run live with gr00t: observations, sweep cases and keys built once."""
    checkpoint, knobs, tags = request.checkpoint, request.knobs, request.tags
    stage_mb = knobs.stage_mb if knobs.stages != "off" else 0
    statistics = json.loads((checkpoint / "statistics.json").read_text())
    banner = (f"original outputs: run live with gr00t {(status.get('commit') or 'unknown commit')[:12]}"
              f"{' + uncommitted changes' if status.get('modified') else ''} (code {status.get('code')}) "
              f"from {status['source']}")
    layouts = {tag: ckpt.embodiment_layout(checkpoint, tag) for tag in tags}
    return ProducerRun(
        checkpoint, request.output_dir, request.store_dir, request.device, tags, knobs.seed, stage_mb, first,
        base=key_base(checkpoint, status, seed=knobs.seed, batch_size=knobs.batch_size, device=request.device,
                      stage_mb=stage_mb),
        fingerprint=ckpt.fingerprint(checkpoint), layouts=layouts,
        raws={tag: build_observations(layouts[tag], seed=knobs.seed, batch_size=knobs.batch_size,
                                      statistics=statistics[tag]) for tag in tags},
        cases={tag: [input_sweep.case(layouts[tag], i, knobs.seed) for i in knobs.sweep_cases()] for tag in tags},
        statistics=statistics, environment=request.environment, backend=backend,
        result=ProducerResult(mode="live", banner=banner, refused=refused), train=knobs.train,
        train_update=knobs.train and knobs.train_update)
