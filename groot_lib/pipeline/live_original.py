"""The original's side of an investigation session (pipeline/investigate.py), in the groot-original kernel: the
checkpoint loaded once and kept, one artifact per request, computed by the very ``ProducerRun`` a report uses.

Requests and answers cross the kernel boundary as files in the artifact format (no pickle): the session writes an
observation as ``raw::`` arrays, this side answers with a full artifact (collated inputs, action_pred, initial
noise, decoded actions, named stages with their inputs). Without gr00t it serves the recordings: the tag's
recorded observation, and the recorded answer to exactly that observation and seed; anything else is refused.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import numpy as np

from groot_lib.core import checkpoint as ckpt
from groot_lib.core import settings
from groot_lib.core.artifact import artifact_path, load_artifact
from groot_lib.core.atomic import atomic_save_npz
from groot_lib.core.errors import ParityError
from groot_lib.pipeline.driver import Job

RAW = "raw::"


def write_raw(path: Path, tag: str, raw: dict[str, np.ndarray]) -> Path:
    """An observation as the session and this side exchange it: the artifact's ``raw::`` arrays and its tag."""
    return atomic_save_npz(path, {"meta::embodiment_tag": np.array(tag), **{RAW + k: np.asarray(v) for k, v in raw.items()}})


def read_raw(path: Path) -> tuple[str, dict[str, np.ndarray]]:
    with np.load(path, allow_pickle=False) as npz:
        return str(npz["meta::embodiment_tag"]), {k[len(RAW):]: npz[k] for k in npz.files if k.startswith(RAW)}


def die_with_parent() -> None:
    """This kernel ends when the kernel that started it does (Ctrl-C, a crash, JupyterLab shutting it down): no
    orphan holding a model. prctl's parent-death signal where Linux offers it, and a watcher as a second line."""
    import signal

    parent = os.getppid()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass

    def watch() -> None:
        while os.getppid() == parent:
            threading.Event().wait(0.5)
        os._exit(0)

    threading.Thread(target=watch, daemon=True, name="die-with-parent").start()


class Server:
    """The original, loaded once: ``observation`` and ``answer`` are what the session calls."""

    def __init__(self, checkpoint: str, *, device: str, variant: str, work_dir: str):
        from groot_lib.backends import contract
        from groot_lib.pipeline import produce
        from groot_lib.tiny import layout as tiny_layout

        self.checkpoint, self.work_dir = ckpt.resolve_checkpoint(checkpoint), Path(work_dir)
        self.variant = variant
        knobs = settings.for_notebook("producer", {"device": device, "variants": variant, "train": False})
        self.device, status, _ = produce._import_stack(knobs)
        self.backend = contract.backend(produce.BACKEND)
        self.statistics = ckpt.read_json(self.checkpoint / "statistics.json")
        self.live = bool(status["available"])
        self.mode = "live" if self.live else "recorded"
        self.status = status
        self.loaded = None
        if not self.live:
            self.recordings = tiny_layout.recorded_root(knobs.recordings, self.checkpoint)
            if self.recordings is None:
                self.backend.require()  # raises: no gr00t and no recordings of this checkpoint
            return
        request = produce.Request(self.checkpoint, ckpt.embodiment_tags(self.checkpoint), knobs, self.device,
                                  self.work_dir, self.work_dir, {})
        from groot_lib.core.variants import get_variant

        self.run = produce._live_run(request, status=status, first=variant, refused={}, backend=self.backend)
        self.stage_mb = self.run.stage_mb
        self._held = self.backend.load(self.checkpoint, None, variant=get_variant(variant), device=self.device)
        self.loaded = self._held.__enter__()

    def describe(self) -> dict:
        return {"mode": self.mode, "device": self.device, "variant": self.variant, "pid": os.getpid(),
                "gr00t": {k: self.status.get(k) for k in ("commit", "code", "source", "modified", "error")}}

    def observation(self, tag: str, out: str, *, seed: int, batch_size: int) -> dict:
        """The tag's fixed observation (the report's recipe live, the recording's own frames otherwise)."""
        if self.live:
            from groot_lib.core.observations import build_observations

            raw = build_observations(ckpt.embodiment_layout(self.checkpoint, tag), seed=seed, batch_size=batch_size,
                                     statistics=self.statistics[tag])
        else:
            raw = load_artifact(artifact_path(self.recordings, tag, self.variant)).raw
        write_raw(Path(out), tag, raw)
        return {"path": out}

    def answer(self, request: str, out: str, *, seed: int, noise: str | None = None, steps: int | None = None,
               stages: bool = False) -> dict:
        """The original's artifact for the observation in ``request``, sampled from ``seed`` (or the initial noise
        in the ``noise`` file) with ``steps`` flow steps (None: the checkpoint's); with ``stages``, its named stages
        and their inputs too (asked again only when a probe must be localised: they cost more than the probe)."""
        tag, raw = read_raw(Path(request))
        if not self.live:
            return self._recorded(tag, raw, out, seed=seed, noise=noise, steps=steps)
        from groot_lib.backends import contract
        from groot_lib.core.variants import get_variant

        injected = np.load(noise, allow_pickle=False)["noise"] if noise else None
        self.run.first_noise.pop(tag, None)
        if injected is not None:
            self.run.first_noise[tag] = injected
        job = Job(tag, get_variant(self.variant), "probe", Path(out),
                  {"noise": "injected" if noise else "drawn after seeding", "raw": raw, "seed": seed, "case": None})
        self.run.stage_mb = self.stage_mb if stages else 0
        start = time.perf_counter()
        with contract.flow_steps(self.loaded, steps):
            done = self.run.compute(self.loaded, job)
        computed = time.perf_counter() - start
        self.run.store(job, done)
        return {"path": out, "compute s": round(computed, 4)}

    def _recorded(self, tag: str, raw: dict, out: str, *, seed: int, noise, steps) -> dict:
        recorded = load_artifact(artifact_path(self.recordings, tag, self.variant))
        same = set(raw) == set(recorded.raw) and all(np.array_equal(raw[k], recorded.raw[k]) for k in raw)
        if not same or seed != recorded.seed or noise or steps:
            raise ParityError("gr00t is not installed in the groot-original env, so only the recorded observations "
                              f"can be probed, as recorded (seed {recorded.seed}, the checkpoint's flow steps, no "
                              "injected noise); edits need the original live: make setup GR00T_SRC=/path/to/Isaac-GR00T")
        from groot_lib.core.store import publish

        publish(recorded.path, out)
        return {"path": out, "compute s": 0.0}

    def close(self) -> None:
        """Release the model (its memory goes back to the OS)."""
        if self.loaded is not None:
            self.loaded = None
            self._held.__exit__(None, None, None)


def reply(value, path: str) -> None:
    """The JSON reply the session reads back, written whole or not at all (the session waits for the request to
    finish on the shell channel, then reads it)."""
    from groot_lib.core.atomic import atomic_write_text

    atomic_write_text(Path(path), json.dumps(value, default=str))
