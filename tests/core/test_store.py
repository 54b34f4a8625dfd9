"""Content-addressed store and atomic writes, including a real SIGKILL in the middle of a write."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from groot_lib.core import runinfo
from groot_lib.core import store
from groot_lib.core.artifact import find_artifacts
from groot_lib.core.atomic import atomic_save_npz, atomic_write_text


def test_key_is_stable_and_sensitive_to_every_field():
    fields = {"checkpoint": "abc", "tag": "t", "variant": "fp32-sdpa", "seed": 0, "batch_size": 2}
    key = store.content_key(fields)
    assert key == store.content_key(dict(reversed(list(fields.items()))))
    for name, value in [("checkpoint", "abd"), ("tag", "u"), ("variant", "bf16-sdpa"), ("seed", 1), ("batch_size", 3)]:
        assert store.content_key({**fields, name: value}) != key, name


def test_code_digest_follows_the_source(tmp_path, monkeypatch):
    (tmp_path / "a.py").write_text("x = 1\n")
    monkeypatch.setattr(store, "_LIB", tmp_path)
    before = store.code_digest("a")
    (tmp_path / "a.py").write_text("x = 2\n")
    assert store.code_digest("a") != before


def test_versions_read_metadata_without_import():
    found = runinfo.versions("numpy", "surely-not-installed-dist")
    assert found["numpy"] == np.__version__ and found["surely-not-installed-dist"] is None


def test_publish_links_atomically_and_replaces(tmp_path):
    entry = store.entry_path(tmp_path / "s", "original", "tag", "fp32-sdpa", "k1")
    atomic_write_text(entry, "v1")
    out = store.publish(entry, tmp_path / "view" / "tag.npz")
    assert out.read_text() == "v1" and os.stat(out).st_ino == os.stat(entry).st_ino
    atomic_write_text(entry, "v2")  # a new inode: the published copy keeps what it was
    assert out.read_text() == "v1"
    store.publish(entry, out)
    assert out.read_text() == "v2"
    assert sorted(p.name for p in out.parent.iterdir()) == ["tag.npz"]


WRITER = """
import sys, numpy as np
from groot_lib.core.atomic import atomic_save_npz
big = np.random.default_rng(0).standard_normal((40, 1000, 1000))  # ~300 MB: seconds to compress
atomic_save_npz(sys.argv[1], {"out::action_pred": big})
"""


def test_sigkill_mid_write_leaves_old_file_intact_and_no_partial(tmp_path):
    path = tmp_path / "tag.npz"
    atomic_save_npz(path, {"out::action_pred": np.ones((1, 2, 3), np.float32)})
    before = path.read_bytes()
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(WRITER), str(path)],
                            cwd=os.path.dirname(os.path.dirname(__file__)))
    deadline = time.monotonic() + 120
    while not any(p.name.endswith(".tmp") and p.stat().st_size > 0 for p in tmp_path.iterdir()):
        assert proc.poll() is None, "the writer finished before it could be killed"
        assert time.monotonic() < deadline, "the writer never started writing"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert path.read_bytes() == before  # the real name still holds the complete old file
    orphans = [p.name for p in tmp_path.iterdir() if p.name != "tag.npz"]
    assert len(orphans) == 1 and orphans[0].startswith(".tag.npz.")  # hidden, never mistaken for an artifact
    assert list(find_artifacts(tmp_path)) == ["tag"]


def test_failed_write_removes_its_temp(tmp_path):
    with pytest.raises(Exception, match="pickle|lambda"):
        atomic_save_npz(tmp_path / "x.npz", {"a": lambda: 0})  # unpicklable: fails mid-write
    assert list(tmp_path.iterdir()) == []
