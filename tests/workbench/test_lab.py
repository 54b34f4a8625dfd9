"""`make lab`: a real JupyterLab server (headless) lists both kernels and runs a cell in each."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import nbformat
import pytest

from groot_lib.workbench.kernels import KERNELS, REPO
from groot_lib.workbench.workflow import NOTEBOOKS

TOKEN = "groot-parity-test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str):
    request = urllib.request.Request(url, headers={"Authorization": f"token {TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _post(url: str, body: dict):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Authorization": f"token {TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def _request(msg_type: str, content: dict, session: str) -> tuple[str, str]:
    msg_id = uuid.uuid4().hex
    return msg_id, json.dumps({"header": {"msg_id": msg_id, "username": "test", "session": session,
                                          "msg_type": msg_type, "version": "5.3"},
                               "parent_header": {}, "metadata": {}, "channel": "shell", "content": content})


async def _execute(ws_url: str, code: str, timeout: float = 120) -> str:
    """Wait until the kernel answers a kernel_info_request over its websocket (a request sent to a kernel that
    is still starting can be lost, as Jupyter clients know), then send one execute_request; return its stdout."""
    import asyncio

    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    conn = await websocket_connect(HTTPRequest(ws_url, headers={"Authorization": f"token {TOKEN}"}))
    session, deadline = uuid.uuid4().hex, time.monotonic() + timeout
    ready = False
    while not ready:
        assert time.monotonic() < deadline, f"the kernel at {ws_url} never answered kernel_info_request"
        info_id, request = _request("kernel_info_request", {}, session)
        await conn.write_message(request)
        try:
            while not ready:
                msg = json.loads(await asyncio.wait_for(conn.read_message(), timeout=5))
                ready = (msg.get("parent_header", {}).get("msg_id") == info_id
                         and msg["msg_type"] == "kernel_info_reply")
        except asyncio.TimeoutError:
            continue  # asked too early: ask again
    msg_id, request = _request("execute_request", {"code": code, "silent": False, "store_history": False,
                                                   "user_expressions": {}, "allow_stdin": False}, session)
    await conn.write_message(request)
    out = []
    while time.monotonic() < deadline:
        raw = await asyncio.wait_for(conn.read_message(), timeout=deadline - time.monotonic())
        msg = json.loads(raw)
        if msg.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            raise AssertionError(f"{msg['content']['ename']}: {msg['content']['evalue']}")
        elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    conn.close()
    return "".join(out)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    jupyter = Path(sys.executable).parent / "jupyter"
    if not jupyter.exists():
        pytest.fail("jupyterlab is not installed in the tools env: run `make setup` (environment-tools.yml)")
    home = tmp_path_factory.mktemp("jupyter")
    port = _free_port()
    env = {**os.environ, "JUPYTER_PATH": str(REPO), "JUPYTER_CONFIG_DIR": str(home / "config"),
           "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"), "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces")}
    proc = subprocess.Popen([str(jupyter), "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
                             f"--IdentityProvider.token={TOKEN}", f"--notebook-dir={REPO}",
                             *(["--allow-root"] if os.geteuid() == 0 else [])],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            _get(f"{base}/api/status")
            break
        except OSError:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "JupyterLab did not answer within 90 s"
            time.sleep(0.5)
    yield base, port
    proc.terminate()
    proc.wait(timeout=30)


def test_lab_serves_both_kernels_and_runs_a_cell_in_each(lab):
    import asyncio

    base, port = lab
    specs = _get(f"{base}/api/kernelspecs")["kernelspecs"]
    assert set(KERNELS) <= set(specs), sorted(specs)
    assert "JupyterLab" in urllib.request.urlopen(f"{base}/lab?token={TOKEN}", timeout=10).read().decode()
    expected = {"groot-original": "3.10", "groot-lerobot": "3.12"}
    for name in KERNELS:
        kernel = _post(f"{base}/api/kernels", {"name": name})
        text = asyncio.run(_execute(f"ws://127.0.0.1:{port}/api/kernels/{kernel['id']}/channels",
                                    "import sys, groot_lib.core.settings as s; "
                                    "print(sys.version.split()[0], s.BY_NAME['atol'].default)"))
        assert text.startswith(expected[name]) and "0.001" in text, (name, text)


def test_notebooks_declare_their_kernel():
    assert nbformat.read(str(NOTEBOOKS / "producer.ipynb"), 4).metadata.kernelspec.name == "groot-original"
    assert nbformat.read(str(NOTEBOOKS / "consumer.ipynb"), 4).metadata.kernelspec.name == "groot-lerobot"
