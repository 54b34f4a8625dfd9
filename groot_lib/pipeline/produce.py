"""Producer: per embodiment, build observations, run the original, write one artifact.

Runs in the groot-original kernel. When ``gr00t`` is not importable and the
checkpoint is the embedded tiny one, it serves the committed recordings instead
and says so; for any other checkpoint it stops with instructions.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from groot_lib.core import checkpoint as ckpt
from groot_lib.core import settings
from groot_lib.core.artifact import SCHEMA, artifact_path, load_artifact, save_artifact
from groot_lib.core.errors import ParityError
from groot_lib.core import sweep_cases as input_sweep
from groot_lib.core.observations import OBSERVATION_RECIPE, build_observations
from groot_lib.core.sweep_cases import SWEEP_RECIPE, case_path
from groot_lib.core.store import DEFAULT_ROOT, code_digest, content_key, entry_path, publish
from groot_lib.core.variants import plan
from groot_lib.pipeline import handoff, progress
from groot_lib.pipeline.driver import Job, get_or_compute
from groot_lib.pipeline.sources import ProducerResult, use_recordings
from groot_lib.tiny import layout as tiny_layout



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
            "code": code_digest("pipeline.produce"), "stage_mb": stage_mb}


def produce(checkpoint: str | os.PathLike, output_dir: str | os.PathLike, *, tags=None, seed=None,
            batch_size=None, device=None, variants=None, allow_recorded: bool = True, recordings=None, stage_mb=None,
            stages=None, sweep=None,
            environment: dict | None = None, store_dir: str | os.PathLike | None = None) -> ProducerResult:
    """Run the original on every requested tag and variant; one artifact per (tag, variant).

    Artifacts are kept in a content-addressed store (default ``build/artifacts``) and
    published into ``output_dir``; a valid stored one is reused and no model is loaded for it.
    """
    from groot_lib.backends import contract, process
    from groot_lib.backends import original as ob
    from groot_lib.backends import stage_hooks
    from groot_lib.core import runinfo

    checkpoint = ckpt.resolve_checkpoint(checkpoint)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    store_dir = Path(store_dir) if store_dir else DEFAULT_ROOT
    known = ckpt.embodiment_tags(checkpoint)
    tags = settings.parse_list(tags) or known
    unknown = [t for t in tags if t not in known]
    if unknown:
        raise ParityError(f"embodiment tag(s) {unknown} are not in {checkpoint} (it has {known})")
    seed, batch_size = settings.value("seed", seed), settings.value("batch_size", batch_size)
    sweep = settings.value("sweep", sweep)
    stage_mb = settings.value("stage_mb", stage_mb) if settings.value("stages", stages) != "off" else 0
    imports: dict[str, float] = {}
    with progress.span("producer", "imports", imports):  # torch (the device check) and gr00t's stack
        device = process.resolve_device(settings.value("device", device))
        status = ob.identity()
        if status["available"]:
            ob.import_stack()
            process.imports_done()
    runnable, refused = plan(settings.parse_list(variants), device, kernel=ob.KERNEL)
    imported = round(imports["imports"], 2)
    if not status["available"]:
        if allow_recorded and tiny_layout.is_embedded(checkpoint):
            return use_recordings(checkpoint, output_dir, tags, [v.name for v in runnable], seed=seed,
                                  batch_size=batch_size, refused=refused, sweep=sweep,
                                  which=settings.value("recordings", recordings),
                                  reason=f"gr00t not importable: {status['error']}")
        ob.require_gr00t()  # raises with the how-to

    fp = ckpt.fingerprint(checkpoint)
    stats = json.loads((checkpoint / "statistics.json").read_text())
    banner = (f"original outputs: run live with gr00t {(status.get('commit') or 'unknown commit')[:12]}"
              f"{' + uncommitted changes' if status.get('modified') else ''} (code {status.get('code')}) "
              f"from {status['source']}")
    result = ProducerResult(mode="live", banner=banner, refused=refused)
    layouts = {tag: ckpt.embodiment_layout(checkpoint, tag) for tag in tags}
    raws = {tag: build_observations(layouts[tag], seed=seed, batch_size=batch_size, statistics=stats[tag]) for tag in tags}
    sweep_cases = {tag: [input_sweep.case(layouts[tag], i, seed) for i in range(sweep)] for tag in tags}
    first = runnable[0].name
    base = key_base(checkpoint, status, seed=seed, batch_size=batch_size, device=device, stage_mb=stage_mb)
    first_noise: dict[str, object] = {}
    timings: dict[str, float] = {}

    def jobs_for(variant):
        noise = "drawn after seeding" if variant.name == first else f"injected from {first}"
        jobs = []
        for tag in tags:
            key = content_key({**base, "tag": tag, "variant": variant.name, "noise": noise})
            jobs.append(Job(tag, variant, key, entry_path(store_dir, "original", tag, variant.name, key),
                            {"noise": noise, "raw": raws[tag], "seed": seed}))
        if variant.name == first:  # the input sweep (core/sweep_cases.py) rides on the reference model's one load
            for tag in tags:
                for case in sweep_cases[tag]:
                    key = content_key({**base, "tag": tag, "variant": variant.name, "noise": noise,
                                       "sweep": [SWEEP_RECIPE, case.describe()]})
                    jobs.append(Job(tag, variant, key, entry_path(store_dir, "original", f"{tag}.{case.name}",
                                                                  variant.name, key),
                                    {"noise": noise, "raw": input_sweep.observations(layouts[tag], case, stats[tag]),
                                     "seed": case.seed, "case": case}))
        return jobs

    def compute(loaded, job):
        raw, case = job.context["raw"], job.context.get("case")
        inputs = ob.preprocess(loaded, layouts[job.tag], raw)
        # Later variants start from the first variant's noise: precision is then the only change.
        # the reference variant also records its named stages (backends/stage_hooks.py): where a divergence starts,
        # for the fixed observation and each input-sweep case alike
        stages = bool(stage_mb) and job.variant.name == first
        out = ob.sample(loaded, inputs, seed=job.context["seed"], noise=None if case else first_noise.get(job.tag),
                        capture_stages=stages, stage_inputs=stages, stage_mb=stage_mb)
        captured = out.pop("stages", None)
        decode_error = None
        try:  # what the robot gets; a decoder that cannot run is recorded, model parity still stands
            out["decoded_action"] = ob.decode(loaded, layouts[job.tag], raw, out["action_pred"])
        except Exception as exc:  # noqa: BLE001 - the consumer reports it beside the other checks
            decode_error = f"{type(exc).__name__}: {exc}"
        if captured:  # repeated arrays (pixel_values, a block's input = the previous block's output) stored once
            captured = stage_hooks.compact(captured, model_inputs=inputs)
        return {"out": out, "inputs": inputs, "stages": captured, "decode_error": decode_error,
                "producer": contract.provenance_once(ob, loaded)}

    def store(job, done):
        raw, case, decode_error = job.context["raw"], job.context.get("case"), done["decode_error"]
        save_artifact(
            job.path, embodiment_tag=job.tag, seed=job.context["seed"], checkpoint=fp, producer=done["producer"],
            raw=raw, inputs=done["inputs"], outputs=done["out"], variant=job.variant.name, stages=done["stages"],
            extra={"observation_recipe": SWEEP_RECIPE if case else OBSERVATION_RECIPE,
                   "batch_size": int(next(iter(raw.values())).shape[0]), "noise": job.context["noise"],
                   "store_key": job.key, "environment": environment or {},
                   **({"sweep_case": case.describe()} if case else {}),
                   **({"decode_error": decode_error} if decode_error else {})},
        )
        return done["out"]

    def load(variant, todo):
        progress.note("producer", f"loading gr00t ({variant.name}, {device}) for {len(todo)} tag(s)")
        return ob.load(checkpoint, None, variant=variant, device=device)

    outcomes = get_or_compute(
        runnable, jobs_for, read=lambda job: _stored(job.path, job.key, fp["fingerprint"], result.notes),
        load=load, compute=compute, store=store, side="producer", timings=timings, failed=result.refused)
    for o in outcomes:
        case = o.job.context.get("case")
        if case is None:
            noise = o.value.initial_noise if o.status == "reused" else o.value.get("initial_noise")
            first_noise.setdefault(o.job.tag, noise)
        what = f"{o.job.tag} {o.job.variant.name}" + (f" sweep {case.name}" if case else "")
        progress.note("producer", f"{what}: {o.status}" + (f" in {o.seconds:.1f} s" if o.status == "computed" else ""))
        result.rows.append({"tag": o.job.tag, "variant": o.job.variant.name, "status": o.status,
                            "seconds": round(o.seconds, 2), "key": o.job.key, **({"case": case.name} if case else {})})
        if case:
            publish(o.job.path, case_path(output_dir, case.name, o.job.tag))
            continue
        path = publish(o.job.path, artifact_path(output_dir, o.job.tag, o.job.variant.name))
        result.artifacts.setdefault(o.job.tag, {})[o.job.variant.name] = path
    # Every model is released by now: the consumer may load its own once source.json is there (workbench/memory.py)
    result.timings = {k: round(v, 2) for k, v in timings.items()} | {"imports": imported,
                                                                      "peak_rss_mb": runinfo.peak_rss_mb(),
                                                                      "rss_after_release_mb": runinfo.rss_mb()}
    handoff.write_source(output_dir, result.source_info(gr00t=status, store=str(store_dir), machine=base["machine"]))
    return result
