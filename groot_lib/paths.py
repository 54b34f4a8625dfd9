"""Where things are in the repository: one definition for every module, every env and bench/ (stdlib only).

Why: the repo root was worked out in six places (from each file's own depth); a moved module then pointed elsewhere.
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
LIB = REPO_ROOT / "groot_lib"
CHECKPOINTS = REPO_ROOT / "checkpoints"
REFERENCES = REPO_ROOT / "references"
NOTEBOOKS = REPO_ROOT / "notebooks"
KERNELS = REPO_ROOT / "kernels"
REPORTS = REPO_ROOT / "reports"  # reports/<UTC stamp>/ (core/report_folder.py owns the layout)
BUILD = REPO_ROOT / "build"
STORE = BUILD / "artifacts"  # the content-addressed store (core/store.py)
MAKEFILE = REPO_ROOT / "Makefile"
README = REPO_ROOT / "README.md"
