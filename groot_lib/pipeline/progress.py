"""One line per finished step inside a kernel, so ``make report`` can say in the terminal what is happening.

The workflow names a file in $GROOT_PARITY_PROGRESS before it starts the kernels and tails it; each kernel
appends short lines (atomic for appends this small). Without the variable (a notebook run by hand) nothing
is written.
"""

from __future__ import annotations

import os

ENV = "GROOT_PARITY_PROGRESS"


def note(side: str, text: str) -> None:
    path = os.environ.get(ENV)
    if not path:
        return
    try:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(f"{side}: {text}\n")
    except OSError:
        pass  # progress is a courtesy: never fail a run over it
