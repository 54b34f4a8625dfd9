"""LeRobot's side of every comparison: model replays and preprocessor runs, content-addressed.

Running LeRobot is the consumer's only expensive step. Its outputs are keyed by the
artifact's bytes, the variant, the noise mode, the device, LeRobot's package versions
and this code, so a report that changes only tolerances or plots loads no model.
One model is held at a time: variants run one after another.
"""

from __future__ import annotations

import json
import os
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from groot_lib.core import checkpoint as ckpt
from groot_lib.core import code_identity
from groot_lib.core.artifact import Artifact
from groot_lib.core.atomic import atomic_save_npz
from groot_lib.core.store import DEFAULT_ROOT, code_digest, content_key, entry_path, file_digest
from groot_lib.core.variants import DEFAULT_VARIANT, plan
from groot_lib.pipeline import progress
from groot_lib.pipeline.driver import Job, get_or_compute

REPLAY_SCHEMA = "groot-parity-lerobot-replay/1"
PRE = "pre."  # prefix of preprocessor outputs inside a replay
STAGE = "stage."  # prefix of the parity replay's named stages (backends/stage_hooks.py) inside a replay
DECODED, DECODED_CONFIGURED = "decoded_action", "decoded_action_configured"  # see _decoded
DECODE_TRANSFORM, DECODE_ERROR = "decode_transform", "decode_error"
RERUN = "rerun."  # LeRobot's stages re-run on the original's recorded stage inputs: the error each stage adds


@dataclass
class Replay:
    """What LeRobot produced for one tag under one variant."""

    tag: str
    variant: str
    status: str  # computed | reused
    arrays: dict[str, np.ndarray]
    info: dict = field(default_factory=dict)  # provenance (what ran: device, dtype, attention) and seconds
    path: Path | None = None  # the store entry, published (hard-linked) into the report folder

    @property
    def seconds(self) -> float:
        return float(self.info.get("seconds", 0.0)) if self.status == "computed" else 0.0

    @property
    def action_pred(self) -> np.ndarray:
        return self.arrays["action_pred"]

    @property
    def stages(self) -> dict[str, np.ndarray]:
        return {k[len(STAGE):]: v for k, v in self.arrays.items() if k.startswith(STAGE)}

    @property
    def reruns(self) -> dict[str, np.ndarray]:
        return {k[len(RERUN):]: v for k, v in self.arrays.items() if k.startswith(RERUN)}

    @property
    def decoded(self) -> np.ndarray | None:
        """LeRobot's postprocessor on the original's action_pred, without environment transforms (see _decoded)."""
        return self.arrays.get(DECODED)

    @property
    def decoded_configured(self) -> tuple[str, np.ndarray] | None:
        """(transform, output) of the postprocessor as GrootConfig's defaults build it, when a transform applies."""
        out = self.arrays.get(DECODED_CONFIGURED)
        return None if out is None else (str(self.arrays[DECODE_TRANSFORM]), out)

    @property
    def decode_error(self) -> str | None:
        error = self.arrays.get(DECODE_ERROR)
        return None if error is None else str(error)

    @property
    def preprocessed(self) -> dict[str, np.ndarray]:
        return {k[len(PRE):]: v for k, v in self.arrays.items() if k.startswith(PRE)}


@dataclass
class ReplaySet:
    replays: dict[tuple[str, str], Replay] = field(default_factory=dict)  # (tag, variant) -> Replay
    sweep: dict[tuple[str, str], Replay] = field(default_factory=dict)  # (tag, sweep case) -> Replay
    refused: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    code: dict = field(default_factory=dict)  # the LeRobot package under test (code_identity.package_identity)

    def rows(self) -> list[dict]:
        return [{"tag": r.tag, "variant": r.variant, "status": r.status, "seconds": round(r.seconds, 2),
                 "attention": r.info.get("provenance", {}).get("attention"),
                 "device": r.info.get("provenance", {}).get("device"),
                 "lerobot code": (r.info.get("provenance", {}).get("code") or {}).get("code")}
                for r in self.replays.values()]

    def publish(self, directory) -> list[Path]:
        """Hard-link every replay's store entry into ``directory`` (a report keeps what it was judged on)."""
        from groot_lib.core.store import publish
        from groot_lib.core.sweep_cases import case_path

        return [publish(r.path, Path(directory) / f"{r.tag}__{r.variant}.npz")
                for r in self.replays.values() if r.path is not None and r.path.is_file()] + \
               [publish(r.path, case_path(directory, case, tag))
                for (tag, case), r in self.sweep.items() if r.path is not None and r.path.is_file()]

    @property
    def models_loaded(self) -> int:
        return int(self.timings.get("models loaded", 0))


def _read(path: Path, key: str, notes: list[str]) -> tuple[dict[str, np.ndarray], dict] | None:
    """A stored replay's arrays and info (provenance, seconds), or None (with a note) if unusable."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        if str(arrays.pop("meta::schema")) != REPLAY_SCHEMA or str(arrays.pop("meta::key")) != key:
            raise ValueError("schema or key differs")
        return arrays, json.loads(str(arrays.pop("meta::info")))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
        notes.append(f"stored replay {path} is unusable, recomputing it: {type(exc).__name__}: {exc}")
        return None


def _write(path: Path, key: str, arrays: dict[str, np.ndarray], info: dict) -> None:
    atomic_save_npz(path, {"meta::schema": np.array(REPLAY_SCHEMA), "meta::key": np.array(key),
                           "meta::info": np.array(json.dumps(info, default=str)), **arrays})


def _compute(loaded, checkpoint: Path, ref: Artifact, source: Artifact, *, reference: bool, noise_mode: str,
             study: bool, notes: list[str], stage_mb: float = 256, stages: str = "auto",
             tolerances: tuple[float, float] = (1e-3, 1e-3)) -> dict[str, np.ndarray]:
    """Reference variant: the parity replay (+ an injected-noise replay for the study when the
    seeded noise differs) and the preprocessor run. Other variants: one replay from ref's noise."""
    from groot_lib.backends import lerobot as lb
    from groot_lib.backends import stage_hooks
    from groot_lib.compare.expected_gap import needs_localising

    recorded_noise = ref.initial_noise
    if not reference:
        if recorded_noise is None:
            notes.append(f"{ref.path.name}: no recorded initial noise; {source.variant} replay of {ref.embodiment_tag} "
                         "is seeded instead, so its noise floor also includes RNG differences")
        return {"action_pred": lb.sample(loaded, source.inputs, seed=source.seed, noise=recorded_noise)["action_pred"]}
    noise = recorded_noise if noise_mode == "inject" else None
    capture = bool(stage_mb) and stages == "all" and bool(ref.stages)
    out = lb.sample(loaded, source.inputs, seed=source.seed, noise=noise, capture_stages=capture, stage_mb=stage_mb)
    localise = capture or (bool(stage_mb) and stages == "auto" and bool(ref.stages) and needs_localising(
        out["action_pred"], ref, atol=tolerances[0], rtol=tolerances[1], lerobot_device=loaded.device))
    captured = out.get("stages", {})
    if localise:  # parity fails or is SUSPECT: the same run again, now with its stages and their inputs (what a
        # stage that adds no error of its own was given differently: compare.stages.input_differences)
        captured = lb.sample(loaded, source.inputs, seed=source.seed, noise=noise, capture_stages=True,
                             stage_inputs=True, stage_mb=stage_mb)["stages"]
    arrays = {"action_pred": out["action_pred"], **{STAGE + k: v for k, v in captured.items()}}
    if localise and any(k.endswith(stage_hooks.INPUTS) for k in ref.stages):
        reruns, skipped = stage_hooks.rerun(loaded.model, ref.stages, device=loaded.device, model_inputs=ref.inputs)
        arrays.update({RERUN + k: v for k, v in reruns.items()})
        if skipped:
            notes.append(f"{source.embodiment_tag}: {len(skipped)} stage(s) not re-run on the original's inputs, e.g. "
                         f"{next(iter(skipped))}: {next(iter(skipped.values()))}")
    if "initial_noise" in out:
        arrays["initial_noise"] = out["initial_noise"]
    if study:
        same_noise = noise_mode == "inject" or (
            recorded_noise is not None and "initial_noise" in out
            and np.array_equal(out["initial_noise"], recorded_noise))
        arrays["study_pred"] = out["action_pred"] if same_noise or recorded_noise is None else \
            lb.sample(loaded, source.inputs, seed=source.seed, noise=recorded_noise)["action_pred"]
    if not source.raw:  # LeRobot's own dumps record only the collated inputs
        return arrays
    layout = ckpt.embodiment_layout(checkpoint, source.embodiment_tag)
    arrays.update(_decoded(loaded, layout, source.raw, ref.action_pred))
    preprocessed = lb.preprocess(loaded, layout, source.raw)
    arrays.update({PRE + k: v for k, v in preprocessed.items()})
    # the end-to-end effect of preprocessing: the same model and noise on LeRobot's own inputs
    own = {name: preprocessed[name.split(".", 1)[-1]] for name in source.inputs
           if name.split(".", 1)[-1] in preprocessed}
    if len(own) == len(source.inputs):
        try:
            arrays["e2e_pred"] = lb.sample(loaded, own, seed=source.seed, noise=out.get("initial_noise"))["action_pred"]
        except Exception as exc:  # noqa: BLE001 - inputs the model cannot take are themselves the finding
            notes.append(f"{source.embodiment_tag}: LeRobot's model could not run on LeRobot's own preprocessed "
                         f"inputs ({type(exc).__name__}: {str(exc)[:200]})")
    return arrays


def _decoded(loaded, layout, raw, action_pred) -> dict[str, np.ndarray]:
    """LeRobot's postprocessor on the original's ``action_pred`` (so only decoding differs): the policy-level
    decode the verdict compares, plus what LeRobot's default environment transform makes of it when it has one.
    A postprocessor that raises is itself the finding (``decode_error``)."""
    from groot_lib.backends import lerobot as lb

    try:
        out = {DECODED: lb.decode(loaded, layout, raw, action_pred)}
        transform, configured = lb.decode_as_configured(loaded, layout, raw, action_pred)
    except Exception as exc:  # noqa: BLE001 - reported by compare.parity.decoded_parity
        return {DECODE_ERROR: np.array(f"{type(exc).__name__}: {str(exc)[:500]}")}
    if transform:
        out.update({DECODED_CONFIGURED: configured, DECODE_TRANSFORM: np.array(str(transform))})
    return out


def key_base(checkpoint: Path, *, device: str, lerobot: dict, stage_mb: float, stages: str) -> dict:
    """What every stored LeRobot replay is keyed by, beside its own tag, variant, artifact bytes and noise:
    LeRobot's *source* (an edited or editable install recomputes), every file the model reads (the checkpoint's
    files and the backbone's HF cache), the machine's math stack, versions, and the groot_lib code the replay goes
    through (derived from its imports). Never a name or version number alone."""
    from groot_lib.backends import math_stack
    from groot_lib.core import runinfo

    return {"schema": REPLAY_SCHEMA, "device": device, "code": code_digest("pipeline.replay"),
            "lerobot_code": lerobot["code"], "checkpoint_files": ckpt.input_signature(checkpoint, os.environ.get("HF_HOME")),
            "machine": math_stack.machine_info(device),
            "versions": runinfo.versions("lerobot", "torch", "transformers", "numpy"), "stage_mb": stage_mb,
            "stages": stages}


def replay_all(checkpoint: Path, artifacts: dict[str, dict[str, Artifact]], *, variants: list[str], device: str,
               noise_mode: str = "seed", store_dir=None, stage_mb: float = 256, stages: str = "auto",
               atol: float = 1e-3, rtol: float = 1e-3,
               sweep: dict[tuple[str, str], Artifact] | None = None) -> ReplaySet:
    """LeRobot under each runnable variant (fp32 reference first), reusing stored replays.

    ``artifacts`` maps variant -> tag -> Artifact and must hold the reference variant; ``sweep`` maps
    (tag, case) -> the input sweep's artifacts (core/sweep_cases.py), replayed under the reference variant only.
    """
    from groot_lib.backends import lerobot as lb
    from groot_lib.backends import contract
    from groot_lib.compare.expected_gap import needs_localising

    store_dir = Path(store_dir) if store_dir else DEFAULT_ROOT
    runnable, refused = plan(variants, device, kernel=lb.KERNEL)
    result = ReplaySet(refused=refused)
    refs = artifacts[DEFAULT_VARIANT]
    study = len(runnable) > 1
    lerobot = code_identity.package_identity("lerobot")
    base = key_base(checkpoint, device=device, lerobot=lerobot, stage_mb=stage_mb, stages=stages)
    result.code = lerobot
    digests: dict[Path, str] = {}

    def digest(artifact: Artifact) -> str:  # each artifact is hashed once, however many variants use it
        if artifact.path not in digests:
            digests[artifact.path] = file_digest(artifact.path)
        return digests[artifact.path]

    timings: dict[str, float] = {}

    def jobs_for(variant):
        reference = variant.name == DEFAULT_VARIANT
        jobs = []
        for tag, ref in refs.items():
            source = artifacts.get(variant.name, {}).get(tag, ref)
            fields = {**base, "tag": tag, "variant": variant.name, "artifact": digest(source)}
            fields.update({"noise_mode": noise_mode, "study": study} if reference else {"noise": digest(ref)})
            key = content_key(fields)
            jobs.append(Job(tag, variant, key, entry_path(store_dir, "lerobot", tag, variant.name, key),
                            {"ref": ref, "source": source, "reference": reference}))
        for (tag, case), art in (sweep or {}).items() if reference else ():  # the input sweep: one load for all
            key = content_key({**base, "tag": tag, "variant": variant.name, "artifact": digest(art),
                               "noise_mode": noise_mode, "sweep": case})
            jobs.append(Job(tag, variant, key, entry_path(store_dir, "lerobot", f"{tag}.{case}", variant.name, key),
                            {"ref": art, "source": art, "reference": True, "case": case}))
        return jobs

    def compute(loaded, job):
        start = time.perf_counter()
        case = job.context.get("case")
        arrays = _compute(loaded, checkpoint, job.context["ref"], job.context["source"],
                          reference=job.context["reference"], noise_mode=noise_mode, study=study and not case,
                          notes=result.notes, stage_mb=stage_mb, stages=stages, tolerances=(atol, rtol))
        info = {"provenance": contract.provenance_once(lb, loaded),
                "seconds": time.perf_counter() - start, "stages": stages}
        return arrays, info

    def store(job, done):
        _write(job.path, job.key, *done)
        return done

    def load(variant, todo):
        progress.note("consumer", f"loading LeRobot ({variant.name}, {device}) for {len(todo)} tag(s)")
        return lb.load(checkpoint, ckpt.embodiment_layout(checkpoint, todo[0].tag), variant=variant, device=device)

    def read(job):
        """A stored replay, unless STAGES=auto now needs the stages it was stored without (new tolerances can turn
        a PASS into a FAIL): tolerances alone never recompute a replay that already has what the verdict needs."""
        stored = _read(job.path, job.key, result.notes)
        if stored is None or not job.context["reference"] or stages != "auto" or not stage_mb:
            return stored
        ref = job.context["ref"]
        if ref.stages and not any(k.startswith(STAGE) for k in stored[0]) and needs_localising(
                stored[0]["action_pred"], ref, atol=atol, rtol=rtol, lerobot_device=device):
            result.notes.append(f"{job.tag}: the stored replay has no stages and its parity now fails or is "
                                "SUSPECT: recomputing it with its stages")
            return None
        return stored

    outcomes = get_or_compute(runnable, jobs_for, read=read,
                              load=load, compute=compute, store=store, side="consumer", timings=timings,
                              failed=result.refused)
    for o in outcomes:
        case = o.job.context.get("case")
        progress.note("consumer", f"{o.job.tag} {o.job.variant.name}{f' sweep {case}' if case else ''}: LeRobot "
                                  f"{o.status}" + (f" in {o.seconds:.1f} s" if o.status == "computed" else ""))
        replay = Replay(o.job.tag, o.job.variant.name, o.status, *o.value, path=o.job.path)
        if case:
            result.sweep[(o.job.tag, case)] = replay
        else:
            result.replays[(o.job.tag, o.job.variant.name)] = replay
    result.timings = {k: round(v, 2) for k, v in timings.items()}
    return result
