"""Legacy LeRobot dumps (pickled object arrays + meta_keys): refused by default, readable on explicit trust."""

import numpy as np
import pytest

from groot_lib.core.artifact import load_artifact
from groot_lib.core.errors import ArtifactError, CheckpointMismatchError, SchemaError
from groot_lib.core.legacy import is_legacy, object_members


def write_legacy(path, *, meta=None, **overrides):
    meta = {"embodiment_tag": "libero_sim", "seed": 3, **(meta or {})}
    inputs = np.empty((), dtype=object)
    inputs[()] = {"input_ids": np.arange(6).reshape(1, 6), "state": np.ones((1, 1, 8), np.float32)}
    raw = np.empty((), dtype=object)
    raw[()] = {"state.joints": np.zeros((1, 1, 8), np.float32)}
    arrays = {"meta_keys": np.array(list(meta)), "action_pred": np.full((1, 4, 3), 0.5), "inputs": inputs,
              "raw": raw, **{k: np.array(v, dtype=object) for k, v in meta.items()}, **overrides}
    np.savez(path, **arrays)
    return path


def test_refused_without_trust_naming_flag_and_members(tmp_path):
    path = write_legacy(tmp_path / "old.npz")
    assert is_legacy(path) and set(object_members(path)) >= {"inputs", "raw", "seed"}
    with pytest.raises(ArtifactError) as err:
        load_artifact(path)
    message = str(err.value)
    assert str(path) in message and "trust_legacy=True" in message and "arbitrary code" in message
    assert "inputs" in message and "raw" in message


def test_trusted_dump_becomes_an_artifact_with_a_warning(tmp_path):
    art = load_artifact(write_legacy(tmp_path / "old.npz"), trust_legacy=True, expected_fingerprint="abc")
    assert art.embodiment_tag == "libero_sim" and art.seed == 3 and art.variant == "fp32-sdpa"
    assert art.action_pred.dtype == np.float32 and art.action_pred.shape == (1, 4, 3)
    assert art.inputs["input_ids"].tolist() == [[0, 1, 2, 3, 4, 5]] and "state.joints" in art.raw
    assert art.extra["legacy"] and "taken on trust" in art.extra["warning"]


def test_trusted_dump_still_checks_a_recorded_fingerprint(tmp_path):
    path = write_legacy(tmp_path / "old.npz", meta={"checkpoint_fingerprint": "f00"})
    assert load_artifact(path, trust_legacy=True, expected_fingerprint="f00").fingerprint == "f00"
    with pytest.raises(CheckpointMismatchError, match="'f00'"):
        load_artifact(path, trust_legacy=True, expected_fingerprint="bar")


def test_trusted_dump_missing_meta_key_is_named(tmp_path):
    path = tmp_path / "old.npz"
    write_legacy(path)
    with np.load(path, allow_pickle=True) as npz:
        arrays = dict(npz)
    arrays["meta_keys"] = np.array(["embodiment_tag"])
    np.savez(path, **arrays)
    with pytest.raises(SchemaError, match=r"must include \['embodiment_tag', 'seed'\]"):
        load_artifact(path, trust_legacy=True)
