"""Where the original's outputs come from when the original does not run here: the committed recordings (the
tiny default without gr00t), or a folder of outputs made elsewhere (ARTIFACTS=). Torch-free, so the workflow (tools
env) imports the folder without reaching any model stack; ``pipeline.produce`` runs the original itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from groot_lib.core import checkpoint as ckpt
from groot_lib.core import sweep_cases as input_sweep
from groot_lib.core.artifact import artifact_path, load_artifact
from groot_lib.core.atomic import atomic_copy
from groot_lib.core.errors import MissingPackageError
from groot_lib.core.sweep_cases import case_path
from groot_lib.pipeline import handoff, progress
from groot_lib.tiny import layout as tiny_layout


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


def use_recordings(checkpoint: Path, output_dir: Path, tags: list[str], variants: list[str], knobs, *, reason: str,
                   refused: dict[str, str] | None = None) -> ProducerResult:
    """Copy the committed recordings (of the device ``knobs.recordings`` names; seed, batch and sweep from
    ``knobs``), validated against the checkpoint, into ``output_dir``."""
    seed, batch_size, which, cases = knobs.seed, knobs.batch_size, knobs.recordings, knobs.sweep_cases()
    expected = ckpt.fingerprint(checkpoint)["fingerprint"]
    gap = tiny_layout.recordings_gap(seed, batch_size, variants, which, checkpoint, cases.stop if cases else 0)
    if gap:
        raise MissingPackageError(f"gr00t is not importable ({reason}) and {gap}")
    provenance = tiny_layout.recordings_provenance(which, checkpoint)
    where = provenance.get("producer", {})
    ran_on = f"{where.get('device', which)}" + (f" ({where['gpu']})" if where.get("gpu") else "")
    banner = (f"original outputs: recorded on {ran_on} with gr00t {provenance.get('gr00t_commit', '?')[:12]}, "
              f"torch {where.get('torch', '?')}, not run live ({reason}); "
              f"{handoff.RECORDED_DRIFT['cuda' if str(where.get('device', which)).startswith('cuda') else 'cpu']}")
    result = ProducerResult(mode="recorded", banner=banner, refused=dict(refused or {}))
    root = tiny_layout.recorded_root(which, checkpoint)

    def copied(src: Path, dst: Path) -> Path:
        load_artifact(src, expected_fingerprint=expected)  # refuse stale recordings early
        return atomic_copy(src, dst)

    for tag in tags:
        for variant in variants:
            dst = copied(artifact_path(root, tag, variant), artifact_path(output_dir, tag, variant))
            result.artifacts.setdefault(tag, {})[variant] = dst
            result.rows.append({"tag": tag, "variant": variant, "status": "recorded", "artifact": dst.name})
            progress.note("producer", f"{tag} {variant}: recorded (gr00t not installed)")
        for name in map(input_sweep.case_name, cases):
            copied(case_path(root, name, tag), case_path(output_dir, name, tag))
            result.rows.append({"tag": tag, "variant": variants[0], "status": "recorded", "case": name})
    handoff.write_source(output_dir, result.source_info(recording=provenance))
    return result


def use_artifacts(source_dir: Path, output_dir: Path, tags: list[str]) -> ProducerResult:
    """Judge outputs of the original made elsewhere (ARTIFACTS=dir): hard-link (or copy) each tag's file into
    ``output_dir`` under its own name and say where they came from; nothing here opens them."""
    from groot_lib.core import upstream
    from groot_lib.core.artifact import find_artifacts, find_variants
    from groot_lib.core.store import publish

    source_dir = Path(source_dir).resolve()
    found = {variant: find_artifacts(source_dir, variant) for variant in find_variants(source_dir)}
    dumps = sorted(p.name for by_tag in found.values() for p in by_tag.values() if upstream.is_upstream(p))
    kinds = (f"{len(dumps)} LeRobot dump(s) from its dump_original_n1_7.py, read on trust (TRUST_LEGACY=1)"
             if dumps else "groot-parity artifacts")
    banner = f"original outputs: imported from {source_dir} ({kinds}); not run here"
    result = ProducerResult(mode="imported", banner=banner)
    for variant, by_tag in found.items():
        for tag in tags:
            if tag in by_tag:
                result.artifacts.setdefault(tag, {})[variant] = publish(by_tag[tag], output_dir / by_tag[tag].name)
                result.rows.append({"tag": tag, "variant": variant, "status": "imported", "artifact": by_tag[tag].name})
                progress.note("producer", f"{tag} {variant}: imported {by_tag[tag].name}")
    for case_dir in input_sweep.case_dirs(source_dir):  # the input sweep's cases, when the folder has them
        for tag, path in find_artifacts(case_dir).items():
            if tag in tags:
                publish(path, case_path(output_dir, case_dir.name, tag))
                result.rows.append({"tag": tag, "variant": next(iter(found)), "status": "imported",
                                    "case": case_dir.name})
    handoff.write_source(output_dir, result.source_info(imported_from=str(source_dir), upstream_dumps=dumps))
    return result
