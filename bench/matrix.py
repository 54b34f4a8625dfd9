"""``make matrix``'s overhead, measured by hand: a matrix against the sum of its shards' own reports.

Each shard's report runs alone, one after the other on this machine, each with a fresh artifact store; then the
whole matrix runs on a local Ray cluster (this machine, one node) with a fresh store. Same run, same machine:

    .envs/tools/bin/python -m bench.matrix [--spec bench/matrix-tiny-2x2.yaml]

Writes build/bench/matrix-<UTC>.json and prints the table docs/performance.md quotes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from groot_lib.paths import REPO_ROOT as REPO
from groot_lib.workbench import matrix
from groot_lib.workbench.kernels import ensure_jupyter_path


def timed(command: list[str], log: Path) -> tuple[float, int]:
    log.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(log, "wb") as out:
        rc = subprocess.run(command, cwd=REPO, env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}, stdout=out,
                            stderr=subprocess.STDOUT).returncode
    return time.perf_counter() - start, rc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.matrix", description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, default=REPO / "bench" / "matrix-tiny-2x2.yaml")
    args = parser.parse_args(argv)
    ensure_jupyter_path()
    spec = matrix.load_spec(args.spec)
    work = REPO / "build" / "bench" / f"matrix-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}"
    alone = {}
    for shard in spec.shards:
        seconds, rc = timed(matrix.report_command(shard, work / "alone" / shard.id, work / "alone-store" / shard.id),
                            work / "logs" / f"{shard.id}.log")
        alone[shard.label] = {"seconds": round(seconds, 1), "exit": rc}
        print(f"[bench] {shard.label}: {seconds:.1f} s alone (exit {rc})", file=sys.stderr, flush=True)
    wall, rc = timed([sys.executable, "-m", "groot_lib.workbench.matrix", str(args.spec), "--out-root",
                      str(work / "matrix"), "--artifacts-root", str(work / "matrix-store")], work / "logs" / "matrix.log")
    total = sum(a["seconds"] for a in alone.values())
    result = {"spec": str(args.spec), "alone": alone, "sum_alone_s": round(total, 1), "matrix_wall_s": round(wall, 1),
              "matrix_exit": rc, "ratio": round(wall / total, 2), "cpus": os.cpu_count(), "work": str(work)}
    (work / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    print("| shard | alone s |\n|---|---|")
    print("\n".join(f"| {label} | {a['seconds']} |" for label, a in alone.items()))
    print(f"| **sum of the shards alone** | **{total:.1f}** |\n| **`make matrix` wall (local Ray, {os.cpu_count()} "
          f"CPUs)** | **{wall:.1f}** (exit {rc}) |\n\nmatrix / sum of shards: {wall / total:.2f}x; {work / 'result.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
