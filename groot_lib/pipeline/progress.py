"""What a kernel tells the workflow while it runs: one line per finished step, and the wall-clock span of
each phase.

The workflow names two files before it starts the kernels: $GROOT_PARITY_PROGRESS (it tails it, so the
terminal says what is happening) and $GROOT_PARITY_PHASES (one JSON line per phase: side, phase, start and end
in Unix seconds; timings.json's timeline, which tells model work from plumbing on the wall clock even while
the two kernels overlap). Appends this small are atomic. Without the variables (a notebook run by hand)
nothing is written.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from typing import Iterator

ENV = "GROOT_PARITY_PROGRESS"
PHASES_ENV = "GROOT_PARITY_PHASES"
# The phases that are the models' own work: importing the implementations, loading weights, running them.
# Everything else on the wall clock (kernel starts, artifact I/O, checks, plots, HTML) is the workbench's.
MODEL_PHASES = ("imports", "checkpoint load", "compute")


def _append(env: str, line: str) -> None:
    path = os.environ.get(env)
    if not path:
        return
    try:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
    except OSError:
        pass  # progress is a courtesy: never fail a run over it


def note(side: str, text: str) -> None:
    _append(ENV, f"{side}: {text}")


def record(side: str, phase: str, start: float, end: float) -> None:
    """One span on the timeline; ``start``/``end`` are ``time.time()`` values."""
    _append(PHASES_ENV, json.dumps({"side": side, "phase": phase, "start": round(start, 4), "end": round(end, 4)}))


@contextmanager
def span(side: str, phase: str, totals: dict[str, float] | None = None) -> Iterator[None]:
    """Time a phase: its span goes on the timeline and its seconds are added to ``totals[phase]``."""
    start, began = time.time(), time.perf_counter()
    try:
        yield
    finally:
        if totals is not None:
            totals[phase] = totals.get(phase, 0.0) + time.perf_counter() - began
        record(side, phase, start, time.time())


def read_spans(path: str | os.PathLike) -> list[dict]:
    """The spans a run recorded, in the order they ended (a torn last line is skipped)."""
    spans = []
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                try:
                    spans.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
    except OSError:
        return []
    return spans


def busy_seconds(spans: list[dict], phases=MODEL_PHASES) -> float:
    """Wall-clock seconds during which at least one of ``phases`` ran, in any kernel (overlaps counted once)."""
    intervals = sorted((s["start"], s["end"]) for s in spans if s.get("phase") in phases)
    total, reach = 0.0, None
    for start, end in intervals:
        if reach is None or start > reach:
            total += end - start
            reach = end
        elif end > reach:
            total += end - reach
            reach = end
    return total
