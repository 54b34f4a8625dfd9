"""No stale reuse: every part of a stored result's key, changed alone, recomputes it; changed back, reuses it.

A stored LeRobot replay or original artifact that is reused when something it depends on changed is a false PASS
waiting to happen (the checkpoint's weights scaled x1.05 once reported "LeRobot reused", PASS 2.15e-6). The
LeRobot side runs for real here (the replay store, the tiny model); the original side's key is checked part by
part, since gr00t is not on CI machines.
"""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path


from conftest import run_in_env
from groot_lib import paths
from groot_lib.core import store
from groot_lib.tiny import layout as tiny_layout
from groot_lib.workbench.workflow import run_report

TAG = "libero_sim"
DECODER = "action_head.action_decoder.layer2.W"


def tiny_copy(tmp_path: Path) -> tuple[Path, Path]:
    """A writable copy of the tiny default and of its HF cache (the key reads both)."""
    checkpoint = tmp_path / "ckpt" / tiny_layout.TINY_CHECKPOINT.name
    shutil.copytree(tiny_layout.TINY_CHECKPOINT, checkpoint)
    hf_home = tmp_path / "hf_home"
    shutil.copytree(tiny_layout.TINY_HF_HOME, hf_home, symlinks=True)
    return checkpoint, hf_home


SCALE_WEIGHT = """
import sys
from safetensors.numpy import load_file, save_file
path, name, factor = sys.argv[1], sys.argv[2], float(sys.argv[3])
weights = load_file(path)
weights[name] = (weights[name] * factor).astype(weights[name].dtype)
save_file(weights, path, metadata={"format": "pt"})
"""


def scale_weight(checkpoint: Path, name: str = DECODER, factor: float = 1.05) -> None:
    """One tensor of the copy's weights scaled in place: config, index and statistics (the fingerprint) unchanged."""
    import subprocess

    from conftest import env_python

    shard = next(checkpoint.glob("*.safetensors"))
    subprocess.run([str(env_python("groot-lerobot")), "-c", SCALE_WEIGHT, str(shard), name, str(factor)], check=True)


REPLAY_EACH_PART = """
import json, shutil, sys
from pathlib import Path
checkpoint, hf_home, store_dir, work = map(Path, sys.argv[1:5])
from groot_lib.backends import process
process.configure_process(hf_home)
import numpy as np
from groot_lib.core.artifact import artifact_path, load_artifact
from groot_lib.core.atomic import atomic_save_npz
from groot_lib.core import settings
from groot_lib.pipeline.replay import replay_all
from groot_lib.tiny import layout as L

knobs = settings.for_notebook("consumer", {"stages": "off"})
reference = artifact_path(L.RECORDED_ROOT, "%(tag)s")
def replay(artifact_file=reference):
    art = load_artifact(artifact_file)
    out = replay_all(checkpoint, {"fp32-sdpa": {art.embodiment_tag: art}}, knobs, variants=["fp32-sdpa"],
                     device="cpu", store_dir=store_dir)
    (r,) = out.replays.values()
    return r.status, float(np.abs(r.action_pred.astype(np.float64) - art.action_pred).max())

def changed(path, edit):
    # the part changed alone, replayed, then restored byte for byte and replayed again
    saved = work / "saved"
    shutil.copyfile(path, saved)
    edit(path)
    after = replay()
    shutil.copyfile(saved, path)
    return after, replay()

def json_key(path):
    def edit(p):
        data = json.loads(p.read_text())
        data["_groot_parity_test"] = 1  # a key nobody reads: only the bytes change
        p.write_text(json.dumps(data, indent=2))
    return edit

snapshot = next((hf_home / "hub").glob("models--*tiny-random/snapshots/*"))
results = {"first": replay(), "again": replay()}
results["processor_config.json"] = changed(checkpoint / "processor_config.json", json_key(checkpoint / "processor_config.json"))
results["HF cache"] = changed(snapshot / "config.json", json_key(snapshot / "config.json"))
scaled = work / "scaled.safetensors"
shard = next(checkpoint.glob("*.safetensors"))
results["weights"] = changed(shard, lambda p: shutil.copyfile(scaled, p))
edited = work / "edited.npz"
with np.load(reference, allow_pickle=False) as npz:
    members = {k: npz[k] for k in npz.files}
members["meta::extra"] = np.array(json.dumps({**json.loads(str(members["meta::extra"])), "note": "edited"}))
atomic_save_npz(edited, members)
results["artifact bytes"] = (replay(edited), replay())
print(json.dumps(results))
""" % {"tag": TAG}


def test_each_part_of_the_replay_key_changed_alone_recomputes(tmp_path):
    """Weights, the checkpoint's other files, the HF cache and the artifact's bytes, each changed alone: the stored
    replay is recomputed (and, for the weights, gives another answer); each restored: reused again."""
    checkpoint, hf_home = tiny_copy(tmp_path)
    scaled = tmp_path / "work" / "scaled.safetensors"
    scaled.parent.mkdir()
    shutil.copyfile(next(checkpoint.glob("*.safetensors")), scaled)
    scale_weight(scaled.parent)  # the scaled shard, swapped in by the script
    results = run_in_env("groot-lerobot", REPLAY_EACH_PART, checkpoint, hf_home, tmp_path / "store", tmp_path / "work")
    assert results["first"][0] == "computed" and results["again"][0] == "reused", results
    for part in ("processor_config.json", "HF cache", "weights", "artifact bytes"):
        changed, restored = results[part]
        assert changed[0] == "computed", (part, results)
        assert restored[0] == "reused", (part, results)
    assert results["first"][1] < 1e-5 and results["weights"][0][1] > 1e-3, results  # new weights, new answer


CODE_PART = """
import json, sys
from pathlib import Path
hf_home, store_dir, checkpoint, artifact = map(Path, sys.argv[1:5])
from groot_lib.backends import process
process.configure_process(hf_home)
from groot_lib.core.artifact import load_artifact
from groot_lib.pipeline.replay import replay_all
import groot_lib
art = load_artifact(artifact)
from groot_lib.core import settings
out = replay_all(checkpoint, {"fp32-sdpa": {art.embodiment_tag: art}}, settings.for_notebook("consumer", {"stages": "off"}),
                 variants=["fp32-sdpa"], device="cpu", store_dir=store_dir)
print(json.dumps({"status": next(iter(out.replays.values())).status, "lib": groot_lib.__file__}))
"""


def test_an_edit_to_groot_lib_code_the_replay_goes_through_recomputes(tmp_path):
    """A copy of groot_lib whose comparison rule (compare/expected_gap.py, imported by the replay) carries one more
    line: the replay stored by the real library is not reused by the edited one."""
    import subprocess

    from conftest import env_python

    script = textwrap.dedent(CODE_PART)
    from groot_lib.core.artifact import artifact_path

    argv = [str(tiny_layout.TINY_HF_HOME), str(tmp_path / "store"), str(tiny_layout.TINY_CHECKPOINT),
            str(artifact_path(tiny_layout.RECORDED_ROOT, TAG))]

    def run(pythonpath: str | None) -> dict:
        import os

        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        if pythonpath:
            env["PYTHONPATH"] = pythonpath
        proc = subprocess.run([str(env_python("groot-lerobot")), "-c", script, *argv], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads(proc.stdout.strip().splitlines()[-1])

    assert run(None)["status"] == "computed"
    assert run(None)["status"] == "reused"
    copy = tmp_path / "lib"
    shutil.copytree(paths.REPO_ROOT / "groot_lib", copy / "groot_lib", ignore=shutil.ignore_patterns("__pycache__"))
    rule = copy / "groot_lib" / "compare" / "expected_gap.py"
    rule.write_text(rule.read_text() + "\n# an edit\n")
    edited = run(str(copy))
    assert edited["lib"].startswith(str(copy)) and edited["status"] == "computed", edited


def test_an_edit_to_lerobot_code_recomputes(tmp_path):
    """LeRobot's source is in the replay key: a copy of the installed package with one more comment line, first on
    PYTHONPATH (as make bisect's overlay puts a revision), recomputes; the installed package is reused again."""
    import os
    import subprocess

    from conftest import env_python
    from groot_lib.core.artifact import artifact_path

    script = textwrap.dedent(CODE_PART).replace('"lib": groot_lib.__file__',
                                                '"lib": groot_lib.__file__, "lerobot": __import__("lerobot").__file__')
    argv = [str(tiny_layout.TINY_HF_HOME), str(tmp_path / "store"), str(tiny_layout.TINY_CHECKPOINT),
            str(artifact_path(tiny_layout.RECORDED_ROOT, TAG))]

    def run(pythonpath: str | None) -> dict:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | ({"PYTHONPATH": pythonpath} if pythonpath else {})
        proc = subprocess.run([str(env_python("groot-lerobot")), "-c", script, *argv], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads(proc.stdout.strip().splitlines()[-1])

    installed = run(None)
    assert installed["status"] == "computed"
    copy = tmp_path / "overlay"
    shutil.copytree(Path(installed["lerobot"]).parent, copy / "lerobot", ignore=shutil.ignore_patterns("__pycache__"))
    init = copy / "lerobot" / "__init__.py"
    init.write_text(init.read_text() + "\n# an edit\n")
    edited = run(str(copy))
    assert edited["lerobot"].startswith(str(copy)) and edited["status"] == "computed", edited
    assert run(None)["status"] == "reused"


PRODUCER_KEY = """
import json, shutil, sys
from pathlib import Path
checkpoint, hf_home, scaled = map(Path, sys.argv[1:4])
import os
os.environ["HF_HOME"] = str(hf_home)
from groot_lib.pipeline.produce import key_base
from groot_lib.core.store import content_key
gr00t = {"commit": "c0ffee", "code": "1234"}
def key(**given):
    return content_key(key_base(checkpoint, given.get("gr00t", gr00t), seed=0, batch_size=2, device="cpu",
                                stage_mb=256))
def changed(path, edit):
    saved = path.read_bytes()
    edit(path)
    after = key()
    path.write_bytes(saved)
    return after
def json_key(p):
    p.write_text(json.dumps({**json.loads(p.read_text()), "_groot_parity_test": 1}))
snapshot = next((hf_home / "hub").glob("models--*tiny-random/snapshots/*"))
shard = next(checkpoint.glob("*.safetensors"))
first = key()
print(json.dumps({"first": first, "again": key(),
                  "weights": changed(shard, lambda p: p.write_bytes(scaled.read_bytes())),
                  "config.json": changed(checkpoint / "config.json", json_key),
                  "processor_config.json": changed(checkpoint / "processor_config.json", json_key),
                  "HF cache": changed(snapshot / "config.json", json_key),
                  "gr00t code": key(gr00t={"commit": "c0ffee", "code": "5678"}),
                  "restored": key()}))
"""


def test_each_part_of_the_producer_key_changed_alone_changes_it(tmp_path):
    """The original artifact's key in the groot-original env (gr00t itself need not be importable): weights,
    config, the checkpoint's other files, the HF cache and gr00t's code each change it; restored, it is the same."""
    checkpoint, hf_home = tiny_copy(tmp_path)
    scaled = tmp_path / "scaled"
    scaled.mkdir()
    shutil.copyfile(next(checkpoint.glob("*.safetensors")), scaled / "shard.safetensors")
    scale_weight(scaled)
    keys = run_in_env("groot-original", PRODUCER_KEY, checkpoint, hf_home, scaled / "shard.safetensors")
    assert keys["again"] == keys["first"] == keys["restored"]
    for part in ("weights", "config.json", "processor_config.json", "HF cache", "gr00t code"):
        assert keys[part] != keys["first"], part


def test_code_digest_follows_every_module_the_entry_imports(tmp_path, monkeypatch):
    """groot_lib code in a key is derived from the imports (lazy ones too), never a hand-kept list."""
    (tmp_path / "pipe").mkdir()
    (tmp_path / "pipe" / "entry.py").write_text("def run():\n    from groot_lib.helper import x\n    return x\n")
    (tmp_path / "helper.py").write_text("from groot_lib.deeper import y\nx = 1\n")
    (tmp_path / "deeper.py").write_text("y = 1\n")
    (tmp_path / "unrelated.py").write_text("z = 1\n")
    monkeypatch.setattr(store, "_LIB", tmp_path)
    assert store.module_closure("pipe.entry") == ["deeper", "helper", "pipe.entry"]
    before = store.code_digest("pipe.entry")
    (tmp_path / "unrelated.py").write_text("z = 2\n")
    assert store.code_digest("pipe.entry") == before
    (tmp_path / "deeper.py").write_text("y = 2\n")
    assert store.code_digest("pipe.entry") != before


def test_the_real_pipelines_keys_hold_the_code_they_run():
    """What decides a stored output is in its key: the LeRobot backend and the comparison rule STAGES=auto uses for
    the replay; the original backend, observations and the input sweep for the producer. Plots are not."""
    from groot_lib.pipeline import produce as producer
    from groot_lib.pipeline import replay as replayer

    replay, produce = store.module_closure(*replayer.KEY_CODE), store.module_closure(*producer.KEY_CODE)
    assert {"backends.lerobot", "backends.stage_hooks", "compare.expected_gap", "core.artifact", "core.upstream"} <= set(replay)
    assert {"backends.original", "core.observations", "core.sweep_cases", "backends.stage_hooks"} <= set(produce)
    assert "compare.plots" not in replay and "compare.plots" not in produce


def test_imported_outputs_against_a_checkpoint_with_other_weights_recompute_and_fail(tmp_path, artifacts_copy):
    """The issue's repro: ARTIFACTS= judged against a copy of the checkpoint whose action decoder is scaled x1.05
    (same sidecars, so the same fingerprint). With a store that already holds the clean replay it must recompute
    LeRobot and FAIL, never reuse and PASS."""
    store_dir = tmp_path / "store"
    code, index = run_report(out_root=tmp_path / "reports", artifacts_root=store_dir, artifacts=str(artifacts_copy),
                             tags=TAG, quiet=True)
    assert code == 0, (index.parent / "summary.txt").read_text()
    checkpoint, _ = tiny_copy(tmp_path)
    scale_weight(checkpoint)
    code, index = run_report(out_root=tmp_path / "reports", artifacts_root=store_dir, artifacts=str(artifacts_copy),
                             tags=TAG, checkpoint=str(checkpoint), hf_home=str(tiny_layout.TINY_HF_HOME), quiet=True)
    verdicts = json.loads((index.parent / "verdicts.json").read_text())
    assert {r["variant"]: r["status"] for r in verdicts["replays"]} == {"fp32-sdpa": "computed", "bf16-sdpa": "computed"}
    model = next(r for r in verdicts["rows"] if r["check"] == "model parity")
    assert model["verdict"] == "FAIL" and model["max|delta|"] > 1e-2, model
    assert code == 1
