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
from groot_lib.core import settings
from groot_lib.core import code_identity
from groot_lib.core.artifact import Artifact
from groot_lib.core.atomic import atomic_save_npz
from groot_lib.core.store import DEFAULT_ROOT, code_digest, content_key, entry_path, file_digest
from groot_lib.core.variants import DEFAULT_VARIANT, plan
from groot_lib.pipeline import progress, training_step
from groot_lib.pipeline import driver
from groot_lib.pipeline.driver import Job

REPLAY_SCHEMA = "groot-parity-lerobot-replay/1"
BACKEND = "lerobot"  # reached through backends.contract.backend, which checks it
# the groot_lib code a stored replay is keyed by: every module these import (core.store.module_closure); the
# backend is named, since the contract imports it by name at run time
KEY_CODE = ("pipeline.replay", f"backends.{BACKEND}")
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

    @property
    def training(self) -> dict[str, np.ndarray]:
        """LeRobot's half of the training-step check (pipeline/training_step.py), keyed without its prefix."""
        return {k[len(training_step.PREFIX):]: v for k, v in self.arrays.items() if k.startswith(training_step.PREFIX)}


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


@dataclass
class ReplayRun:
    """LeRobot's jobs for one report (driver.Runner): one replay per (tag, variant) and per input-sweep case, each
    keyed by ``base`` and its own tag, variant, artifact bytes and noise. The reference (fp32) variant's replay
    also runs LeRobot's preprocessor and postprocessor on the raw observations and, when its parity fails or is
    SUSPECT (STAGES=auto) or always (STAGES=all), captures its named stages and re-runs them on the original's
    recorded stage inputs."""

    checkpoint: Path
    artifacts: dict  # variant -> tag -> Artifact
    sweep: dict  # (tag, case) -> Artifact
    knobs: object  # settings.Knobs of the consumer: noise_mode, stages, stage_mb, atol, rtol
    device: str
    study: bool  # a precision study runs: the reference replay also keeps its run from the recorded noise
    store_dir: Path
    base: dict  # key_base
    backend: object  # backends.lerobot, checked against the contract (backends.contract.backend)
    result: ReplaySet
    digests: dict = field(default_factory=dict)  # artifact path -> its bytes' digest, hashed once
    side = "consumer"

    def digest(self, artifact: Artifact) -> str:
        if artifact.path not in self.digests:
            self.digests[artifact.path] = file_digest(artifact.path)
        return self.digests[artifact.path]

    @property
    def stage_mb(self) -> float:
        return self.knobs.stage_mb if self.knobs.stages != "off" else 0

    def jobs(self, variant) -> list[Job]:
        reference = variant.name == DEFAULT_VARIANT
        refs, jobs = self.artifacts[DEFAULT_VARIANT], []
        for tag, ref in refs.items():
            source = self.artifacts.get(variant.name, {}).get(tag, ref)
            fields = {**self.base, "tag": tag, "variant": variant.name, "artifact": self.digest(source),
                      **({"noise_mode": self.knobs.noise_mode, "study": self.study,
                            "train": [self.knobs.train, self.knobs.train_update]}
                         if reference else {"noise": self.digest(ref)})}
            key = content_key(fields)
            jobs.append(Job(tag, variant, key, entry_path(self.store_dir, "lerobot", tag, variant.name, key),
                            {"ref": ref, "source": source, "reference": reference, "case": None}))
        for (tag, case), art in self.sweep.items() if reference else ():  # the input sweep: one load for all
            key = content_key({**self.base, "tag": tag, "variant": variant.name, "artifact": self.digest(art),
                               "noise_mode": self.knobs.noise_mode, "sweep": case})
            jobs.append(Job(tag, variant, key, entry_path(self.store_dir, "lerobot", f"{tag}.{case}", variant.name,
                                                          key),
                            {"ref": art, "source": art, "reference": True, "case": case}))
        return jobs

    def read(self, job: Job):
        """A stored replay, unless STAGES=auto now needs the stages it was stored without (new tolerances can turn
        a PASS into a FAIL): tolerances alone never recompute a replay that already has what the verdict needs."""
        from groot_lib.compare.expected_gap import needs_localising

        stored = _read(job.path, job.key, self.result.notes)
        if stored is None or not job.context["reference"] or self.knobs.stages != "auto" or not self.stage_mb:
            return stored
        ref = job.context["ref"]
        if ref.stages and not any(k.startswith(STAGE) for k in stored[0]) and needs_localising(
                stored[0]["action_pred"], ref, atol=self.knobs.atol, rtol=self.knobs.rtol, lerobot_device=self.device):
            self.result.notes.append(f"{job.tag}: the stored replay has no stages and its parity now fails or is "
                                     "SUSPECT: recomputing it with its stages")
            return None
        return stored

    def load(self, variant, todo: list[Job]):
        progress.note("consumer", f"loading LeRobot ({variant.name}, {self.device}) for {len(todo)} tag(s)")
        return self.backend.load(self.checkpoint, ckpt.embodiment_layout(self.checkpoint, todo[0].tag),
                                 variant=variant, device=self.device)

    def compute(self, loaded, job: Job) -> tuple[dict, dict]:
        from groot_lib.backends import contract

        start = time.perf_counter()
        ref, source = job.context["ref"], job.context["source"]
        arrays = self.outputs(loaded, ref, source, study=self.study and not job.context["case"]) \
            if job.context["reference"] else self._low_precision(loaded, ref, source)
        info = {"provenance": contract.provenance_once(self.backend, loaded), "stages": self.knobs.stages}
        if job.context["reference"] and not job.context["case"] and self.knobs.train and ref.training:
            trained, info["training"] = training_step.replay(self.backend, loaded,
                                                             ckpt.embodiment_layout(self.checkpoint, job.tag), ref,
                                                             update=self.knobs.train_update)
            arrays |= trained
        info["seconds"] = time.perf_counter() - start
        return arrays, info

    def store(self, job: Job, done: tuple[dict, dict]) -> tuple[dict, dict]:
        _write(job.path, job.key, *done)
        return done

    def settled(self, outcome) -> None:
        job, case = outcome.job, outcome.job.context["case"]
        progress.note("consumer", f"{job.tag} {job.variant.name}{f' sweep {case}' if case else ''}: LeRobot "
                                  f"{outcome.status}" + (f" in {outcome.seconds:.1f} s" if outcome.status == "computed"
                                                         else ""))
        replay = Replay(job.tag, job.variant.name, outcome.status, *outcome.value, path=job.path)
        if case:
            self.result.sweep[(job.tag, case)] = replay
        else:
            self.result.replays[(job.tag, job.variant.name)] = replay

    def _low_precision(self, loaded, ref: Artifact, source: Artifact) -> dict[str, np.ndarray]:
        """A low-precision variant: one replay from the reference artifact's recorded noise."""
        if ref.initial_noise is None:
            self.result.notes.append(f"{ref.path.name}: no recorded initial noise; {source.variant} replay of "
                                     f"{ref.embodiment_tag} is seeded instead, so its noise floor also includes RNG "
                                     "differences")
        return {"action_pred": self.backend.sample(loaded, source.inputs, seed=source.seed,
                                                   noise=ref.initial_noise)["action_pred"]}

    def outputs(self, loaded, ref: Artifact, source: Artifact, *, study: bool) -> dict[str, np.ndarray]:
        """The reference variant: the parity replay (its stages when localising), the study's replay from the
        recorded noise when the seeded noise differs, and LeRobot's pre- and postprocessing of the raw
        observations."""
        lb, recorded = self.backend, ref.initial_noise
        noise = recorded if self.knobs.noise_mode == "inject" else None
        out = lb.sample(loaded, source.inputs, seed=source.seed, noise=noise)
        arrays = {"action_pred": out["action_pred"], **self._stages(loaded, ref, source, noise, out["action_pred"])}
        if "initial_noise" in out:
            arrays["initial_noise"] = out["initial_noise"]
        if study:
            same = self.knobs.noise_mode == "inject" or recorded is None or (
                "initial_noise" in out and np.array_equal(out["initial_noise"], recorded))
            arrays["study_pred"] = out["action_pred"] if same else \
                lb.sample(loaded, source.inputs, seed=source.seed, noise=recorded)["action_pred"]
        if source.raw:  # LeRobot's own dumps record only the collated inputs
            arrays.update(self._processors(loaded, ref, source, out.get("initial_noise")))
        return arrays

    def _stages(self, loaded, ref: Artifact, source: Artifact, noise, action_pred) -> dict[str, np.ndarray]:
        """LeRobot's named stages and their inputs (what a stage that adds no error of its own was given
        differently: compare.stage_diff.input_differences), and each stage re-run on the original's recorded stage
        inputs (the error it adds), when the tag is localised: always under STAGES=all, under STAGES=auto when
        its parity fails or is SUSPECT by the verdict's own rules."""
        from groot_lib.backends import contract
        from groot_lib.compare.expected_gap import needs_localising

        stages, stage_mb = self.knobs.stages, self.stage_mb
        if not (stage_mb and ref.stages and (stages == "all" or stages == "auto" and needs_localising(
                action_pred, ref, atol=self.knobs.atol, rtol=self.knobs.rtol, lerobot_device=loaded.device))):
            return {}
        captured = self.backend.sample(loaded, source.inputs, seed=source.seed, noise=noise, capture_stages=True,
                                       stage_inputs=True, stage_mb=stage_mb)["stages"]
        reruns, skipped = contract.rerun_stages(loaded, ref.stages, model_inputs=ref.inputs)
        if skipped:
            self.result.notes.append(f"{source.embodiment_tag}: {len(skipped)} stage(s) not re-run on the original's "
                                     f"inputs, e.g. {next(iter(skipped))}: {next(iter(skipped.values()))}")
        return {**{STAGE + k: v for k, v in captured.items()}, **{RERUN + k: v for k, v in reruns.items()}}

    def _processors(self, loaded, ref: Artifact, source: Artifact, initial_noise) -> dict[str, np.ndarray]:
        """LeRobot's postprocessor on the original's action_pred, its preprocessor on the raw observations, and
        the end-to-end effect of preprocessing: the same model and noise on LeRobot's own inputs."""
        layout = ckpt.embodiment_layout(self.checkpoint, source.embodiment_tag)
        arrays = _decoded(self.backend, loaded, layout, source.raw, ref.action_pred)
        preprocessed = self.backend.preprocess(loaded, layout, source.raw)
        arrays.update({PRE + k: v for k, v in preprocessed.items()})
        own = {name: preprocessed[name.split(".", 1)[-1]] for name in source.inputs
               if name.split(".", 1)[-1] in preprocessed}
        if len(own) == len(source.inputs):
            try:
                arrays["e2e_pred"] = self.backend.sample(loaded, own, seed=source.seed, noise=initial_noise)["action_pred"]
            except Exception as exc:  # noqa: BLE001 - inputs the model cannot take are themselves the finding
                self.result.notes.append(f"{source.embodiment_tag}: LeRobot's model could not run on LeRobot's own "
                                         f"preprocessed inputs ({type(exc).__name__}: {str(exc)[:200]})")
        return arrays


def _decoded(backend, loaded, layout, raw, action_pred) -> dict[str, np.ndarray]:
    """LeRobot's postprocessor on the original's ``action_pred`` (so only decoding differs): the policy-level
    decode the verdict compares, plus what LeRobot's default environment transform makes of it when it has one.
    A postprocessor that raises is itself the finding (``decode_error``)."""
    try:
        out = {DECODED: backend.decode(loaded, layout, raw, action_pred)}
        transform, configured = backend.decode_as_configured(loaded, layout, raw, action_pred)
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

    return {"schema": REPLAY_SCHEMA, "device": device, "code": code_digest(*KEY_CODE),
            "lerobot_code": lerobot["code"], "checkpoint_files": ckpt.input_signature(checkpoint, os.environ.get("HF_HOME")),
            "machine": math_stack.machine_info(device),
            "versions": runinfo.versions("lerobot", "torch", "transformers", "numpy"), "stage_mb": stage_mb,
            "stages": stages}


def replay_all(checkpoint: Path, artifacts: dict[str, dict[str, Artifact]], knobs=None, *, variants: list[str],
               device: str, store_dir=None, sweep: dict[tuple[str, str], Artifact] | None = None) -> ReplaySet:
    """LeRobot under each runnable variant (fp32 reference first), reusing stored replays.

    ``artifacts`` maps variant -> tag -> Artifact and must hold the reference variant; ``sweep`` maps (tag, case)
    -> the input sweep's artifacts (core/sweep_cases.py), replayed under the reference variant only; ``knobs``: the
    consumer's settings (``settings.for_notebook("consumer", ...)``; None: defaults and environment).
    """
    from groot_lib.backends import contract

    knobs = knobs or settings.for_notebook("consumer")
    backend = contract.backend(BACKEND)
    runnable, refused = plan(variants, device, kernel=backend.KERNEL)
    lerobot = code_identity.package_identity("lerobot")
    run = ReplayRun(checkpoint, artifacts, dict(sweep or {}), knobs, device, study=len(runnable) > 1,
                    store_dir=Path(store_dir) if store_dir else DEFAULT_ROOT, backend=backend,
                    base=key_base(checkpoint, device=device, lerobot=lerobot,
                                  stage_mb=knobs.stage_mb if knobs.stages != "off" else 0, stages=knobs.stages),
                    result=ReplaySet(refused=refused, code=lerobot))
    timings: dict[str, float] = {}
    driver.run(run, runnable, timings=timings, failed=run.result.refused)
    run.result.timings = {k: round(v, 2) for k, v in timings.items()}
    return run.result
