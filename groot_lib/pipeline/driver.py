"""One reuse-or-compute loop behind every stored output (pytest-regressions' ``perform_regression_check``,
for models): per variant, key every job, reuse what the store holds, load ONE model for the rest,
compute, store, free. ``produce`` (original artifacts) and ``replay`` (LeRobot outputs) are its two uses.
"""

from __future__ import annotations

import time
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterable, Iterator

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
    context: dict = field(default_factory=dict)  # whatever the caller's compute needs for this job


@dataclass
class Outcome:
    job: Job
    status: str  # "reused" | "computed"
    value: Any  # what read() or compute() returned
    seconds: float = 0.0


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


def get_or_compute(variants: Iterable[Variant], jobs_for: Callable[[Variant], list[Job]], *,
                   read: Callable[[Job], Any | None], load: Callable[[Variant, list[Job]], ContextManager[Any]],
                   compute: Callable[[Any, Job], Any], store: Callable[[Job, Any], Any], side: str,
                   timings: dict[str, float], failed: dict[str, str] | None = None) -> Iterator[Outcome]:
    """Yield an Outcome per job, variants in order, stored ones first within a variant.

    ``read(job)`` returns the stored value, or None when absent or unusable (it notes why);
    ``load(variant, todo)`` is a backend's ``load`` context manager; ``compute(loaded, job)`` runs the model
    and ``store(job, value)`` writes its result, returning what the Outcome carries. No model is loaded for a
    variant whose jobs are all stored. ``timings`` gains "checkpoint load", "compute", "store", "release" and
    "models loaded"; each phase's span goes on ``side``'s timeline (``progress.span``), so model work and the
    workbench's own (storing, releasing) are told apart.

    A variant after the first that turns out unable to run here (VariantUnavailableError at load or compute,
    e.g. a forced SDPA backend with no kernel for this model) goes into ``failed`` with the reason and the
    rest still run; the first variant (the parity reference) and any other exception still raise.
    """
    for key in ("checkpoint load", "compute", "store", "release", "models loaded"):
        timings.setdefault(key, 0)
    for index, variant in enumerate(variants):
        todo = []
        for job in jobs_for(variant):
            stored = read(job)
            if stored is None:
                todo.append(job)
            else:
                yield Outcome(job, "reused", stored)
        if not todo:
            continue
        job = None
        try:
            with _timed(load(variant, todo), side, timings) as loaded:
                timings["models loaded"] += 1
                for job in todo:
                    start = time.perf_counter()
                    with progress.span(side, "compute", timings):
                        value = compute(loaded, job)
                    with progress.span(side, "store", timings):
                        value = store(job, value)
                    yield Outcome(job, "computed", value, time.perf_counter() - start)
        except VariantUnavailableError as exc:
            if index == 0 or failed is None:
                raise
            where = f" (at {job.tag}; not run for {', '.join(j.tag for j in todo[todo.index(job):])})" if job else ""
            failed[variant.name] = f"failed at run time{where}: {exc}"
