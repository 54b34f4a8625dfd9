"""What this process is running with: installed package versions and peak memory (stdlib only)."""

from __future__ import annotations


def peak_rss_mb() -> float:
    """This process's peak resident set size so far (Linux reports KiB)."""
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def versions(*modules: str) -> dict[str, str | None]:
    """Installed distribution versions, read from metadata without importing the (slow) packages."""
    import importlib.metadata as md

    out = {}
    for name in modules:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = None
    return out
