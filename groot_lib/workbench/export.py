"""``make export-upstream``: a report's fp32 artifacts in LeRobot's own parity format (core/upstream.py), so
upstream's ``tests/policies/groot/test_groot_vs_original.py`` runs on them unchanged:
``GROOT_N1_7_PARITY_DIR=<out> GROOT_N1_7_LIBERO_CKPT=<checkpoint> pytest .../test_groot_vs_original.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from groot_lib.core import upstream
from groot_lib.core.artifact import find_artifacts, load_artifact
from groot_lib.core.errors import ParityError
from groot_lib.tiny import layout as tiny_layout

DEFAULT_OUT = tiny_layout.REPO_ROOT / "build" / "upstream"


def newest_report(root: Path = tiny_layout.REPO_ROOT / "reports") -> Path:
    from groot_lib.workbench.report import report_folders

    runs = [p for p in report_folders(root) if (p / "artifacts").is_dir()]
    if not runs:
        raise ParityError(f"no report folder with artifacts under {root}: run `make report SEED=42` first")
    return runs[0]


def export_upstream(report: Path, out: Path = DEFAULT_OUT) -> list[Path]:
    """One ``original_n1_7_<tag>.npz`` per fp32 artifact of ``report``; refuses artifacts upstream's test would
    replay with other noise (it reseeds with 42) and LeRobot dumps (they are upstream's format already)."""
    artifacts = find_artifacts(Path(report) / "artifacts")
    if not artifacts:
        raise ParityError(f"{report}/artifacts holds no fp32 artifact to export")
    loaded = {tag: load_artifact(path) for tag, path in artifacts.items() if not upstream.is_upstream(path)}
    seeds = {tag: a.seed for tag, a in loaded.items() if a.seed != upstream.UPSTREAM_SEED}
    if seeds:
        raise ParityError(
            f"{report}'s artifacts were made with seed(s) {sorted(set(seeds.values()))}; upstream's "
            f"test_groot_vs_original.py reseeds with SEED = {upstream.UPSTREAM_SEED} right before sampling, so it "
            f"would draw other noise and fail. Run `make report SEED={upstream.UPSTREAM_SEED}` (the producer live: "
            "the committed recordings cover seed 0 only), then export that report")
    written = [upstream.export(a, out) for a in loaded.values()]
    checkpoint = json.loads((Path(report) / "artifacts" / "source.json").read_text()).get("checkpoint") \
        if (Path(report) / "artifacts" / "source.json").is_file() else None
    print(f"exported {len(written)} artifact(s) from {report} to {out}; run upstream's test on them with "
          f"GROOT_N1_7_PARITY_DIR={out} GROOT_N1_7_LIBERO_CKPT=<the checkpoint>"
          + (f" ({checkpoint})" if checkpoint else "") + " GROOT_PARITY_DEVICE=<the producer's device>",
          file=sys.stderr)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make export-upstream", description=__doc__.splitlines()[0])
    parser.add_argument("--report", type=Path, help="a reports/<stamp> folder (default: the newest)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"where to write (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    try:
        for path in export_upstream(args.report or newest_report(), args.out):
            print(path)
    except ParityError as exc:
        print(f"export-upstream: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
