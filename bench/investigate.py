"""``make bench``'s rows for investigating live: how long a session takes to open, what each later probe costs
against the two sides' own compute, and whether memory grows over many probes.

Run in the LeRobot env (this process plays the notebook's kernel; the session starts the groot-original kernel):

    python -m bench.investigate [--checkpoint DIR --hf-home DIR] [--probes 100] [--json out.json]

Probes cycle through the fixed observation and, with gr00t live, three edits of it (the prompt, a region of a
camera frame, a state value), so the figures are those of a researcher's questions, not of one cached answer.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path


def rss_mb(pid: int) -> float:
    """Resident memory of a process now (VmRSS), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def questions(base) -> list:
    """The observations probed in turn: the fixed one, then (gr00t live) one edit of each kind."""
    camera = next(k for k in base.raw if k.startswith("video.")).split(".", 1)[1]
    group = next(k for k in base.raw if k.startswith("state.")).split(".", 1)[1]
    height = base.raw[f"video.{camera}"].shape[2]
    return [base, base.with_prompt("open the top drawer"),
            base.with_frame(camera, (0, 0, 0), region=(0, height // 2, 0, height // 2)),
            base.with_state(group, 0.25)]


def measure(args) -> dict:
    import os

    from groot_lib.pipeline import investigate

    start = time.perf_counter()
    session = investigate.Session.open(args.checkpoint, device=args.device, hf_home=args.hf_home)
    found = {"open s": time.perf_counter() - start, "mode": session.described["mode"], "banner": session.banner,
             "device": session.device, "probes": [], "statuses": {}}
    try:
        start = time.perf_counter()
        base = session.observation(args.tag)
        found["observation s"] = time.perf_counter() - start
        asked = questions(base) if found["mode"] == "live" else [base]
        pids = {"lerobot (this process)": os.getpid(), "original kernel": session.original.pid}
        for n in range(args.probes):
            probe = session.probe(asked[n % len(asked)])
            found["probes"].append(probe.seconds)
            found["statuses"][probe.status] = found["statuses"].get(probe.status, 0) + 1
            del probe
            if n == 0:
                found["rss after first MiB"] = {k: rss_mb(p) for k, p in pids.items()}
        found["rss after last MiB"] = {k: rss_mb(p) for k, p in pids.items()}
    finally:
        session.close()
    return found


def summarise(found: dict) -> dict:
    """Medians of the probes after the first (the first pays one-time warm-up), and memory growth."""
    later = found["probes"][1:] or found["probes"]
    median = {k: statistics.median(p[k] for p in later) for k in later[0]}
    compute = median["original compute"] + median["lerobot compute"]
    first, last = found["rss after first MiB"], found["rss after last MiB"]
    return {"first probe s": found["probes"][0]["total"], "median probe s": median["total"],
            "p90 probe s": sorted(p["total"] for p in later)[int(0.9 * (len(later) - 1))],
            "median original compute s": median["original compute"],
            "median lerobot compute s": median["lerobot compute"],
            "probe / compute": median["total"] / compute if compute else None,
            "rss growth %": {k: 100 * (last[k] - first[k]) / first[k] for k in first}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.investigate", description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="default: the tiny checkpoint")
    parser.add_argument("--hf-home", default=None)
    parser.add_argument("--tag", default="libero_sim")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--probes", type=int, default=100)
    parser.add_argument("--json", type=Path, default=None, help="write the figures here too")
    args = parser.parse_args(argv)
    found = measure(args)
    found["summary"] = summarise(found)
    text = json.dumps(found, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    print(json.dumps({k: found[k] for k in ("open s", "observation s", "mode", "statuses", "summary")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
