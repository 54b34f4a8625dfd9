"""One checkpoint resolver (core/checkpoint.py) for pre-flight, the notebooks and doctor, taking what upstream's
users type: a folder, owner/name, owner/name/subfolder, and @branch|tag|commit.

The HF caches here are laid out by huggingface_hub itself: a real local HTTP server in a thread serves the few hub
endpoints snapshot_download calls (repo info by revision, the tree listing, HEAD/GET on resolve/), and the kernels'
own huggingface_hub (0.36 in groot-original, 1.x in groot-lerobot; the tools env has none) downloads from it.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from groot_lib import paths
from groot_lib.core import checkpoint as ckpt
from groot_lib.core.errors import SettingError
from groot_lib.tiny import layout as tiny_layout
from groot_lib.workbench import doctor, preflight
from tests.conftest import env_python

REPO_ID = "nvidia/GR00T-N1.7-LIBERO"
# main's commit sorts BEFORE the tag's: a resolver taking the newest-looking snapshot folder picks the tag's.
MAIN, V1 = "1" * 40, "f" * 40
TINY = {f"libero_10/{p.name}": p.read_bytes() for p in sorted(tiny_layout.TINY_CHECKPOINT.iterdir())}
COMMITS = {
    MAIN: {"README.md": b"main\n", **TINY, "libero_goal/config.json": b'{"suite": "goal"}\n',
           "suites/libero_spatial/config.json": b'{"suite": "spatial"}\n'},
    V1: {"README.md": b"v1\n", **TINY, "libero_10/README.md": b"the v1 layout\n"},
}
REFS = {"main": MAIN, "v1": V1}


class FakeHub(BaseHTTPRequestHandler):
    """The hub endpoints snapshot_download calls, for one repo at two revisions; every file request is logged."""

    fetched: list[str] = []

    def log_message(self, *args):  # quiet: failures show in the assertions
        pass

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None) -> None:
        self.send_response(status)
        for key, value in {"Content-Length": str(len(body)), **(headers or {})}.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, payload) -> None:
        self._send(200, json.dumps(payload).encode(), {"Content-Type": "application/json"})

    def _commit(self, repo: str, revision: str) -> str | None:
        """The commit ``revision`` names, or None after sending the hub's 404 (its X-Error-Code says which)."""
        if repo != REPO_ID:
            self._send(404, b"{}", {"X-Error-Code": "RepoNotFound"})
            return None
        commit = REFS.get(revision) or (revision if revision in COMMITS else None)
        if commit is None:
            self._send(404, b"{}", {"X-Error-Code": "RevisionNotFound"})
        return commit

    def do_GET(self):  # noqa: N802 - http.server's name
        path = unquote(urlsplit(self.path).path)
        if path.startswith("/api/models/"):
            rest = path[len("/api/models/"):]
            for word in ("/revision/", "/tree/"):
                if word in rest:
                    repo, revision = rest.split(word, 1)
                    commit = self._commit(repo, revision)
                    if commit is None:
                        return
                    files = COMMITS[commit]
                    if word == "/revision/":  # repo info: sha and siblings (what 0.36 lists)
                        return self._json({"id": repo, "sha": commit, "siblings": [{"rfilename": f} for f in files]})
                    return self._json([{"type": "file", "path": f, "size": len(data),  # the tree (what 1.x lists)
                                        "oid": hashlib.sha1(data).hexdigest()} for f, data in files.items()])
            return self._send(404, b"{}", {"X-Error-Code": "RepoNotFound"})
        if "/resolve/" not in path:
            return self._send(404)
        repo, rest = path.lstrip("/").split("/resolve/", 1)
        revision, filename = rest.split("/", 1)
        commit = self._commit(repo, revision)
        if commit is None:
            return
        data = COMMITS[commit].get(filename)
        if data is None:
            return self._send(404, b"{}", {"X-Error-Code": "EntryNotFound"})
        if self.command == "GET":
            FakeHub.fetched.append(filename)
        self._send(200, data, {"X-Repo-Commit": commit, "ETag": f'"{hashlib.sha1(data).hexdigest()}"'})

    do_HEAD = do_GET


@pytest.fixture(scope="module")
def hub():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeHub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def online_env(endpoint: str) -> dict:
    """This process's environment, online and pointed at the fake hub."""
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HOME")}
    return {**env, "HF_ENDPOINT": endpoint}


def in_kernel(kernel: str, args: list[str], endpoint: str) -> subprocess.CompletedProcess:
    """``python -m groot_lib.core.checkpoint ARGS`` with a kernel's interpreter, online to the fake hub."""
    return subprocess.run([str(env_python(kernel)), "-m", "groot_lib.core.checkpoint", *args], cwd=paths.REPO_ROOT,
                          env=online_env(endpoint), capture_output=True, text=True, timeout=300)


def files_under(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


DOWNLOAD = """
import sys
from huggingface_hub import snapshot_download
for revision in sys.argv[2:]:
    snapshot_download(%r, revision=revision, cache_dir=sys.argv[1], allow_patterns=["libero_10/*"])
""" % REPO_ID


@pytest.fixture(scope="module")
def cache(hub, tmp_path_factory):
    """An HF_HOME laid out by huggingface_hub 1.x itself, as upstream's instructions download: libero_10 at main,
    then at tag v1 (whose snapshot folder sorts last)."""
    hf_home = tmp_path_factory.mktemp("hf_home")
    done = subprocess.run([str(env_python("groot-lerobot")), "-c", DOWNLOAD, str(hf_home / "hub"), "main", "v1"],
                          env=online_env(hub), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return hf_home


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture
def online(hub, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", hub)
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HOME"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("kernel", ["groot-lerobot", "groot-original"])
def test_a_cache_miss_downloads_only_the_subfolder(hub, tmp_path, monkeypatch, kernel):
    """The resolver's own download (huggingface_hub 1.x and 0.36): snapshot_download of that subfolder's files
    only, its progress bars shown, then the folder read back from the cache it filled, here offline too."""
    for spec, commit in ((f"{REPO_ID}/libero_10", MAIN), (f"{REPO_ID}/libero_10@v1", V1)):
        FakeHub.fetched.clear()
        done = in_kernel(kernel, [spec, "--hf-home", str(tmp_path)], hub)
        assert done.returncode == 0, done.stdout + done.stderr
        folder = Path(json.loads(done.stdout.strip().splitlines()[-1])["folder"])
        assert folder == ckpt.hub_cache_dir(tmp_path, REPO_ID) / "snapshots" / commit / "libero_10"
        assert files_under(folder.parent) == {f for f in COMMITS[commit] if f.startswith("libero_10/")}
        assert FakeHub.fetched and all(f.startswith("libero_10/") for f in FakeHub.fetched)  # same blobs: fetched once
        assert "Fetching" in done.stderr, done.stderr  # huggingface_hub's own progress bar
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        assert preflight.resolve_checkpoint(spec, str(tmp_path)) == folder
        monkeypatch.delenv("HF_HUB_OFFLINE")


@pytest.mark.parametrize("spec, expected", [
    (f"{REPO_ID}/libero_10", f"{MAIN}/libero_10"),
    (f"{REPO_ID}/libero_10@v1", f"{V1}/libero_10"),
    (f"{REPO_ID}/libero_10@main", f"{MAIN}/libero_10"),
    (f"{REPO_ID}@{MAIN}", MAIN),  # a full commit hash names its snapshot directly
    (f"{REPO_ID}/libero_10@{V1}", f"{V1}/libero_10"),
])
def test_offline_resolution_reads_the_cache_as_huggingface_hub_does(cache, offline, spec, expected):
    start = time.perf_counter()
    folder = preflight.resolve_checkpoint(spec, str(cache))
    assert folder == ckpt.hub_cache_dir(cache, REPO_ID) / "snapshots" / expected
    assert time.perf_counter() - start < 0.5  # pre-flight's budget: the cache answers, no hub import


@pytest.mark.parametrize("spec, expected", [
    ("nvidia/GR00T-N1.7-nope", ["'nvidia/GR00T-N1.7-nope' is not in the HF cache", REPO_ID]),
    (f"{REPO_ID}/libero_10@v9", ["no revision 'v9'", f"main={MAIN[:12]}", f"v1={V1[:12]}", V1]),
    (f"{REPO_ID}/libero_99", ["no subfolder 'libero_99'", "libero_10"]),
])
def test_what_the_cache_lacks_is_one_line_naming_what_it_has(cache, offline, spec, expected):
    with pytest.raises(SettingError) as err:
        preflight.resolve_checkpoint(spec, str(cache))
    message = str(err.value)
    assert "\n" not in message and "Traceback" not in message
    assert str(ckpt.hub_root(cache)) in message and "HF_HUB_OFFLINE" in message and "HF_HOME" in message, message
    for part in expected:
        assert part in message, message


def test_owner_name_is_refs_main_unless_such_a_folder_exists_here(cache, tmp_path, monkeypatch, offline):
    """owner/name is the snapshot refs/main names, not the newest-looking folder; a folder of that name here wins."""
    monkeypatch.chdir(tmp_path)
    assert preflight.resolve_checkpoint(REPO_ID, str(cache)) == ckpt.hub_cache_dir(cache, REPO_ID) / "snapshots" / MAIN
    (tmp_path / REPO_ID).mkdir(parents=True)
    assert preflight.resolve_checkpoint(REPO_ID, str(cache)) == tmp_path / REPO_ID


def test_preflight_and_both_kernels_pick_the_same_folder(cache, offline):
    """make report resolves in pre-flight (tools env); a notebook opened by hand resolves in its kernel
    (setup_notebook, then the pipeline's own resolve_checkpoint); make doctor shows it: one input, one folder."""
    specs = [REPO_ID, f"{REPO_ID}/libero_10", f"{REPO_ID}/libero_10@v1", f"{REPO_ID}@{V1}"]
    ours = [str(preflight.resolve_checkpoint(spec, str(cache))) for spec in specs]
    assert [doctor.report_checkpoint(spec, str(cache)) for spec in specs] == ours  # make doctor CKPT= shows it
    snippet = ("import json, sys\nfrom groot_lib.backends import process\nfrom groot_lib.core import checkpoint\n"
               "print(json.dumps([str(checkpoint.resolve_checkpoint(process.setup_notebook(s, sys.argv[1])[0]))"
               " for s in sys.argv[2:]]))")
    for kernel in ("groot-original", "groot-lerobot"):
        done = subprocess.run([str(env_python(kernel)), "-c", snippet, str(cache), *specs], cwd=paths.REPO_ROOT,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout.strip().splitlines()[-1]) == ours, kernel


def test_preflight_downloads_a_nested_subfolder_in_the_kernel(online, tmp_path):
    """The tools env has no huggingface_hub: pre-flight's cache miss downloads through the LeRobot kernel, only
    that subfolder, then reads it from the cache."""
    FakeHub.fetched.clear()
    folder = preflight.resolve_checkpoint(f"{REPO_ID}/suites/libero_spatial", str(tmp_path))
    assert folder == ckpt.hub_cache_dir(tmp_path, REPO_ID) / "snapshots" / MAIN / "suites" / "libero_spatial"
    assert FakeHub.fetched == ["suites/libero_spatial/config.json"]


def test_what_the_hub_lacks_is_one_line(online, tmp_path):
    """Online, the hub's own answer (its error type, or no files under that subfolder) ends the one line."""
    for spec, expected in ((f"{REPO_ID}@v9", "RevisionNotFoundError"), ("nvidia/nope", "RepositoryNotFoundError"),
                           (f"{REPO_ID}/libero_99", "no files for it under libero_99/ (its checkpoint folders at "
                                                    "main: libero_10, libero_goal, suites/libero_spatial)")):
        with pytest.raises(SettingError) as err:
            preflight.resolve_checkpoint(spec, str(tmp_path))
        assert expected in str(err.value) and "\n" not in str(err.value), str(err.value)


def test_make_report_stops_in_preflight_on_a_revision_the_cache_lacks(cache, offline, tmp_path):
    from groot_lib.workbench import workflow

    with pytest.raises(SettingError, match="no revision 'v9'"):
        workflow.run_report(checkpoint=f"{REPO_ID}/libero_10@v9", hf_home=str(cache), out_root=tmp_path / "reports",
                            artifacts_root=tmp_path / "store", quiet=True)
    assert not (tmp_path / "reports").exists()  # stopped before a report folder was made
