"""make matrix on real Ray: a head and two worker nodes started with `ray start` on this machine, real reports per
shard on the tiny default, a worker killed mid-shard; the local default (ray.init() here) cancelled with Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import lerobot_history
import pytest

from groot_lib.core import report_folder
from groot_lib.core.errors import ParityError
from groot_lib.paths import REPO_ROOT
from groot_lib.workbench import matrix

RAY = Path(sys.executable).parent / "ray"
# token auth off: these clusters live on this machine for one test (a real cluster keeps its own setting)
ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
SPEC = """axes:
  tags: [libero_sim, oxe_droid_relative_eef_relative_joint]
  variants: [fp32-sdpa, "fp32-sdpa,bf16-sdpa"]
fixed:
  device: cpu
resources:
  cpus: 1
retries: 2
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize("text, expected", [
    ("axes:\n  seeds: [0, 1]\n", "axes.seeds is not a knob"),
    ("axis:\n  seed: [0]\n", "unknown key(s) ['axis']"),
    ("axes:\n  seed: []\n", "axes.seed must be a non-empty list"),
    ("axes:\n  seed: [0, -1]\n", "axes.seed = -1"),
    ("axes:\n  seed: [0]\nfixed:\n  seed: 1\n", "['seed'] both in axes and in fixed"),
    ("axes: [seed\n", "not valid YAML"),
    ("lerobot:\n  - {src: /x}\n", "lerobot[0] must be {src: <git checkout>, rev: <revision>}"),
])
def test_a_bad_spec_is_one_line_naming_the_file_and_key(tmp_path, text, expected):
    path = write(tmp_path / "spec.yaml", text)
    with pytest.raises(ParityError) as err:
        matrix.load_spec(path)
    assert expected in str(err.value) and str(path) in str(err.value), str(err.value)


def test_shards_are_the_product_of_the_axes_with_stable_ids(tmp_path):
    """YAML and TOML read alike; one shard per combination, fixed knobs in each, ids stable across reads."""
    yaml_spec = matrix.load_spec(write(tmp_path / "spec.yaml", SPEC))
    toml_spec = matrix.load_spec(write(tmp_path / "spec.toml", 'retries = 2\n[axes]\ntags = ["libero_sim", '
                                       '"oxe_droid_relative_eef_relative_joint"]\nvariants = ["fp32-sdpa", '
                                       '"fp32-sdpa,bf16-sdpa"]\n[fixed]\ndevice = "cpu"\n[resources]\ncpus = 1\n'))
    assert [s.id for s in yaml_spec.shards] == [s.id for s in toml_spec.shards]
    assert len(yaml_spec.shards) == 4 and len({s.id for s in yaml_spec.shards}) == 4
    assert all(s.knobs["device"] == "cpu" for s in yaml_spec.shards)
    assert yaml_spec.shards[1].label == "tags=libero_sim, variants=fp32-sdpa,bf16-sdpa"
    command = matrix.report_command(yaml_spec.shards[1], tmp_path / "out", tmp_path / "store")
    assert command[command.index("--variants") + 1] == "fp32-sdpa,bf16-sdpa"
    needs = matrix.shard_needs(yaml_spec.shards[0], yaml_spec)
    assert needs["num_cpus"] == 1 and needs["num_gpus"] == 0 and 1 << 30 < needs["memory"] < 8 << 30


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kernels() -> set[int]:
    """Pids of running ipykernel processes (every kernel a report starts)."""
    out = subprocess.run(["pgrep", "-f", "ipykernel_launcher"], capture_output=True, text=True).stdout
    return {int(p) for p in out.split()}


@pytest.fixture
def cluster():
    """A head (no CPUs: it schedules only) and two one-CPU worker nodes, all on this machine."""
    port = free_port()
    common = ["--object-store-memory", str(80 * 2**20), "--disable-usage-stats"]
    subprocess.run([str(RAY), "start", "--head", "--port", str(port), "--num-cpus", "0", "--include-dashboard",
                    "false", *common], env=ENV, check=True, capture_output=True)
    try:
        for _ in range(2):
            subprocess.run([str(RAY), "start", "--address", f"127.0.0.1:{port}", "--num-cpus", "1", *common], env=ENV,
                           check=True, capture_output=True)
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([str(RAY), "stop", "--force"], env=ENV, capture_output=True)


def wait_for(predicate, timeout: float, what: str):
    end = time.time() + timeout
    while time.time() < end:
        found = predicate()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def running_shard(root: Path) -> tuple[Path, int] | None:
    """A shard whose report has started its producer, and the pid of the Ray worker running it."""
    for log in root.glob("*/shards/*/attempts.log"):
        for progress in log.parent.glob("*/progress.log"):
            if "producer" in progress.read_text():
                return log.parent, int(log.read_text().split()[2])
    return None


def test_a_2x2_matrix_on_three_ray_nodes_survives_a_worker_killed_mid_shard(cluster, tmp_path):
    """The shard whose worker is SIGKILLed mid-report runs again (2 attempts) and PASSes; nothing half-written is
    left in any shard, no kernel outlives the matrix, and the page links each cell to its shard's report."""
    before = kernels()
    spec = write(tmp_path / "spec.yaml", SPEC)
    root = tmp_path / "matrix"
    proc = subprocess.Popen([sys.executable, "-m", "groot_lib.workbench.matrix", str(spec), "--out-root", str(root),
                             "--artifacts-root", str(tmp_path / "store")], cwd=REPO_ROOT,
                            env={**ENV, "RAY_ADDRESS": cluster}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    killed_shard, worker = wait_for(lambda: running_shard(root), 240, "a shard's producer to start")
    os.kill(worker, signal.SIGKILL)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, out + err

    (folder,) = root.iterdir()
    payload = json.loads((folder / "matrix.json").read_text())
    assert payload["verdict"] == "PASS" and len(payload["shards"]) == 4
    by_id = {s["id"]: s for s in payload["shards"]}
    assert by_id[killed_shard.name]["attempts"] == 2, by_id[killed_shard.name]
    assert all(s["cells"]["model parity"]["status"] == "PASS" for s in payload["shards"])
    assert [s["cells"].get("precision study", {}).get("status") for s in payload["shards"]].count("PASS") == 2
    for shard in (folder / "shards").iterdir():
        folders = report_folder.report_folders(shard)
        assert folders and all(report_folder.is_finished(f) for f in folders), (shard, folders)
    page = (folder / "index.html").read_text()
    for s in payload["shards"]:
        assert os.path.relpath(s["report"], folder) in page
    assert "gr00t-parity matrix: PASS" in out and "attempts" in out
    wait_for(lambda: kernels() <= before, 20, "every kernel the matrix started to exit")


def test_the_local_default_is_cancelled_by_ctrl_c_without_orphans(tmp_path):
    """No RAY_ADDRESS: ray.init() here. Ctrl-C mid-shard ends the matrix with 130, one line, its kernels gone
    and no unfinished report folder left."""
    before = kernels()
    spec = write(tmp_path / "spec.yaml", SPEC)
    root = tmp_path / "matrix"
    env = {k: v for k, v in ENV.items() if k != "RAY_ADDRESS"}
    proc = subprocess.Popen([sys.executable, "-m", "groot_lib.workbench.matrix", str(spec), "--out-root", str(root),
                             "--artifacts-root", str(tmp_path / "store")], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: running_shard(root), 240, "a shard's producer to start")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, out + err
    assert "cancelled" in err and "Traceback" not in err, err
    wait_for(lambda: kernels() <= before, 30, "every kernel the matrix started to exit")
    wait_for(lambda: not [f for shard in root.glob("*/shards/*") for f in report_folder.report_folders(shard)
                          if not report_folder.is_finished(f)], 30, "unfinished report folders to be removed")


def test_a_lerobot_axis_finds_a_planted_fault_and_a_shard_that_cannot_run_makes_it_partial(tmp_path):
    """Two LeRobot revisions of a real history (the installed source, and one flow step fewer) x a good and an
    unknown tag, on the local default: the fault's shard FAILs model parity, the installed one PASSes, the unknown
    tag's shards could not run and say why; the matrix exits 2 (partial), never PASS, and names them."""
    repo = tmp_path / "lerobot"
    repo.mkdir()
    shas = lerobot_history.build(repo)
    spec = write(tmp_path / "spec.yaml", f"""axes:
  tags: [libero_sim, not_a_tag]
lerobot:
  - {{src: {repo}, rev: {shas['installed']}}}
  - {{src: {repo}, rev: {shas['fault']}}}
""")
    proc = subprocess.run([sys.executable, "-m", "groot_lib.workbench.matrix", str(spec), "--out-root",
                           str(tmp_path / "matrix"), "--artifacts-root", str(tmp_path / "store")], cwd=REPO_ROOT,
                          env=ENV, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    (folder,) = (tmp_path / "matrix").iterdir()
    payload = json.loads((folder / "matrix.json").read_text())
    assert payload["verdict"] == "INCOMPLETE" and payload["axes"] == ["tags", "lerobot"]
    by = {(s["axes"]["tags"], s["axes"]["lerobot"]): s for s in payload["shards"]}
    assert by[("libero_sim", shas["installed"])]["cells"]["model parity"]["status"] == "PASS"
    assert by[("libero_sim", shas["fault"])]["cells"]["model parity"]["status"] == "FAIL"
    for rev in shas["installed"], shas["fault"]:
        assert "not_a_tag" in by[("not_a_tag", rev)]["error"], by[("not_a_tag", rev)]
    assert "gr00t-parity matrix: INCOMPLETE (exit 2" in proc.stdout
    assert proc.stdout.count("could not run: tags=not_a_tag") == 2, proc.stdout
    assert not subprocess.run(["git", "-C", str(repo), "status", "--porcelain"], capture_output=True,
                              text=True).stdout
    worktrees = subprocess.run(["git", "-C", str(repo), "worktree", "list"], capture_output=True, text=True).stdout
    assert len(worktrees.splitlines()) == 1, worktrees  # the matrix's LeRobot checkouts are gone again
