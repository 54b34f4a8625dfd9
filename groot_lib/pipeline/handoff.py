"""The producer -> consumer hand-off inside one artifacts folder: source.json, the running and failed markers.

``make report`` starts both notebooks at once. The workflow writes ``producer-running.json`` first; the
producer writes ``source.json`` last (where its outputs came from); a failed producer leaves
``producer-failed.txt``. The consumer waits only while a producer is really running for its folder.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from groot_lib.core.artifact import load_artifact
from groot_lib.core.atomic import atomic_write_text
from groot_lib.core.errors import ParityError
from groot_lib.core.report_folder import marker_alive

SOURCE_FILE = "source.json"
FAILED_FILE = "producer-failed.txt"  # written by the workflow when the producer notebook did not finish
RUNNING_FILE = "producer-running.json"  # the workflow's pid marker (report_folder.write_marker), before the producer
# How far the committed recordings move on another machine (measured: live gr00t here vs recordings made on a
# machine with another instruction set, where capping this CPU to AVX2 reproduced the bf16 recordings exactly; and
# LeRobot on this CPU against the H200 recordings, compare/expected_gap.py's cpu vs cuda figure).
RECORDED_DRIFT = {
    "cpu": ("recordings move across CPUs: fp32 action_pred by ~2e-6, bf16 by up to 4.7e-2, from instruction-set "
            "differences (AVX2 vs AVX512/AMX); run gr00t live for exact figures"),
    "cuda": ("recorded on a GPU: LeRobot on a CPU differs from them by CPU vs GPU kernels (fp32 action_pred up to "
             "~8e-4, bf16 by the size of either side's noise floor); LeRobot on the same GPU kind, or gr00t live, "
             "gives exact figures"),
}


def write_source(output_dir: Path, info: dict) -> None:
    """The producer's last step (its models already released): the consumer may load its own from here on."""
    from groot_lib.pipeline import progress

    with progress.span("producer", "publish"):
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
    return marker_alive(directory / RUNNING_FILE)


def source_from_artifacts(directory: Path) -> dict | None:
    """A source record for artifacts that came without a producer run (copied, mailed, made elsewhere)."""
    from groot_lib.core.artifact import find_artifacts, find_variants

    found = find_artifacts(directory)
    if not found:
        return None
    first = load_artifact(next(iter(found.values())))
    who = first.producer.get("implementation", "unknown producer")
    commit = (first.producer.get("commit") or "")[:12]
    return {"mode": "artifacts", "rows": [], "refused": {}, "notes": [], "timings": {},
            "banner": f"original outputs: artifacts found in {directory} (no producer ran; made by {who} {commit}, "
                      f"device {first.producer.get('device', '?')}), variants {', '.join(find_variants(directory))}"}


def wait_for_source(artifacts_dir: str | os.PathLike, *, timeout: float = 6 * 3600, poll: float = 0.05,
                    while_waiting=None) -> dict:
    """The producer's source.json, waiting only while a producer is really running for ``artifacts_dir``.

    ``make report`` starts the consumer while the producer still runs (its marker says so), so the
    consumer's slow imports overlap the producer's work. With no producer announced (a consumer run on
    its own), artifacts already there are used as they are, and an empty folder fails at once.
    ``while_waiting()`` runs between polls (the consumer reads finished artifacts ahead).
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
        if while_waiting is not None:
            while_waiting()
        time.sleep(poll)
    return read_source(directory)
