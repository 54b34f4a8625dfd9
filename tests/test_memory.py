"""Memory-aware scheduling: both kernels at once when both models fit, one after the other when only one at a
time does (said, and really sequential), a clear refusal with the numbers when not even one fits."""

from __future__ import annotations

import html
import json
import re
import struct

import pytest

from groot_lib.core.errors import SettingError
from groot_lib.tiny import layout as tiny_layout
from groot_lib.workbench import memory

TAG = "libero_sim"


def test_weights_are_sized_from_the_safetensors_headers(tmp_path):
    header = {"a": {"dtype": "BF16", "shape": [1000, 1000], "data_offsets": [0, 2_000_000]},
              "b": {"dtype": "I64", "shape": [10], "data_offsets": [2_000_000, 2_000_080]}, "__metadata__": {}}
    blob = json.dumps(header).encode()
    (tmp_path / "model-00001-of-00002.safetensors").write_bytes(struct.pack("<Q", len(blob)) + blob)
    (tmp_path / "model-00002-of-00002.safetensors").write_bytes(struct.pack("<Q", len(blob)) + blob)
    assert memory.weights_fp32_bytes(tmp_path) == 2 * (1000 * 1000 * 4 + 10 * 8)  # bf16 loads as fp32; shards summed


def test_the_plan_follows_the_memory_there_is():
    ckpt = tiny_layout.TINY_CHECKPOINT
    assert memory.plan(ckpt, device="cpu", memory_gb=24).mode == "overlap"
    tight = memory.plan(ckpt, device="cpu", memory_gb=2.0)
    assert tight.mode == "sequential" and "both at once would need ~1.8 GB" in tight.reason
    assert memory.plan(ckpt, device="cpu", memory_gb=24, schedule="sequential").mode == "sequential"
    with pytest.raises(SettingError, match=r"not even one side|for even one side.*1\.0 GB RAM"):
        memory.plan(ckpt, device="cpu", memory_gb=1.0)
    with pytest.raises(SettingError, match="SCHEDULE=overlap"):
        memory.plan(ckpt, device="cpu", memory_gb=2.0, schedule="overlap")


def test_a_3b_sized_checkpoint_runs_its_sides_one_after_the_other_on_24_gb(tmp_path):
    """3.0e9 fp32 parameters (the N1.7-3B size, headers only): ~16 GB per side, so one at a time on 24 GB."""
    header = {f"w{i}": {"dtype": "F32", "shape": [30_000, 10_000], "data_offsets": [0, 0]} for i in range(10)}
    blob = json.dumps(header).encode()
    (tmp_path / "model.safetensors").write_bytes(struct.pack("<Q", len(blob)) + blob)
    schedule = memory.plan(tmp_path, device="cpu", memory_gb=24)
    assert schedule.mode == "sequential" and 15 < schedule.producer_gb < 17, schedule.as_dict()
    with pytest.raises(SettingError, match="for even one side"):
        memory.plan(tmp_path, device="cpu", memory_gb=16)


def test_a_sequential_run_starts_the_consumer_after_the_producer(tmp_path):
    from groot_lib.workbench.workflow import run_report

    code, index = run_report(out_root=tmp_path / "reports", artifacts_root=tmp_path / "store", tags=TAG,
                             variants="fp32-sdpa", memory_gb=2.0)
    lines = (index.parent / "progress.log").read_text().splitlines()  # the kernels' own progress notes, in order
    last_producer = max(i for i, line in enumerate(lines) if line.startswith("producer: "))
    first_consumer = min(i for i, line in enumerate(lines) if line.startswith("consumer: "))
    assert code == 0 and last_producer < first_consumer, lines
    assert "'mode': 'sequential'" in html.unescape(index.read_text())
    assert "both at once would need" in re.sub(r"<[^>]+>", "", index.read_text())  # the settings table says why


REAL = tiny_layout.REPO_ROOT / "build" / "real" / "gr00t-n1.7-3b-random"


@pytest.mark.skipif(not REAL.is_dir(), reason=f"needs the real-size random checkpoint {REAL} (`make "
                    "real-size-checkpoint`: 12.6 GB, 3.5 min, gr00t required); the same scheduling path runs on the "
                    "tiny default in test_a_sequential_run_starts_the_consumer_after_the_producer")
def test_real_size_runs_one_side_at_a_time_within_its_weights(tmp_path):
    from groot_lib.workbench.workflow import run_report

    code, index = run_report(out_root=tmp_path / "reports", artifacts_root=tmp_path / "store", checkpoint=str(REAL),
                             hf_home=str(REAL.parent / "hf_home"), tags=TAG, batch_size=1, variants="fp32-sdpa")
    timings = json.loads((index.parent / "timings.json").read_text())
    weights_mb = memory.weights_fp32_bytes(REAL) / 2**20
    assert code == 0 and "'mode': 'sequential'" in html.unescape(index.read_text())
    for kernel in ("producer kernel", "consumer kernel"):
        assert timings["peak_rss_mb"][kernel] <= 1.15 * weights_mb, (kernel, timings["peak_rss_mb"], weights_mb)
