"""One reuse-or-compute loop behind every stored output (pytest-regressions' ``perform_regression_check``,
for models): per variant, key every job, reuse what the store holds, load ONE model for the rest,
compute, store, free. ``produce.ProducerRun`` (original artifacts) and ``replay.ReplayRun`` (LeRobot outputs)
are the two runners it drives.
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ContextManager, Iterable, Iterator, Protocol

from groot_lib.core.errors import VariantUnavailableError
from groot_lib.core.variants import Variant
from groot_lib.pipeline import progress


@dataclass
class Job:
    """One output to reuse or compute: a tag under a variant, stored at ``path`` under ``key``."""

    tag: str
    variant: Variant
    key: str
    path: Path
    context: dict = field(default_factory=dict)  # what the runner's compute needs for this job


@dataclass
class Outcome:
    job: Job
    status: str  # "reused" | "computed"
    value: Any  # what read() or store() returned
    seconds: float = 0.0


class Runner(Protocol):
    """What a side's stored outputs need from the loop: its jobs per variant, and how to read, load, compute and
    store them. ``settled`` sees each outcome as soon as it is settled, before any job of a later variant is made
    or computed: what one variant hands the next (the producer's initial noise) passes there, in the open."""

    side: str  # "producer" | "consumer": whose timeline the phases go on

    def jobs(self, variant: Variant) -> list[Job]: ...

    def read(self, job: Job) -> Any | None: ...

    def load(self, variant: Variant, todo: list[Job]) -> ContextManager[Any]: ...

    def compute(self, loaded: Any, job: Job) -> Any: ...

    def store(self, job: Job, value: Any) -> Any: ...

    def settled(self, outcome: Outcome) -> None: ...


@contextmanager
def _timed(held: ContextManager[Any], side: str, timings: dict[str, float]) -> Iterator[Any]:
    """A backend's ``load`` context with its two ends timed apart: loading, and releasing the model."""
    with progress.span(side, "checkpoint load", timings):
        loaded = held.__enter__()
    try:
        yield loaded
    except BaseException:
        if not held.__exit__(*sys.exc_info()):
            raise
    else:
        with progress.span(side, "release", timings):
            held.__exit__(None, None, None)


def run(runner: Runner, variants: Iterable[Variant], *, timings: dict[str, float],
        failed: dict[str, str] | None = None) -> list[Outcome]:
    """Every job of every variant, in order, stored ones first within a variant; returns the outcomes.

    No model is loaded for a variant whose jobs are all stored. ``timings`` gains "checkpoint load", "compute",
    "store", "release" and "models loaded"; each phase's span goes on the runner's side's timeline
    (``progress.span``), so model work and the workbench's own (storing, releasing) are told apart.

    A variant after the first that turns out unable to run here (VariantUnavailableError at load or compute, e.g. a
    forced SDPA backend with no kernel for this model) goes into ``failed`` with the reason and the rest still
    run; the first variant (the parity reference) and any other exception still raise.
    """
    for key in ("checkpoint load", "compute", "store", "release", "models loaded"):
        timings.setdefault(key, 0)
    outcomes: list[Outcome] = []

    def settle(outcome: Outcome) -> None:
        runner.settled(outcome)
        outcomes.append(outcome)

    for index, variant in enumerate(variants):
        todo = []
        for job in runner.jobs(variant):
            stored = runner.read(job)
            if stored is None:
                todo.append(job)
            else:
                settle(Outcome(job, "reused", stored))
        if not todo:
            continue
        try:
            _compute_all(runner, variant, todo, timings, settle)
        except VariantUnavailableError as exc:
            if index == 0 or failed is None:
                raise
            left = [job for job in todo if not any(o.job is job for o in outcomes)]
            failed[variant.name] = (f"failed at run time (at {left[0].tag}; not run for "
                                    f"{', '.join(job.tag for job in left)}): {exc}")
    return outcomes


def _compute_all(runner: Runner, variant: Variant, todo: list[Job], timings: dict[str, float], settle) -> None:
    """Load one model for ``variant``, then compute, store and settle every job of ``todo``; the model is
    released before this returns."""
    with _timed(runner.load(variant, todo), runner.side, timings) as loaded:
        timings["models loaded"] += 1
        for job in todo:
            start = time.perf_counter()
            with progress.span(runner.side, "compute", timings):
                value = runner.compute(loaded, job)
            with progress.span(runner.side, "store", timings):
                value = runner.store(job, value)
            settle(Outcome(job, "computed", value, time.perf_counter() - start))
