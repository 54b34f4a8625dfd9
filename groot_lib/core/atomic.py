"""Write-then-rename: a crash or Ctrl-C never leaves half a file where a reader looks.

Every file the workbench writes goes through here. A SIGKILL can leave a hidden
``.<name>.*.tmp`` orphan behind, never a partial file under the real name.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def _replace_from_temp(path: Path, fill, *, fsync: bool = False) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        fill(Path(tmp))
        if fsync:
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would surprise other readers
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return _replace_from_temp(Path(path), lambda tmp: tmp.write_text(text, encoding="utf-8"))


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return _replace_from_temp(Path(path), lambda tmp: tmp.write_bytes(data))


def atomic_copy(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    return _replace_from_temp(Path(dst), lambda tmp: shutil.copyfile(src, tmp))


def atomic_save_npz(path: str | os.PathLike, arrays: dict) -> Path:
    """``np.savez_compressed`` + fsync, then rename (numpy would otherwise append '.npz' to the temp name)."""
    import numpy as np

    def fill(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **arrays)

    return _replace_from_temp(Path(path), fill, fsync=True)
