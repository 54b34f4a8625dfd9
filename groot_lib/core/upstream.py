"""LeRobot's own parity files: what ``tests/policies/groot/utils/dump_original_n1_7.py`` writes, read and written.

Upstream's dump (one ``original_n1_7_<tag>.npz`` per embodiment) holds ``action_pred``, ``seed``, ``device``,
``embodiment_tag``, the collated model inputs as flat ``in::inputs.*`` arrays (floats cast to float32), and
``meta_keys`` / ``meta_dtypes``: the inputs' torch dtypes as *object* arrays. Reading those means unpickling,
which can run arbitrary code, so such a file is opened only on trust (``TRUST_LEGACY=1``); ``load_artifact``
refuses it otherwise, naming the flag. Nothing else in it is pickled: the tag is read without unpickling.

Upstream's dumps carry no raw observations (so no preprocessor or decoded-action check), no initial noise
and no checkpoint fingerprint: the report says each of these. ``export`` writes our artifacts in the same
format, so upstream's ``test_groot_vs_original.py`` runs on them unchanged.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from groot_lib.core.errors import ArtifactError, SchemaError

PREFIX, SUFFIX = "original_n1_7_", ".npz"  # upstream's file names: original_n1_7_<embodiment_tag>.npz
MARKERS = ("meta_keys.npy", "action_pred.npy")
REQUIRED = ("action_pred", "seed", "embodiment_tag", "meta_keys", "meta_dtypes")
UNVERIFIED = "unverified-upstream-dump"
UPSTREAM_SEED = 42  # test_groot_vs_original.py reseeds with SEED = 42 before sampling, whatever the file says
TRUST_HINT = ("If you (or LeRobot's dump_original_n1_7.py run by you) made it, pass TRUST_LEGACY=1 "
              "(make report ARTIFACTS=<dir> TRUST_LEGACY=1; --trust-legacy 1; the consumer notebook's "
              "`trust_legacy = True`); otherwise regenerate it with the workbench's producer (make report).")


def is_upstream(path: Path) -> bool:
    """Recognised from the zip directory alone, without reading (let alone unpickling) any member."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False
    return all(m in names for m in MARKERS) and "meta::schema.npy" not in names


def tag_of(path: Path) -> str:
    """The dump's ``embodiment_tag`` member, read without unpickling (a unicode scalar)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            return str(npz["embodiment_tag"])
    except (KeyError, ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise SchemaError(f"upstream dump {path} has no readable 'embodiment_tag' ({type(exc).__name__}: {exc}); "
                          "dump_original_n1_7.py writes it as a string.", path=path, key="embodiment_tag") from None


def object_members(path: Path) -> list[str]:
    """Members whose .npy header declares an object dtype (headers only; nothing is unpickled)."""
    found = []
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            with archive.open(name) as member:
                major, _ = np.lib.format.read_magic(member)
                read_header = (np.lib.format.read_array_header_1_0 if major == 1
                               else np.lib.format.read_array_header_2_0)
                if read_header(member)[2].hasobject:  # (shape, fortran_order, dtype)
                    found.append(name.removesuffix(".npy"))
    return found


def refuse(path: Path) -> ArtifactError:
    members = ", ".join(object_members(path)) or "none"
    return ArtifactError(
        f"{path} is an upstream LeRobot parity dump (dump_original_n1_7.py: 'meta_keys', pickled object arrays: "
        f"{members}). Reading it means unpickling, which can execute arbitrary code, so it is not opened "
        f"implicitly.\n  {TRUST_HINT}", path=path)


def _dtype_of(declared: str, array: np.ndarray, key: str, path: Path) -> np.ndarray:
    """Upstream stores floats as float32 and records the torch dtype; integers come back as int64."""
    if declared and any(word in declared for word in ("int", "long", "bool")):
        return array.astype(np.int64) if "bool" not in declared else array.astype(bool)
    if array.dtype.kind == "f":
        return array.astype(np.float32)
    if array.dtype.kind in "iub":
        return array
    raise SchemaError(f"upstream dump {path}: {key!r} is {array.dtype} (declared {declared or 'nothing'}); model "
                      "inputs must be numeric.", path=path, key=key)


def load_trusted(path: Path):
    """An upstream dump as an in-memory ``Artifact`` (the caller has vouched for the file)."""
    from groot_lib.core.artifact import DEFAULT_VARIANT, Artifact

    try:
        with np.load(path, allow_pickle=True) as npz:
            data = {k: npz[k] for k in npz.files}
    except Exception as exc:  # noqa: BLE001 - anything here means the file is unreadable
        raise ArtifactError(f"upstream dump {path} could not be read: {type(exc).__name__}: {exc}",
                            path=path) from None
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise SchemaError(f"upstream dump {path} lacks {missing} (dump_original_n1_7.py writes "
                          f"{list(REQUIRED)} and the in:: inputs); found {sorted(data)}.", path=path, key=missing[0])
    declared = dict(zip((str(k) for k in data["meta_keys"]), (str(d) for d in data["meta_dtypes"])))
    inputs = {key[len("in::"):]: _dtype_of(declared.get(key, ""), np.asarray(value), key, path)
              for key, value in data.items() if key.startswith("in::")}
    if not inputs:
        raise SchemaError(f"upstream dump {path} has no in:: model inputs to replay.", path=path, key="in::")
    pred = np.asarray(data["action_pred"])
    if pred.ndim != 3 or pred.dtype.kind != "f":
        raise SchemaError(f"upstream dump {path}: 'action_pred' must be float (B, horizon, dim), got "
                          f"{pred.dtype} {pred.shape}.", path=path, key="action_pred")
    device = str(data["device"]) if "device" in data else "unknown"
    return Artifact(
        path=path, embodiment_tag=str(data["embodiment_tag"]), seed=int(data["seed"]),
        producer={"implementation": "upstream dump (LeRobot's dump_original_n1_7.py), read on trust",
                  "device": device, "dtype": "float32", "input_dtypes": declared},
        checkpoint={"fingerprint": UNVERIFIED}, variant=DEFAULT_VARIANT,
        extra={"legacy": True, "upstream": True, "trusted": True,
               "warning": f"{path.name} records no checkpoint fingerprint: that it comes from the checkpoint under "
                          "test is taken on trust (checked: its tag, embodiment id and action shape)"},
        raw={}, inputs=inputs, outputs={"action_pred": pred.astype(np.float32)},
    )


def upstream_name(tag: str) -> str:
    return f"{PREFIX}{tag}{SUFFIX}"


def tag_from_name(path: Path) -> str | None:
    """``libero_sim`` for ``original_n1_7_libero_sim.npz``; None for other names."""
    name = Path(path).name
    return name[len(PREFIX):-len(SUFFIX)] if name.startswith(PREFIX) and name.endswith(SUFFIX) else None


def export(artifact, directory: Path) -> Path:
    """Write ``artifact`` as ``<directory>/original_n1_7_<tag>.npz`` in upstream's format (atomically).

    Floats go out as float32 with their dtype recorded as upstream does (``torch.float32``), integers as int64."""
    from groot_lib.core.atomic import _replace_from_temp

    flat, dtypes = {}, []
    for name, value in artifact.inputs.items():
        array = np.asarray(value)
        key = f"in::{name}"
        flat[key] = array.astype(np.float32) if array.dtype.kind == "f" else array.astype(np.int64)
        dtypes.append((key, "torch.float32" if array.dtype.kind == "f" else "torch.int64"))

    def fill(tmp: Path) -> None:  # upstream's format: np.savez, with its two pickled dtype lists
        with open(tmp, "wb") as out:
            np.savez(out, action_pred=np.asarray(artifact.action_pred, dtype=np.float32),
                     seed=np.array(int(artifact.seed)), device=np.array(str(artifact.producer.get("device", "cpu"))),
                     embodiment_tag=np.array(artifact.embodiment_tag),
                     meta_keys=np.array([k for k, _ in dtypes], dtype=object),
                     meta_dtypes=np.array([d for _, d in dtypes], dtype=object), **flat)

    return _replace_from_temp(Path(directory) / upstream_name(artifact.embodiment_tag), fill, fsync=True)


def check_against(artifact, layout) -> list[str]:
    """What can be checked without a fingerprint: the file name's tag, the embodiment id (raises on a mismatch);
    returns notes, e.g. a dump that fed fewer video frames than the checkpoint's modality config asks for."""
    from groot_lib.core.errors import CheckpointMismatchError

    path = artifact.path
    named = tag_from_name(path)
    if named and named != artifact.embodiment_tag:
        raise SchemaError(f"{path}: the file name says {named!r}, its embodiment_tag says {artifact.embodiment_tag!r}.",
                          path=path, key="embodiment_tag")
    ids = artifact.inputs.get("inputs.embodiment_id")
    if ids is not None and layout.embodiment_id is not None and set(np.unique(ids).tolist()) != {layout.embodiment_id}:
        raise CheckpointMismatchError(
            f"{path} feeds embodiment id(s) {sorted(set(np.unique(ids).tolist()))} for {layout.tag!r}; the checkpoint "
            f"under test maps it to {layout.embodiment_id} (embodiment_id.json): it was dumped from another checkpoint.")
    notes = []
    grid = artifact.inputs.get("inputs.image_grid_thw")
    batch = artifact.action_pred.shape[0]
    if grid is not None and batch and grid.shape[0] % batch == 0:
        per_sample, expected = grid.shape[0] // batch, len(layout.cameras) * layout.video_horizon
        if per_sample != expected:
            notes.append(f"{path.name} feeds {per_sample} image(s) per sample where the checkpoint's modality config "
                         f"asks for {expected} ({len(layout.cameras)} camera(s) x {layout.video_horizon} frame(s)): "
                         "upstream's dump builds one frame per camera; the workbench's producer builds what the "
                         "config asks for, so the two test different inputs")
    return notes
