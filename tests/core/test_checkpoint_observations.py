import json
import shutil

import numpy as np
import pytest

from groot_lib.core import checkpoint as ck
from groot_lib.tiny import layout as L
from groot_lib.core.errors import CheckpointMismatchError, ParityError
from groot_lib.core.observations import build_observations


def test_tiny_default_has_four_distinct_embodiments():
    tags = ck.embodiment_tags(L.TINY_CHECKPOINT)
    assert tags == sorted(L.EMBODIMENTS)
    layouts = [ck.embodiment_layout(L.TINY_CHECKPOINT, t) for t in tags]
    assert len({(len(x.cameras), x.video_horizon, tuple(x.state_dims)) for x in layouts}) == 4
    droid = ck.embodiment_layout(L.TINY_CHECKPOINT, "oxe_droid_relative_eef_relative_joint")
    assert droid.video_horizon == 2 and droid.state_dim == 17 and droid.embodiment_id == 24


def test_tiny_default_keeps_lerobot_structural_values():
    config = json.loads((L.TINY_CHECKPOINT / "config.json").read_text())
    assert (config["max_state_dim"], config["max_action_dim"], config["action_horizon"]) == (132, 132, 40)
    assert (config["max_num_embodiments"], config["num_timestep_buckets"]) == (32, 1000)
    assert not (L.TINY_CHECKPOINT / "model.safetensors").exists()  # LeRobot would take it for its own format
    assert (L.TINY_CHECKPOINT / "model-00001-of-00001.safetensors").is_file()


def test_fingerprint_changes_with_statistics(tmp_path):
    copy = tmp_path / "ckpt"
    shutil.copytree(L.TINY_CHECKPOINT, copy)
    before = ck.fingerprint(copy)["fingerprint"]
    assert before == ck.fingerprint(L.TINY_CHECKPOINT)["fingerprint"]
    stats = json.loads((copy / "statistics.json").read_text())
    stats["libero_sim"]["state"]["x"]["q01"][0] += 0.5
    (copy / "statistics.json").write_text(json.dumps(stats))
    after = ck.fingerprint(copy)["fingerprint"]
    assert after != before
    with pytest.raises(CheckpointMismatchError, match=before):
        ck.check_fingerprint(before, after, what="artifact x.npz")


def test_unknown_tag_lists_what_exists():
    with pytest.raises(ParityError, match="libero_sim"):
        ck.embodiment_layout(L.TINY_CHECKPOINT, "no_such_robot")


def test_observations_follow_layout_and_are_deterministic():
    layout = ck.embodiment_layout(L.TINY_CHECKPOINT, "oxe_droid_relative_eef_relative_joint")
    stats = json.loads((L.TINY_CHECKPOINT / "statistics.json").read_text())[layout.tag]
    a = build_observations(layout, seed=3, batch_size=2, statistics=stats)
    b = build_observations(layout, seed=3, batch_size=2, statistics=stats)
    c = build_observations(layout, seed=4, batch_size=2, statistics=stats)
    assert sorted(a) == sorted(b)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["video.wrist_image_left"], c["video.wrist_image_left"])
    assert a["video.wrist_image_left"].shape == (2, 2, 72, 96, 3) and a["video.wrist_image_left"].dtype == np.uint8
    assert a["state.eef_9d"].shape == (2, 1, 9) and a["state.eef_9d"].dtype == np.float32
    assert a["language.annotation.language.language_instruction"].shape == (2,)
    # some state values fall outside q01..q99 so the normalisation clip is exercised
    q01, q99 = np.array(stats["state"]["eef_9d"]["q01"]), np.array(stats["state"]["eef_9d"]["q99"])
    values = np.concatenate([build_observations(layout, seed=s, batch_size=4, statistics=stats)["state.eef_9d"]
                             for s in range(5)])
    assert ((values < q01) | (values > q99)).any()
