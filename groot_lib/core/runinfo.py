"""What this process is running with: installed package versions and peak memory (stdlib only)."""

from __future__ import annotations


def peak_rss_mb() -> float:
    """This process's peak resident set size so far (Linux reports KiB)."""
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def rss_mb() -> float | None:
    """This process's resident set size now (None where /proc is not there): what it still holds after
    releasing its model, beside ``peak_rss_mb``."""
    try:
        with open("/proc/self/statm") as handle:
            pages = int(handle.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    import os

    return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)


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
