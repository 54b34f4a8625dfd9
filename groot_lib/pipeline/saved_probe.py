"""A probe of an investigation session (pipeline/investigate.py) as a regular report folder: the same index.html,
verdicts.json and summary.txt a report has, the original's artifact and LeRobot's outputs beside them, so a finding
made interactively can be shared, compared (``make compare-reports``) and explored like any report."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from groot_lib import paths
from groot_lib.core import report_folder
from groot_lib.core.artifact import artifact_path
from groot_lib.core.errors import ParityError
from groot_lib.core.store import publish
from groot_lib.pipeline import handoff


def write(probe, session, out_root: str | Path | None = None) -> Path:
    """The report folder of ``probe`` under ``out_root`` (default reports/); returns its index.html."""
    run_dir = report_folder.create(Path(out_root or paths.REPORTS))
    try:
        _fill(run_dir, probe, session)
    except BaseException:
        shutil.rmtree(run_dir, ignore_errors=True)  # no half-written report survives
        raise
    report_folder.finish(run_dir)
    return run_dir / "index.html"


def _fill(run_dir: Path, probe, session) -> None:
    from groot_lib.pipeline.consume import write_verdicts
    from groot_lib.pipeline.replay import _write

    tag, variant = probe.observation.tag, session.variant
    artifacts = run_dir / "artifacts"
    artifacts.mkdir()
    publish(probe.artifact.path, artifact_path(artifacts, tag, variant))
    edits = "; ".join(probe.observation.edits) or "none (the tag's fixed observation)"
    source = {"mode": "probe", "rows": [{"tag": tag, "variant": variant, "status": "probed"}], "refused": {},
              "notes": [f"edits: {edits}"], "gr00t": session.described.get("gr00t"),
              "banner": (f"original outputs: probed in an investigation session ({session.banner}); seed {probe.seed}, "
                         f"flow steps {probe.steps or 'as the checkpoint says'}; edits: {edits}")}
    handoff.write_source(artifacts, source)
    replay = probe.report.replays.replays[(tag, variant)]
    replay.path = session.work / f"{tag}__{variant}.replay.npz"
    _write(replay.path, "probe", replay.arrays, replay.info)
    write_verdicts(probe.report, run_dir, source=source,
                   settings={"atol": session.knobs.atol, "rtol": session.knobs.rtol,
                             "noise_mode": probe.report.noise_mode, "checkpoint": str(session.checkpoint),
                             "device": session.device, "variant": variant, "seed": probe.seed, "steps": probe.steps,
                             "edits": edits})
    # the page and summary by the report's own writer, as a process (pipeline/ never imports the workbench)
    done = subprocess.run([sys.executable, "-m", "groot_lib.workbench.report", "index", str(run_dir)],
                          capture_output=True, text=True, timeout=300)
    if done.returncode:
        raise ParityError(f"writing {run_dir / 'index.html'} failed: {done.stderr.strip()[-500:]}")
