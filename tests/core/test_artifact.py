"""Artifact round trip and every way a file on disk can be broken."""
from __future__ import annotations

import json

import numpy as np
import pytest

from groot_lib.core import artifact as art
from groot_lib.core.artifact import SCHEMA, Artifact, artifact_path, find_artifacts, load_artifact, save_artifact
from groot_lib.core.errors import ArtifactError, CheckpointMismatchError, ParityError, SchemaError


def _payload(**overrides):
    rng = np.random.default_rng(0)
    kw = dict(
        embodiment_tag="gr1",
        seed=7,
        producer={"implementation": "gr00t", "python": "3.10", "device": "cpu", "dtype": "float32"},
        checkpoint={"fingerprint": "abc123", "repo": "nvidia/GR00T-N1.7"},
        raw={"video.ego": rng.integers(0, 255, (2, 1, 4, 4, 3), dtype=np.uint8),
             "state.arm": rng.normal(size=(2, 1, 7)).astype(np.float32),
             "language.task": np.array(["pick the apple", "place it"])},
        inputs={"input_ids": np.arange(12, dtype=np.int64).reshape(2, 6),
                "pixel_values": rng.normal(size=(2, 3, 4, 4)).astype(np.float32)},
        outputs={"action_pred": rng.normal(size=(2, 40, 132)).astype(np.float32),
                 "initial_noise": rng.normal(size=(2, 40, 132)).astype(np.float32)},
    )
    kw.update(overrides)
    return kw


def _write_raw(path, arrays):
    np.savez(path, **arrays)
    return path


def _valid_meta():
    return {"meta::schema": np.array(SCHEMA), "meta::embodiment_tag": np.array("gr1"),
            "meta::seed": np.array(1, dtype=np.int64), "meta::producer": np.array("{}"),
            "meta::checkpoint": np.array(json.dumps({"fingerprint": "f"})),
            "out::action_pred": np.zeros((1, 2, 3), np.float32)}


def test_round_trip_preserves_dtypes_and_strings(tmp_path):
    kw = _payload(extra={"note": "hi"}, variant="bf16-sdpa")
    path = save_artifact(Artifact(tmp_path / "sub" / "gr1.npz", **kw))
    a = load_artifact(path, expected_fingerprint="abc123")
    assert a.path == path and a.embodiment_tag == "gr1" and a.seed == 7 and isinstance(a.seed, int)
    assert a.producer == kw["producer"] and a.checkpoint == kw["checkpoint"]
    assert a.variant == "bf16-sdpa" and a.extra == {"note": "hi"}
    assert a.fingerprint == "abc123" and a.batch_size == 2
    assert a.inputs["input_ids"].dtype == np.int64
    np.testing.assert_array_equal(a.inputs["input_ids"], kw["inputs"]["input_ids"])
    assert a.raw["video.ego"].dtype == np.uint8 and a.raw["state.arm"].dtype == np.float32
    assert a.action_pred.dtype == np.float32
    np.testing.assert_array_equal(a.action_pred, kw["outputs"]["action_pred"])
    np.testing.assert_array_equal(a.initial_noise, kw["outputs"]["initial_noise"])
    lang = a.raw["language.task"]
    assert lang.dtype.kind == "U" and isinstance(lang[0], str) and list(lang) == ["pick the apple", "place it"]
    assert isinstance(a.embodiment_tag, str) and type(a.embodiment_tag) is str
    with np.load(path, allow_pickle=False) as npz:  # plain npz, no pickles anywhere
        assert all(not npz[k].dtype.hasobject for k in npz.files)


def test_defaults_and_optional_noise(tmp_path):
    kw = _payload(outputs={"action_pred": np.zeros((1, 4, 5), np.float32)})
    a = load_artifact(save_artifact(Artifact(tmp_path / "x.npz", **kw)))
    assert a.variant == "fp32-sdpa" and a.extra == {} and a.initial_noise is None


@pytest.mark.parametrize("bad, key", [
    ({"outputs": {"action_pred": np.zeros((1, 4, 5), np.float64)}}, "out::action_pred"),
    ({"outputs": {"action_pred": np.zeros((4, 5), np.float32)}}, "out::action_pred"),
    ({"outputs": {}}, "out::action_pred"),
    ({"raw": {"video.ego": np.zeros((1, 4, 4, 3), np.uint8)}}, "raw::video.ego"),
    ({"inputs": {"weird": np.array([{"a": 1}], dtype=object)}}, "in::weird"),
    ({"checkpoint": {"repo": "x"}}, "meta::checkpoint"),
])
def test_save_validation(tmp_path, bad, key):
    with pytest.raises(SchemaError) as exc:
        save_artifact(Artifact(tmp_path / "gr1.npz", **_payload(**bad)))
    assert exc.value.key == key and key in str(exc.value)
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_failure_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    path = save_artifact(Artifact(tmp_path / "gr1.npz", **_payload()))
    before = path.read_bytes()

    written = []

    def exploding_write(member, array, **kwargs):  # the second member dies half-written, as a full disk would
        member.write(b"\x93NUMPY partial garbage")
        written.append(array)
        if len(written) > 1:
            raise OSError("disk full")

    monkeypatch.setattr(art.np.lib.format, "write_array", exploding_write)
    with pytest.raises(OSError, match="disk full"):
        save_artifact(Artifact(path, **_payload(seed=99)))
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gr1.npz"]
    with pytest.raises(OSError):
        save_artifact(Artifact(tmp_path / "new.npz", **_payload()))
    assert not (tmp_path / "new.npz").exists() and not list(tmp_path.glob("*.tmp"))


def test_missing_file(tmp_path):
    with pytest.raises(ArtifactError, match="not found") as exc:
        load_artifact(tmp_path / "nope.npz")
    assert str(tmp_path / "nope.npz") in str(exc.value) and "make report" in str(exc.value)


def test_truncated_file(tmp_path):
    path = save_artifact(Artifact(tmp_path / "gr1.npz", **_payload()))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError) as exc:
        load_artifact(path)
    msg = str(exc.value)
    assert str(path) in msg and ("truncated" in msg or "corrupt" in msg)
    assert exc.value.path == path


def test_corrupt_member_is_detected_eagerly(tmp_path):
    path = save_artifact(Artifact(tmp_path / "gr1.npz", **_payload()))
    data = bytearray(path.read_bytes())
    mid = len(data) // 3  # inside compressed member data, central directory intact
    data[mid:mid + 64] = bytes(64)
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="truncated or corrupt") as exc:
        load_artifact(path)
    assert str(path) in str(exc.value)


def test_not_an_npz(tmp_path):
    path = tmp_path / "gr1.npz"
    path.write_text("hello")
    with pytest.raises(ArtifactError, match="corrupt"):
        load_artifact(path)


def test_wrong_schema(tmp_path):
    arrays = _valid_meta() | {"meta::schema": np.array("groot-parity-artifact/0")}
    path = _write_raw(tmp_path / "gr1.npz", arrays)
    with pytest.raises(SchemaError) as exc:
        load_artifact(path)
    msg = str(exc.value)
    assert "groot-parity-artifact/0" in msg and SCHEMA in msg and str(path) in msg
    assert exc.value.key == "meta::schema"


def test_missing_schema(tmp_path):
    arrays = _valid_meta()
    del arrays["meta::schema"]
    with pytest.raises(SchemaError, match="meta::schema"):
        load_artifact(_write_raw(tmp_path / "gr1.npz", arrays))


def test_missing_keys_are_all_listed(tmp_path):
    arrays = _valid_meta()
    del arrays["meta::seed"], arrays["out::action_pred"]
    with pytest.raises(SchemaError) as exc:
        load_artifact(_write_raw(tmp_path / "gr1.npz", arrays))
    assert "meta::seed" in str(exc.value) and "out::action_pred" in str(exc.value)


def test_action_pred_wrong_dtype_on_load(tmp_path):
    arrays = _valid_meta() | {"out::action_pred": np.zeros((1, 2, 3), np.float64)}
    with pytest.raises(SchemaError, match="float32"):
        load_artifact(_write_raw(tmp_path / "gr1.npz", arrays))


def test_object_arrays_refused(tmp_path):
    arrays = _valid_meta() | {"in::evil": np.array([{"a": 1}, None], dtype=object)}
    path = _write_raw(tmp_path / "gr1.npz", arrays)
    with pytest.raises(ArtifactError, match="refusing to unpickle untrusted data") as exc:
        load_artifact(path)
    assert "in::evil" in str(exc.value) and str(path) in str(exc.value)


def test_fingerprint_mismatch(tmp_path):
    path = save_artifact(Artifact(tmp_path / "gr1.npz", **_payload()))
    with pytest.raises(CheckpointMismatchError) as exc:
        load_artifact(path, expected_fingerprint="zzz999")
    msg = str(exc.value)
    assert "abc123" in msg and "zzz999" in msg and str(path) in msg
    assert isinstance(exc.value, ParityError)


def test_paths_and_discovery(tmp_path):
    assert artifact_path(tmp_path, "gr1") == tmp_path / "gr1.npz"
    assert artifact_path(tmp_path, "gr1", "bf16-flash") == tmp_path / "gr1__bf16-flash.npz"
    for tag, variant in [("gr1", "fp32-sdpa"), ("gr1", "bf16-sdpa"), ("so100", "fp32-sdpa")]:
        save_artifact(Artifact(artifact_path(tmp_path, tag, variant), **_payload(embodiment_tag=tag, variant=variant)))
    assert find_artifacts(tmp_path) == {"gr1": tmp_path / "gr1.npz", "so100": tmp_path / "so100.npz"}
    assert find_artifacts(tmp_path, "bf16-sdpa") == {"gr1": tmp_path / "gr1__bf16-sdpa.npz"}
    with pytest.raises(ArtifactError, match="does not exist"):
        find_artifacts(tmp_path / "missing")
    with pytest.raises(ValueError):
        artifact_path(tmp_path, "a__b")


def test_a_prefetched_artifact_loads_once_from_memory_and_never_stale(tmp_path):
    """The consumer reads published artifacts while it waits for the producer: the next load of that very file
    takes the arrays from memory (still validated, fingerprint included); a file rewritten since is read again."""
    path = save_artifact(Artifact(tmp_path / "gr1.npz", **_payload()))
    art.prefetch(path)
    path.with_name("moved.npz").write_bytes(b"")  # unrelated files do not matter
    first = load_artifact(path, expected_fingerprint="abc123")
    assert not art._PREFETCHED  # used once, then gone
    np.testing.assert_array_equal(first.action_pred, _payload()["outputs"]["action_pred"])

    art.prefetch(path)
    with pytest.raises(CheckpointMismatchError):  # served from memory, still checked
        load_artifact(path, expected_fingerprint="other")
    art.prefetch(path)
    new = _payload(seed=8)
    save_artifact(Artifact(path, **new))  # replaced (atomic rename: a new inode) after it was read ahead
    assert load_artifact(path).seed == 8
    art.drop_prefetched()
    assert not art._PREFETCHED
