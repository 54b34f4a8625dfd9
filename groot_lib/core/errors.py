"""Exceptions whose message alone tells the reader what broke and what to do next.

Notebooks and the CLI print ``str(exc)`` instead of a traceback, so every message
names the file/key involved and ends with a hint.
"""
from __future__ import annotations

from pathlib import Path


class ParityError(Exception):
    """Base class: ``str(exc)`` is the complete, actionable message."""


class ArtifactError(ParityError):
    """An artifact file is missing, unreadable or malformed."""

    def __init__(self, message: str, *, path: str | Path, key: str | None = None):
        super().__init__(message)
        self.path = Path(path)
        self.key = key


class SchemaError(ArtifactError):
    """The artifact is readable but does not follow the expected schema."""


class CheckpointMismatchError(ParityError):
    """Two sides were produced from different checkpoints; comparing them is meaningless."""


class KernelError(ParityError):
    """A notebook kernel / backend environment failed to start or run."""


class MissingPackageError(ParityError):
    """An optional dependency needed for this step is not installed."""


class VariantUnavailableError(ParityError):
    """The requested precision/attention variant cannot run in this environment."""


class SettingError(ParityError):
    """A setting (flag, make variable, environment variable, notebook parameter) has an invalid value."""


class KernelDied(KernelError):
    """A kernel a session keeps died (killed, out of memory, a crash): the message names the cause; the session
    can be restarted."""
