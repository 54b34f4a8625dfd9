"""Run one notebook in one named kernel with papermill, and fail readably.

Why: the producer/consumer notebooks run in different interpreters; when one breaks,
the caller needs "which notebook, which cell, what exception" in one message, and
the executed notebook on disk to open and inspect, not a wall of traceback.
"""
from __future__ import annotations

import atexit
import logging
import os
import shutil
import signal
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path

from groot_lib.core.errors import ParityError
from groot_lib.workbench.kernels import ensure_jupyter_path, require_kernel

SOURCE_LINES = 5  # how much of the failing cell the message quotes
KERNEL_LOG_ENV = "GROOT_PARITY_KERNEL_LOG"  # when set, kernels write their stdout/stderr there, not the terminal
_RUNNING: set = set()  # kernel managers of the kernels this process started and has not shut down
_SOCKETS: list[str] = []  # per-kernel IPC socket folders, removed at exit (and by kill_kernels, before os._exit)
_RUNNING_LOCK = threading.Lock()


def _tracked_kernel_manager():
    """nbclient's kernel manager over IPC, remembering each kernel it starts so a stop signal can kill it at once.

    Kernels run in their own session (jupyter_client), so the terminal's Ctrl-C never reaches them.
    """
    from jupyter_client.manager import AsyncKernelManager

    class TrackedKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs):
            # Unix sockets: no TCP ports, no "unencrypted TCP" warnings. Each kernel gets its own socket folder:
            # two kernels started at once would otherwise pick the same socket paths.
            if kwargs.setdefault("transport", "ipc") == "ipc" and "ip" not in kwargs:
                folder = tempfile.mkdtemp(prefix="groot-kernel-")
                _SOCKETS.append(folder)
                kwargs["ip"] = os.path.join(folder, "kernel")
            super().__init__(**kwargs)

        async def start_kernel(self, **kwargs):
            log = os.environ.get(KERNEL_LOG_ENV)
            if log:  # the kernel's own stdout/stderr (library warnings, shutdown notices) go to the report's log
                kwargs.setdefault("stdout", open(log, "ab"))  # noqa: SIM115 - the kernel process owns it
                kwargs.setdefault("stderr", kwargs["stdout"])
            await super().start_kernel(**kwargs)
            with _RUNNING_LOCK:
                _RUNNING.add(self)

        async def shutdown_kernel(self, *args, **kwargs):
            with _RUNNING_LOCK:
                _RUNNING.discard(self)
            return await super().shutdown_kernel(*args, **kwargs)

    return TrackedKernelManager


def _remove_sockets() -> None:
    while _SOCKETS:
        shutil.rmtree(_SOCKETS.pop(), ignore_errors=True)


atexit.register(_remove_sockets)


def kill_kernels() -> int:
    """SIGKILL every kernel this process started (their whole process group); returns how many."""
    with _RUNNING_LOCK:
        managers = list(_RUNNING)
        _RUNNING.clear()
    killed = 0
    for km in managers:
        pid = getattr(km.provisioner, "pid", None) if km.provisioner is not None else None
        if pid is None:
            continue
        try:
            os.killpg(os.getpgid(pid), signal.SIGKILL)
            killed += 1
        except (ProcessLookupError, PermissionError):
            pass
    _remove_sockets()
    return killed


# What stops a run, and who sends it; the workflow then exits 128 + its number.
STOP_SIGNALS = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "kill, timeout, docker stop",
                signal.SIGHUP: "the terminal closed"}


@contextmanager
def stop_signals_kill_kernels():
    """While inside: SIGINT, SIGTERM or SIGHUP kills the kernels at once, then raises KeyboardInterrupt.

    Yields a dict whose ``signal`` becomes the first signal's number: nbclient may swallow the KeyboardInterrupt
    (it then reports a dead kernel), so callers check it, not only the exception. A repeated signal only kills
    again, so the caller's cleanup runs to the end. papermill's logger goes quiet on the first one: its "Kernel
    died ..." lines are about kernels we killed on purpose.
    """
    state = {"signal": None, "killed": 0}
    if threading.current_thread() is not threading.main_thread():
        yield state
        return

    def handler(signum, frame):
        state["killed"] += kill_kernels()
        if state["signal"] is None:
            state["signal"] = signal.Signals(signum)
            logging.getLogger("papermill").disabled = True
            raise KeyboardInterrupt

    previous = {signum: signal.signal(signum, handler) for signum in STOP_SIGNALS}
    try:
        yield state
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


class NotebookExecutionError(ParityError):
    """A cell raised, the kernel died, or a cell timed out; the executed notebook is on disk."""

    def __init__(self, message: str, *, notebook: Path, output: Path, cell_index: int | None = None,
                 execution_count: int | None = None, ename: str = "", evalue: str = ""):
        super().__init__(message)
        self.notebook, self.output = notebook, output
        self.cell_index, self.execution_count = cell_index, execution_count
        self.ename, self.evalue = ename, evalue


def _input_index(nb, index: int) -> int:
    """Index in the *input* notebook: papermill may have injected a parameters cell before it."""
    injected = [i for i, c in enumerate(nb.cells[:index]) if "injected-parameters" in c.metadata.get("tags", [])]
    return index - len(injected)


def _cell_text(source: str) -> str:
    lines = source.strip().splitlines() or ["<empty cell>"]
    more = f"\n    ... ({len(lines) - SOURCE_LINES} more lines)" if len(lines) > SOURCE_LINES else ""
    return "\n".join("    " + ln for ln in lines[:SOURCE_LINES]) + more


def _fail(what: str, input_path: Path, output: Path, nb, index: int, ename: str = "",
          evalue: str = "") -> NotebookExecutionError:
    cell = nb.cells[index] if 0 <= index < len(nb.cells) else {"source": "", "execution_count": None}
    idx, count = _input_index(nb, index), cell.get("execution_count")
    message = f"{input_path.name}: {what} at cell {idx} (In [{count if count is not None else ' '}])"
    message += f": {ename}: {evalue}\n" if ename else ":\n"
    message += f"{_cell_text(cell['source'])}\nexecuted notebook: {output}"
    return NotebookExecutionError(message, notebook=input_path, output=output, cell_index=idx,
                                  execution_count=count, ename=ename, evalue=evalue)


def _executed(path: Path):
    """The partially executed notebook, minus the banner cells papermill adds on errors."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    nb.cells = [c for c in nb.cells if "papermill-error-cell-tag" not in c.metadata.get("tags", [])]
    return nb


def check_parameters(input_path: Path, parameters: dict) -> None:
    """Refuse parameters the notebook does not declare (papermill would inject them silently)."""
    import papermill

    declared = papermill.inspect_notebook(str(input_path))
    unknown = sorted(set(parameters) - set(declared))
    if declared and unknown:
        raise ParityError(f"{input_path.name}: unknown parameter(s) {unknown}; its parameters cell declares "
                          f"{', '.join(declared)}")


def cell_timeout(nb, timeout: float | None):
    """nbmake's rule: a cell's ``metadata.execution.timeout``, else the caller's, else the notebook's
    ``metadata.execution.timeout`` (seconds), else none. Returns nbclient's per-cell timeout function.

    Read from the input notebook up front, by cell id: nbclient replaces ``metadata.execution`` with
    its timing record before it asks for the timeout.
    """
    default = timeout if timeout is not None else nb.metadata.get("execution", {}).get("timeout")
    own = {c.get("id"): c.metadata["execution"]["timeout"] for c in nb.cells
           if "timeout" in c.metadata.get("execution", {})}
    return lambda cell: own.get(cell.get("id"), default)


def run_notebook(input_path: str | Path, output_path: str | Path, *, kernel_name: str,
                 parameters: dict | None = None, cwd: str | Path | None = None,
                 timeout: float | None = None) -> Path:
    """Execute ``input_path`` in ``kernel_name``; always leave the executed copy at ``output_path``.

    ``cwd`` defaults to the notebook's folder (as in Jupyter); ``timeout`` is per cell, seconds
    (default: the notebook's ``metadata.execution.timeout``; a cell's own metadata wins).
    """
    import nbformat
    import papermill
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    input_path, output = Path(input_path).absolute(), Path(output_path).absolute()
    ensure_jupyter_path()
    require_kernel(kernel_name)
    check_parameters(input_path, parameters or {})
    per_cell = cell_timeout(nbformat.read(str(input_path), as_version=4), timeout)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.stem}.{os.getpid()}.tmp.ipynb")
    try:
        papermill.execute_notebook(
            str(input_path), str(tmp), parameters=parameters or {}, kernel_name=kernel_name,
            language="python", cwd=str(cwd or input_path.parent), timeout_func=per_cell,
            progress_bar=False, log_output=False, kernel_manager_class=_tracked_kernel_manager(),
            # every cell writes its files atomically, so a kill loses nothing; a graceful exit (atexit hooks,
            # interpreter teardown) of a kernel holding LeRobot and 8 GB took 0.62-0.75 s after the last cell, a
            # kill 0.35 s
            shutdown_kernel="immediate",
        )
    except PapermillExecutionError as exc:  # exc.cell_index counts papermill's injected cell
        raise _fail("error", input_path, output, _executed(tmp), exc.cell_index, exc.ename, exc.evalue) from None
    except (DeadKernelError, CellTimeoutError) as exc:
        nb = _executed(tmp)  # the culprit is the last cell papermill started
        started = [i for i, c in enumerate(nb.cells) if c.metadata.get("papermill", {}).get("start_time")]
        culprit = started[-1] if started else 0
        what = ("kernel died" if isinstance(exc, DeadKernelError)
                else f"timed out after {per_cell(nb.cells[culprit]) if nb.cells else timeout:g} s")
        raise _fail(what, input_path, output, nb, culprit) from None
    finally:
        if not tmp.exists():  # failed before papermill wrote anything: keep an honest record
            shutil.copyfile(input_path, tmp)
        os.replace(tmp, output)
    return output


def cell_timings(executed: str | Path) -> dict:
    """Where an executed notebook's time went: kernel start (before the first cell) and per-cell seconds."""
    from datetime import datetime

    import nbformat

    nb = nbformat.read(str(executed), as_version=4)
    meta = nb.metadata.get("papermill", {})
    cells = [c.metadata.get("papermill", {}) for c in nb.cells]
    starts = [c["start_time"] for c in cells if c.get("start_time")]
    parse = datetime.fromisoformat
    kernel = (parse(starts[0]) - parse(meta["start_time"])).total_seconds() if starts and meta.get("start_time") else None
    return {"kernel start": kernel, "total": meta.get("duration"),
            "cells": [round(c.get("duration") or 0.0, 3) for c in cells]}
