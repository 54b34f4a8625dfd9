"""Producer: per embodiment, build observations, run the original, write one artifact.

Runs in the groot-original kernel. When ``gr00t`` is not importable and the
checkpoint is the embedded tiny one, it serves the committed recordings instead
and says so; for any other checkpoint it stops with instructions.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import checkpoint as ckpt
from . import machine, tiny_layout
from .atomic import atomic_copy, atomic_write_text
from .artifact import SCHEMA, artifact_path, load_artifact, save_artifact
from .errors import MissingPackageError, ParityError
from .observations import OBSERVATION_RECIPE, build_observations
from .store import DEFAULT_ROOT, code_digest, content_key, entry_path, publish
from .variants import plan

SOURCE_FILE = "source.json"
FAILED_FILE = "producer-failed.txt"  # written by the workflow when the producer notebook did not finish
RUNNING_FILE = "producer-running.json"  # written by the workflow before it starts the producer: {"pid": ...}
# How far the committed recordings move on another CPU (measured: live gr00t here vs recordings made on a
# machine with another instruction set; capping this CPU to AVX2 reproduced the bf16 recordings exactly).
RECORDED_DRIFT = ("recordings move across CPUs: fp32 action_pred by ~2e-6, bf16 by up to 4.7e-2, from "
                  "instruction-set differences (AVX2 vs AVX512/AMX); run gr00t live for exact figures")


# groot_lib modules whose code shapes an artifact: editing one invalidates stored artifacts.
PRODUCER_CODE = ("producer", "original_backend", "observations", "runtime", "checkpoint", "artifact", "variants",
                 "machine", "code_identity")


@dataclass
class ProducerResult:
    mode: str  # "live" | "recorded"
    banner: str
    artifacts: dict[str, dict[str, Path]] = field(default_factory=dict)  # tag -> variant -> path
    rows: list[dict] = field(default_factory=list)  # one per (tag, variant): status computed|reused|recorded
    refused: dict[str, str] = field(default_factory=dict)  # variant -> why it cannot run here
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def summary_rows(self) -> list[dict]:
        return self.rows + [{"tag": "*", "variant": v, "status": "REFUSED", "detail": why}
                            for v, why in self.refused.items()]

    def source_info(self, **extra) -> dict:
        return {"mode": self.mode, "banner": self.banner, "rows": self.rows, "refused": self.refused,
                "notes": self.notes, "timings": self.timings, **extra}


def parse_list(value) -> list[str] | None:
    """Notebook/CLI parameters arrive as 'a,b' strings or lists; empty means default."""
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return list(value)


def _write_source(output_dir: Path, info: dict) -> None:
    atomic_write_text(output_dir / SOURCE_FILE, json.dumps(info, indent=2, default=str) + "\n")


def read_source(artifacts_dir: str | os.PathLike) -> dict:
    path = Path(artifacts_dir) / SOURCE_FILE
    return json.loads(path.read_text()) if path.is_file() else {"mode": "unknown", "banner": f"no {SOURCE_FILE} in {artifacts_dir}"}


def is_published(artifacts_dir: str | os.PathLike) -> bool:
    """True once the producer is done with ``artifacts_dir``, successfully or not."""
    directory = Path(artifacts_dir)
    return (directory / SOURCE_FILE).is_file() or (directory / FAILED_FILE).is_file()


def _producer_alive(directory: Path) -> bool:
    """True while the process that announced a producer for ``directory`` is still running."""
    try:
        pid = int(json.loads((directory / RUNNING_FILE).read_text())["pid"])
        os.kill(pid, 0)
        return True
    except (OSError, ValueError, KeyError, TypeError):
        return False


def source_from_artifacts(directory: Path) -> dict | None:
    """A source record for artifacts that came without a producer run (copied, mailed, made elsewhere)."""
    from .artifact import find_artifacts, find_variants

    found = find_artifacts(directory)
    if not found:
        return None
    first = load_artifact(next(iter(found.values())))
    who = first.producer.get("implementation", "unknown producer")
    commit = (first.producer.get("commit") or "")[:12]
    return {"mode": "artifacts", "rows": [], "refused": {}, "notes": [], "timings": {},
            "banner": f"original outputs: artifacts found in {directory} (no producer ran; made by {who} {commit}, "
                      f"device {first.producer.get('device', '?')}), variants {', '.join(find_variants(directory))}"}


def wait_for_source(artifacts_dir: str | os.PathLike, *, timeout: float = 6 * 3600, poll: float = 0.2) -> dict:
    """The producer's source.json, waiting only while a producer is really running for ``artifacts_dir``.

    ``make report`` starts the consumer while the producer still runs (its marker says so), so the
    consumer's slow imports overlap the producer's work. With no producer announced (a consumer run on
    its own), artifacts already there are used as they are, and an empty folder fails at once.
    """
    directory = Path(artifacts_dir)
    deadline = time.monotonic() + timeout
    while not (directory / SOURCE_FILE).is_file():
        if (directory / FAILED_FILE).is_file():
            raise ParityError(f"the producer did not finish, so there is nothing to compare: "
                              f"{(directory / FAILED_FILE).read_text().strip()}")
        if not _producer_alive(directory):
            if (directory / SOURCE_FILE).is_file():  # it finished between the two checks
                break
            source = source_from_artifacts(directory) if directory.is_dir() else None
            if source is None:
                raise ParityError(f"no producer is running for {directory} and it holds no artifacts: run the producer "
                                  "notebook for this folder first (output_dir), or `make report`, which runs both")
            return source
        if time.monotonic() > deadline:
            raise ParityError(f"no {SOURCE_FILE} appeared in {directory} within {timeout:.0f} s although a producer "
                              "is registered for it: is it stuck? (see its notebook)")
        time.sleep(poll)
    return read_source(directory)


def use_recordings(checkpoint: Path, output_dir: Path, tags: list[str], variants: list[str], reason: str,
                   *, seed: int, batch_size: int, refused: dict[str, str] | None = None) -> ProducerResult:
    """Copy the committed recordings (validated against the checkpoint) into ``output_dir``."""
    expected = ckpt.fingerprint(checkpoint)["fingerprint"]
    provenance = json.loads((tiny_layout.RECORDED_ROOT / "provenance.json").read_text())
    recorded = (provenance.get("seed"), provenance.get("batch_size"))
    missing = [v for v in variants if v not in provenance.get("variants", [])]
    if recorded != (seed, batch_size) or missing:
        raise MissingPackageError(
            f"gr00t is not importable ({reason}) and the recordings in {tiny_layout.RECORDED_ROOT} cover only "
            f"seed={recorded[0]}, batch_size={recorded[1]}, variants={provenance.get('variants')}; asked for "
            f"seed={seed}, batch_size={batch_size}, variants={variants}. Use those settings, or provide gr00t: "
            "`make setup GR00T_SRC=/path/to/Isaac-GR00T`."
        )
    banner = (f"original outputs: recorded with gr00t {provenance.get('gr00t_commit', '?')[:12]}, not run live "
              f"({reason}); {RECORDED_DRIFT}")
    result = ProducerResult(mode="recorded", banner=banner, refused=dict(refused or {}))
    for tag in tags:
        for variant in variants:
            src = artifact_path(tiny_layout.RECORDED_ROOT, tag, variant)
            load_artifact(src, expected_fingerprint=expected)  # refuse stale recordings early
            dst = atomic_copy(src, artifact_path(output_dir, tag, variant))
            result.artifacts.setdefault(tag, {})[variant] = dst
            result.rows.append({"tag": tag, "variant": variant, "status": "recorded", "artifact": dst.name})
    _write_source(output_dir, result.source_info(recording=provenance))
    return result


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


def produce(checkpoint: str | os.PathLike, output_dir: str | os.PathLike, *, tags=None, seed: int = 0,
            batch_size: int = 2, device: str = "auto", variants=None, allow_recorded: bool = True,
            environment: dict | None = None, store_dir: str | os.PathLike | None = None) -> ProducerResult:
    """Run the original on every requested tag and variant; one artifact per (tag, variant).

    Artifacts are kept in a content-addressed store (default ``build/artifacts``) and
    published into ``output_dir``; a valid stored one is reused and no model is loaded for it.
    """
    from . import original_backend as ob
    from . import runtime

    checkpoint = ckpt.resolve_checkpoint(checkpoint)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    store_dir = Path(store_dir) if store_dir else DEFAULT_ROOT
    known = ckpt.embodiment_tags(checkpoint)
    tags = parse_list(tags) or known
    unknown = [t for t in tags if t not in known]
    if unknown:
        raise ParityError(f"embodiment tag(s) {unknown} are not in {checkpoint} (it has {known})")
    device = runtime.resolve_device(device)
    runnable, refused = plan(parse_list(variants), device, kernel="groot-original")
    status = ob.gr00t_status()
    if not status["available"]:
        if allow_recorded and tiny_layout.is_embedded_default(checkpoint):
            return use_recordings(checkpoint, output_dir, tags, [v.name for v in runnable], seed=seed,
                                  batch_size=batch_size, refused=refused,
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
    first = runnable[0].name
    # Keyed by content, never by names alone: gr00t's source (uncommitted edits included), every file the
    # model reads, the machine's math stack, and groot_lib's own code.
    base = {"schema": SCHEMA, "checkpoint": fp["fingerprint"], "seed": seed, "batch_size": batch_size,
            "recipe": OBSERVATION_RECIPE, "device": device, "gr00t": status.get("commit"),
            "gr00t_code": status.get("code"), "inputs": ckpt.input_signature(checkpoint, os.environ.get("HF_HOME")),
            "machine": machine.machine_info(device),
            "versions": runtime.versions("torch", "transformers", "gr00t", "numpy"),
            "code": code_digest(*PRODUCER_CODE)}
    first_noise: dict[str, object] = {}
    timings = {"checkpoint load": 0.0, "compute": 0.0}
    for variant in runnable:
        noise = "drawn after seeding" if variant.name == first else f"injected from {first}"
        keys = {tag: content_key({**base, "tag": tag, "variant": variant.name, "noise": noise}) for tag in tags}
        entries = {tag: entry_path(store_dir, "original", tag, variant.name, keys[tag]) for tag in tags}
        todo = []
        for tag in tags:
            stored = _stored(entries[tag], keys[tag], fp["fingerprint"], result.notes)
            if stored is None:
                todo.append(tag)
                continue
            first_noise.setdefault(tag, stored.initial_noise)
            result.rows.append({"tag": tag, "variant": variant.name, "status": "reused", "seconds": 0.0,
                                "key": keys[tag]})
        if todo:
            start = time.perf_counter()
            bundle = ob.load(checkpoint, variant=variant, device=device)
            timings["checkpoint load"] += time.perf_counter() - start
            provenance = ob.provenance(bundle, status)
            for tag in todo:
                start = time.perf_counter()
                collated = ob.preprocess(bundle, layouts[tag], raws[tag])
                inputs = {k: runtime.to_numpy(v) for k, v in runtime.flatten(collated).items()}
                # Later variants start from the first variant's noise: precision is then the only change.
                out = ob.sample(bundle, collated, seed=seed, noise=first_noise.get(tag))
                first_noise.setdefault(tag, out["initial_noise"])
                save_artifact(
                    entries[tag], embodiment_tag=tag, seed=seed, producer=provenance, checkpoint=fp,
                    raw=raws[tag], inputs=inputs, outputs=out, variant=variant.name,
                    extra={"observation_recipe": OBSERVATION_RECIPE, "batch_size": batch_size, "noise": noise,
                           "store_key": keys[tag], "environment": environment or {}},
                )
                seconds = time.perf_counter() - start
                timings["compute"] += seconds
                result.rows.append({"tag": tag, "variant": variant.name, "status": "computed",
                                    "seconds": round(seconds, 2), "key": keys[tag]})
            del bundle
            runtime.free_memory()
        for tag in tags:
            path = publish(entries[tag], artifact_path(output_dir, tag, variant.name))
            result.artifacts.setdefault(tag, {})[variant.name] = path
    result.timings = {k: round(v, 2) for k, v in timings.items()} | {"peak_rss_mb": runtime.peak_rss_mb()}
    _write_source(output_dir, result.source_info(gr00t=status, store=str(store_dir), machine=base["machine"]))
    return result
