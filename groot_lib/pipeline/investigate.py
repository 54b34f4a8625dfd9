"""Investigate live: both implementations resident, any input edited and compared in about a second.

A report answers one fixed question per run and reloads both models each time. A ``Session`` (in the LeRobot
kernel, the notebook's own) starts the groot-original kernel once, loads the checkpoint once on each side and keeps
both models, so each probe costs only the two models' compute: edit an observation (prompt, a camera frame or a
region of it, state values, batch), pick the seed or an explicit initial noise and the number of flow steps, and
``probe`` runs both and judges them by the report's own rules and code (``produce.ProducerRun`` on the original's
side, ``replay.ReplayRun`` and ``consume.Checks`` on LeRobot's: verdicts, SUSPECT, where lines, the first diverging
stage and the error each stage adds, decoded actions, heatmaps). ``sweep`` runs a family of edits and plots the gap
along it; ``save`` writes a probe as a regular report folder. Without gr00t the session serves the recorded
observations only, and says so.

    with investigate.Session.open() as session:
        base = session.observation("libero_sim")
        probe = session.probe(base.with_prompt("open the drawer"))
        probe.where, probe.heatmap()
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from groot_lib.core import checkpoint as ckpt
from groot_lib.core import memory, settings
from groot_lib.core.artifact import Artifact, load_artifact
from groot_lib.core.errors import KernelDied, ParityError, SettingError
from groot_lib.core.variants import DEFAULT_VARIANT, get_variant
from groot_lib.pipeline import live_original

ORIGINAL_KERNEL = "groot-original"


@dataclass(frozen=True)
class Observation:
    """One raw observation of one embodiment, as both sides take it (the artifact's raw layout); every edit returns
    a new one, so a base observation can be varied without copying by hand."""

    tag: str
    raw: dict[str, np.ndarray]
    edits: tuple[str, ...] = ()  # what was changed from the tag's fixed observation, in words

    @property
    def batch(self) -> int:
        return int(next(iter(self.raw.values())).shape[0])

    def _with(self, key: str, value: np.ndarray, what: str) -> "Observation":
        if key not in self.raw:
            raise ParityError(f"{self.tag} has no {key!r}; it has {sorted(self.raw)}")
        return replace(self, raw={**self.raw, key: value}, edits=(*self.edits, what))

    def _samples(self, sample: int | None) -> slice | int:
        if sample is not None and not 0 <= sample < self.batch:
            raise ParityError(f"sample {sample} is outside the batch of {self.batch}")
        return slice(None) if sample is None else sample

    def with_prompt(self, text: str, sample: int | None = None) -> "Observation":
        """The instruction of every sample (or of one)."""
        key = next(k for k in self.raw if k.startswith("language."))
        prompts = np.asarray(self.raw[key], dtype=f"<U{max(len(text), self.raw[key].dtype.itemsize // 4, 1)}").copy()
        prompts[self._samples(sample)] = text
        return self._with(key, prompts, f"prompt{'' if sample is None else f'[{sample}]'} = {text!r}")

    def with_state(self, group: str, values, sample: int | None = None) -> "Observation":
        """A state group's values (broadcast over its dims, of every sample or one)."""
        key = f"state.{group}"
        state = np.array(self.raw.get(key, np.zeros(0)), dtype=np.float32)
        state[self._samples(sample), ...] = np.asarray(values, dtype=np.float32)
        return self._with(key, state, f"state {group} = {np.asarray(values).tolist()}")

    def with_frame(self, camera: str, value, *, frame: int = -1, region: tuple[int, int, int, int] | None = None,
                   sample: int | None = None) -> "Observation":
        """A camera frame, or the (y0, y1, x0, x1) region of it, set to ``value`` (a colour, a level or an image)."""
        key = f"video.{camera}"
        video = np.array(self.raw.get(key, np.zeros(0, np.uint8)), dtype=np.uint8)
        y0, y1, x0, x1 = region or (0, video.shape[2], 0, video.shape[3])
        video[self._samples(sample), frame, y0:y1, x0:x1] = np.clip(np.asarray(value), 0, 255).astype(np.uint8)
        return self._with(key, video, f"{camera} frame {frame} [{y0}:{y1}, {x0}:{x1}] = {np.asarray(value).tolist()}"
                          if np.asarray(value).size <= 3 else f"{camera} frame {frame} [{y0}:{y1}, {x0}:{x1}] replaced")

    def shifted(self, camera: str, pixels: int) -> "Observation":
        """A camera's frames moved ``pixels`` to the right (edge pixels repeated), every sample and frame."""
        key = f"video.{camera}"
        video = np.asarray(self.raw[key])
        moved = np.concatenate([np.repeat(video[..., :1, :], pixels, axis=3), video[..., : video.shape[3] - pixels, :]],
                               axis=3) if pixels > 0 else video
        return self._with(key, moved, f"{camera} shifted {pixels} px")

    def with_batch(self, n: int) -> "Observation":
        """The first ``n`` samples (or the samples repeated up to ``n``)."""
        if n < 1:
            raise ParityError(f"batch must be >= 1, got {n}")
        take = np.arange(n) % self.batch
        return replace(self, raw={k: np.asarray(v)[take] for k, v in self.raw.items()},
                       edits=(*self.edits, f"batch {n}"))


@dataclass
class Probe:
    """Both implementations on one observation, judged as a report judges a tag: ``report`` is the consumer's
    report of this one tag (verdict rows, where lines, stages, heatmaps), ``artifact`` the original's outputs."""

    observation: Observation
    seed: int
    steps: int | None
    report: object  # consume.ConsumerReport of one tag
    artifact: Artifact
    seconds: dict

    @property
    def result(self):
        return self.report.results[0]

    @property
    def status(self) -> str:
        from groot_lib.compare.where import status_of

        return status_of(self.result.comparisons)

    @property
    def where(self) -> list[str]:
        return [f"{w['status']} {w['check']}: {w['text']}" for w in self.report.where()]

    @property
    def finding(self) -> str:
        """Which side the observation moves, in one sentence: the models on identical inputs (model parity), the
        two preprocessors on this observation (preprocessor parity), and what that does to LeRobot's answer."""
        result = self.result
        model = result.model
        said = ("the two models agree on identical inputs" if model.status == "PASS" else
                f"the two models differ on identical inputs ({model.status}, max |delta| {model.max_abs:.3g})")
        differ = [c.name for c in result.preprocessor if not c.passed]
        if not result.preprocessor:
            return f"{said}; the preprocessors were not compared ({result.preprocessor_missing})."
        if not differ:
            return f"{said}, and both preprocessors make the same inputs from this observation."
        effect = (result.preprocessing_effect or {}).get("max|delta|")
        return (f"{said}, but the two preprocessors make different {', '.join(differ)} from this observation"
                + (f", which moves LeRobot's own action_pred by {effect:.3g}." if effect is not None else "."))

    def rows(self) -> list[dict]:
        return [c.as_row() for c in self.result.comparisons]

    def heatmap(self) -> bytes | str:
        """The model-parity heatmap (PNG), as the report draws it, or why there is none."""
        return self.report.heatmaps()[0][1]

    def _repr_markdown_(self) -> str:
        lines = [f"**{self.observation.tag}: {self.status}**" + (f" ({'; '.join(self.observation.edits)})"
                                                                 if self.observation.edits else ""), self.finding]
        return "\n\n".join(lines + [f"* {line}" for line in self.where])


@dataclass
class Family:
    """One edit varied along an axis: a probe per value, and the gap along it."""

    label: str
    values: list
    probes: list[Probe]

    def rows(self) -> list[dict]:
        out = []
        for value, probe in zip(self.values, self.probes):
            checks = {c.check: c for c in probe.result.comparisons}
            model = probe.result.model
            out.append({self.label: value, "status": probe.status, "action_pred max|delta|": model.max_abs
                        if model.comparable else None, "x expected gap": None if model.noise is None else
                        round(model.noise.ratio, 3), "preprocessor": next((c.status for c in probe.result.preprocessor
                                                                             if not c.passed), "PASS"),
                        "decoded": checks.get("decoded actions").status if "decoded actions" in checks else "n/a",
                        "where": probe.where[0] if probe.where else ""})
        return out

    def plot(self):
        """max |delta| on action_pred along the axis (log scale; exact zeros written as 0 at the bottom)."""
        from matplotlib.figure import Figure

        rows = self.rows()
        values = [r["action_pred max|delta|"] for r in rows]
        fig = Figure(figsize=(7, 3.2), layout="constrained")
        ax = fig.add_subplot()
        xs = list(range(len(rows)))
        positive = [(x, v) for x, v in zip(xs, values) if v]
        if positive:
            ax.plot([x for x, _ in positive], [v for _, v in positive], "o-")
            ax.set_yscale("log")
        for x, v in zip(xs, values):
            if not v:
                ax.annotate("0" if v == 0 else "n/a", (x, 0), xycoords=("data", "axes fraction"), ha="center",
                            va="bottom", fontsize=8)
        ax.set_xticks(xs, [str(v) for v in self.values], rotation=45, fontsize=8)
        ax.set_xlabel(self.label)
        ax.set_ylabel("action_pred max |delta|")
        ax.set_title(f"{self.probes[0].observation.tag}: the gap along {self.label}", fontsize=10)
        return fig


class OriginalKernel:
    """The groot-original kernel a session keeps, started with jupyter_client from the kernelspec `make kernels`
    wrote; it ends when this process does (``live_original.die_with_parent``). ``call`` runs code there and returns
    the one JSON reply it prints; a death is named with its cause."""

    def __init__(self):
        from jupyter_client.manager import KernelManager

        from groot_lib import paths

        parts = [p for p in os.environ.get("JUPYTER_PATH", "").split(os.pathsep) if p]
        if str(paths.REPO_ROOT) not in parts:  # kernels/<name>/kernel.json, never the user's global config
            os.environ["JUPYTER_PATH"] = os.pathsep.join([str(paths.REPO_ROOT), *parts])
        self.sockets = tempfile.mkdtemp(prefix="groot-session-kernel-")  # Unix sockets, not TCP ports
        self.manager = KernelManager(kernel_name=ORIGINAL_KERNEL, transport="ipc", ip=os.path.join(self.sockets, "k"))
        self.manager.start_kernel(cwd=str(paths.REPO_ROOT))
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=120)
        self._replies, self._stderr = 0, []

    @property
    def pid(self) -> int | None:
        return getattr(self.manager.provisioner, "pid", None)

    def cause(self) -> str:
        """Why the kernel is gone, in words (its exit status or the signal that ended it)."""
        import signal

        process = getattr(self.manager.provisioner, "process", None)
        code = process.poll() if process is not None else None
        if code is None:
            return "no exit status"
        if code < 0:
            name = signal.Signals(-code).name
            why = {"SIGKILL": "killed (the kernel out of memory, or someone killed it)", "SIGSEGV": "a segfault",
                   "SIGINT": "interrupted", "SIGTERM": "terminated", "SIGABRT": "aborted"}.get(name, "a signal")
            return f"{name}: {why}"
        return f"exit status {code}"

    def send(self, code: str, answer: str) -> tuple[str, Path]:
        """Run ``code`` there, then write the JSON value of the expression ``answer`` to a reply file (atomically);
        returns what ``receive`` waits on. Replies travel as files and completion on the shell channel, which
        never drops a message (iopub, a PUB socket, may under load)."""
        self._replies += 1
        path = Path(self.sockets) / f"reply-{self._replies}.json"
        return self.client.execute(f"{code}\nlive_original.reply({answer}, {str(path)!r})", store_history=False,
                                   silent=False), path

    def receive(self, pending: tuple[str, Path], timeout: float = 1800):
        """The JSON reply of a request sent; an exception raised there comes back as a ParityError naming it, with
        the last lines the kernel wrote to stderr."""
        from queue import Empty

        msg_id, path = pending
        deadline = time.monotonic() + timeout
        while True:
            self._drain_output()
            if not self.manager.is_alive():
                raise KernelDied(f"the {ORIGINAL_KERNEL} kernel died ({self.cause()}); session.restart() starts it "
                                 "again and reloads the checkpoint" + self._stderr_tail())
            try:
                msg = self.client.get_shell_msg(timeout=0.2)
            except Empty:
                if time.monotonic() > deadline:
                    raise ParityError(f"the {ORIGINAL_KERNEL} kernel did not answer within {timeout:.0f} s") from None
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            content = msg["content"]
            if content.get("status") != "ok":
                raise ParityError(f"the original's side raised {content.get('ename')}: {content.get('evalue')}"
                                  + self._stderr_tail())
            reply = json.loads(path.read_text())
            path.unlink()
            return reply

    def call(self, code: str, answer: str, timeout: float = 1800):
        return self.receive(self.send(code, answer), timeout)

    def _drain_output(self) -> None:
        """Read what the kernel printed (kept: the last lines of its stderr, for errors), so nothing piles up."""
        from queue import Empty

        while True:
            try:
                msg = self.client.get_iopub_msg(timeout=0)
            except Empty:
                return
            if msg["msg_type"] == "stream" and msg["content"].get("name") == "stderr":
                self._stderr = (self._stderr + msg["content"]["text"].splitlines())[-12:]

    def _stderr_tail(self) -> str:
        return "; its last stderr lines:\n  " + "\n  ".join(self._stderr) if self._stderr else ""

    def shutdown(self) -> None:
        import shutil

        try:
            self.client.stop_channels()
        finally:
            if self.manager.has_kernel:
                self.manager.shutdown_kernel(now=True)
            shutil.rmtree(self.sockets, ignore_errors=True)


@dataclass
class Session:
    """Both implementations loaded once and kept (``open``); probes, families and saved probes; ``close`` releases
    both models and ends the original's kernel (a session left open ends with this process, its kernel too)."""

    checkpoint: Path
    hf_home: str | None
    device: str
    variant: str
    knobs: object  # settings.Knobs of the consumer: tolerances, noise mode, stages
    work: Path
    original: OriginalKernel | None = None
    described: dict = field(default_factory=dict)  # the original's side: live or recorded, gr00t's identity
    fits: object = None  # core.memory.ResidentPlan: both models fit loaded, and may load at the same time
    loaded: object = None
    _held: object = None
    _count: int = 0
    _fingerprint: str = ""  # the checkpoint's, which every answer of the original must carry
    _checks: dict = field(default_factory=dict)  # noise mode -> consume.Checks (layouts, statistics, tokenizer) kept

    @classmethod
    def open(cls, checkpoint: str | None = None, *, device: str | None = None, variant: str = DEFAULT_VARIANT,
             hf_home: str | None = None, knobs: dict | None = None) -> "Session":
        """Start the original's kernel and load the checkpoint on both sides at once (the original loads in its
        kernel while LeRobot imports and loads here)."""
        from groot_lib.backends import process
        from groot_lib.tiny import layout as tiny_layout

        checkpoint = checkpoint or settings.value("checkpoint") or str(tiny_layout.TINY_CHECKPOINT)
        hf_home = tiny_layout.hf_home_for(checkpoint, hf_home)
        process.configure_process(hf_home)
        device = process.resolve_device(settings.value("device", device))
        judged_by_model_parity(variant)  # refused before anything starts
        folder = ckpt.resolve_checkpoint(checkpoint, hf_home)
        fits = memory.resident(folder, device=device, memory_gb=settings.value("memory_gb"))  # refused here
        session = cls(folder, hf_home, device, variant,
                      settings.for_notebook("consumer", {"device": device, **(knobs or {})}),
                      Path(tempfile.mkdtemp(prefix="groot-investigate-")), fits=fits)
        try:
            session._start()
        except BaseException:  # a failed or interrupted start leaves no kernel and no model behind
            session.close()
            raise
        return session

    def _start(self) -> None:
        from groot_lib.backends import contract

        self.described = {}
        self.original = OriginalKernel()
        pending = self.original.send(
            "from groot_lib.backends import process\n"
            f"process.configure_process({self.hf_home!r})\n"
            "from groot_lib.pipeline import live_original\n"
            "live_original.die_with_parent()\n"
            f"server = live_original.Server({str(self.checkpoint)!r}, device={self.device!r}, "
            f"variant={self.variant!r}, work_dir={str(self.work)!r})", "server.describe()")
        if not self.fits.load_together:  # RAM holds one loading model at a time
            self.described = self.original.receive(pending)
        backend = contract.backend("lerobot")
        tag = ckpt.embodiment_tags(self.checkpoint)[0]
        self._held = backend.load(self.checkpoint, ckpt.embodiment_layout(self.checkpoint, tag),
                                  variant=get_variant(self.variant), device=self.device)
        self.loaded = self._held.__enter__()
        if self.fits.load_together:
            self.described = self.original.receive(pending)
        self._fingerprint = ckpt.fingerprint(self.checkpoint)["fingerprint"]

    @property
    def banner(self) -> str:
        gr00t = self.described.get("gr00t") or {}
        if self.described.get("mode") == "live":
            return (f"original: live, gr00t {str(gr00t.get('commit') or '?')[:12]} (code {gr00t.get('code')}); "
                    f"{self.variant} on {self.device}")
        return ("original: the committed recordings (gr00t is not installed: only the recorded observations can be "
                "probed, as recorded; make setup GR00T_SRC=/path/to/Isaac-GR00T for edits)")

    def _path(self, what: str) -> Path:
        self._count += 1
        return self.work / f"{self._count:05d}-{what}.npz"

    def observation(self, tag: str, *, seed: int | None = None, batch_size: int | None = None) -> Observation:
        """The tag's fixed observation, as a report builds it (the recording's frames without gr00t)."""
        out = self._path("observation")
        self.original.call("", f"server.observation({tag!r}, {str(out)!r}, seed={settings.value('seed', seed)!r}, "
                               f"batch_size={settings.value('batch_size', batch_size)!r})")
        found, raw = live_original.read_raw(out)
        out.unlink()
        return Observation(found, raw)

    def probe(self, observation: Observation, *, seed: int | None = None, noise: np.ndarray | None = None,
              steps: int | None = None) -> Probe:
        """Both implementations on ``observation``, from ``seed`` (the report's when None) or the explicit
        initial ``noise`` (which both sides then start from), with ``steps`` flow steps (the checkpoint's when
        None), judged by the report's rules."""
        seed = int(settings.value("seed", seed))
        request = self._path("request")
        live_original.write_raw(request, observation.tag, observation.raw)
        noise_file = None
        if noise is not None:
            noise_file = self._path("noise")
            np.savez(noise_file, noise=np.asarray(noise, dtype=np.float32))
        start, seconds = time.perf_counter(), {"original compute": 0.0, "lerobot compute": 0.0}
        noise_mode = "inject" if noise is not None else self.knobs.noise_mode
        ask = (f"server.answer({str(request)!r}, {{out!r}}, seed={seed}, "
               f"noise={None if noise_file is None else str(noise_file)!r}, steps={steps!r}, stages={{stages}})")
        artifact = self._answer(ask, stages=False, seconds=seconds)
        report = self._judge(artifact, noise_mode=noise_mode, steps=steps, seconds=seconds)
        if report.results[0].model.status != "PASS" and self.knobs.stages != "off":
            # localised as a report localises: the original's named stages and their inputs, asked for now
            artifact = self._answer(ask, stages=True, seconds=seconds)
            report = self._judge(artifact, noise_mode=noise_mode, steps=steps, seconds=seconds)
        for path in (request, noise_file):
            if path is not None:
                path.unlink()
        seconds["total"] = time.perf_counter() - start
        return Probe(observation, seed, steps, report, artifact, {k: round(v, 3) for k, v in seconds.items()})

    def _answer(self, ask: str, *, stages: bool, seconds: dict) -> Artifact:
        """The original's artifact for the request in ``ask`` (its compute time added to ``seconds``)."""
        out = self._path("answer")
        answered = self.original.call("", ask.format(out=str(out), stages=stages))
        seconds["original compute"] += answered["compute s"]
        return load_artifact(out, expected_fingerprint=self._fingerprint)

    def _judge(self, artifact: Artifact, *, noise_mode: str, steps: int | None, seconds: dict):
        """LeRobot on the original's answer and the checks, exactly as a report's consumer runs them."""
        from groot_lib.backends import contract
        from groot_lib.pipeline.consume import Checks, ConsumerReport
        from groot_lib.pipeline.replay import Replay, ReplayRun, ReplaySet

        knobs = self.knobs.replace(noise_mode=noise_mode)
        result = ReplaySet()
        run = ReplayRun(self.checkpoint, {}, {}, knobs, self.device, study=False, store_dir=self.work, base={},
                        backend=contract.backend("lerobot"), result=result)
        start = time.perf_counter()
        with contract.flow_steps(self.loaded, steps):
            arrays = run.outputs(self.loaded, artifact, artifact, study=False)
        seconds["lerobot compute"] += time.perf_counter() - start
        info = {"provenance": contract.provenance_once(run.backend, self.loaded), "stages": knobs.stages}
        tag = artifact.embodiment_tag
        replay = Replay(tag, self.variant, "computed", arrays, info)
        result.replays[(tag, self.variant)] = replay
        if noise_mode not in self._checks:
            self._checks[noise_mode] = Checks(self.checkpoint, knobs, ckpt.embodiment_tags(self.checkpoint))
        checked = self._checks[noise_mode].tag(tag, replay, artifact)
        return ConsumerReport([checked], [], result, {}, knobs.precision_k, noise_mode, variants=[self.variant],
                              judged={"seed": artifact.seed, "batch_size": artifact.batch_size,
                                      "checkpoint fingerprint": artifact.fingerprint})

    def sweep(self, observation: Observation, edit: Callable[[Observation, object], Observation], values, *,
              label: str, seed: int | None = None, steps: int | None = None) -> Family:
        """One probe per value of ``edit(observation, value)``: the gap along one axis (see ``prompt_words``,
        ``pixel_shift``, ``state_value``)."""
        values = list(values)
        return Family(label, values, [self.probe(edit(observation, v), seed=seed, steps=steps) for v in values])

    def save(self, probe: Probe, out_root: str | Path | None = None) -> Path:
        """``probe`` as a regular report folder (index.html, verdicts.json, summary.txt, the original's artifact
        and LeRobot's outputs), so a finding can be shared; returns index.html."""
        from groot_lib.pipeline import saved_probe

        return saved_probe.write(probe, self, out_root)

    def restart(self) -> None:
        """After the original's kernel died: end what is left of it, release LeRobot's model, load both again."""
        self._shutdown_original()
        self.close_lerobot()
        self._start()

    def close_lerobot(self) -> None:
        if self.loaded is not None:
            self.loaded = None
            self._held.__exit__(None, None, None)

    def _shutdown_original(self) -> None:
        if self.original is not None:
            try:
                self.original.shutdown()
            finally:
                self.original = None

    def close(self) -> None:
        """Release both models and end the original's kernel."""
        import shutil

        try:
            if self.original is not None and self.described and self.original.manager.is_alive():
                self.original.call("server.close()", "True", timeout=120)  # (a start cut short: just end it)
        except ParityError:
            pass  # a kernel that died has nothing left to release
        self._shutdown_original()
        self.close_lerobot()
        shutil.rmtree(self.work, ignore_errors=True)

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def judged_by_model_parity(variant: str) -> None:
    """A probe is judged as a report judges its fp32 parity variant; bf16 is judged by the precision study (each
    side's bf16 against its own fp32), which needs both precisions loaded on each side and a session does not run."""
    if get_variant(variant).dtype != "float32":
        raise SettingError(f"a session probes fp32 variants only (judged by model parity to rounding); {variant!r} is "
                           "judged by the precision study against each side's fp32: make report VARIANTS=fp32-sdpa,"
                           f"{variant}")


def prompt_words(text: str) -> Callable[[Observation, int], Observation]:
    """An edit for ``sweep``: the instruction cut to its first n words."""
    words = text.split()
    return lambda obs, n: obs.with_prompt(" ".join(words[:n]))


def pixel_shift(camera: str) -> Callable[[Observation, int], Observation]:
    """An edit for ``sweep``: the camera's frames moved k pixels to the right."""
    return lambda obs, k: obs.shifted(camera, k)


def state_value(group: str, index: int) -> Callable[[Observation, float], Observation]:
    """An edit for ``sweep``: one element of a state group set to a value (every sample)."""
    def edit(obs: Observation, value: float) -> Observation:
        state = np.array(obs.raw[f"state.{group}"], dtype=np.float32)
        state[..., index] = value
        return obs.with_state(group, state)
    return edit
