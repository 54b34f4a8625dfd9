"""Legacy LeRobot parity dumps (``.npz`` with object arrays and a ``meta_keys`` list), read only on trust.

Those files keep dicts of tensors as pickled object arrays, and unpickling can run
arbitrary code, so they are never opened implicitly: ``load_artifact`` refuses them
with instructions, and ``trust_legacy=True`` (the consumer's ``trust_legacy``
parameter) converts one into an in-memory ``Artifact`` after the caller vouches for it.

Expected layout: ``meta_keys`` (names of 0-d metadata entries, ``embodiment_tag`` and
``seed`` required, ``checkpoint_fingerprint`` / ``variant`` optional), ``action_pred``
(float, (B, horizon, dim)), ``inputs`` (dict of collated model inputs), ``raw`` (dict of
raw observations), optional ``initial_noise``.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from groot_lib.core.errors import ArtifactError, SchemaError

MARKER = "meta_keys.npy"
REQUIRED_META = ("embodiment_tag", "seed")
UNVERIFIED = "unverified-legacy"


def is_legacy(path: Path) -> bool:
    """Recognised from the zip directory alone, without reading (let alone unpickling) any member."""
    try:
        with zipfile.ZipFile(path) as archive:
            return MARKER in archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return False


def object_members(path: Path) -> list[str]:
    """Members whose .npy header declares an object dtype (headers only; nothing is unpickled)."""
    found = []
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            with archive.open(name) as member:
                major, _ = np.lib.format.read_magic(member)
                read_header = (np.lib.format.read_array_header_1_0 if major == 1
                               else np.lib.format.read_array_header_2_0)
                dtype = read_header(member)[2]  # (shape, fortran_order, dtype)
                if dtype.hasobject:
                    found.append(name.removesuffix(".npy"))
    return found


def refuse(path: Path) -> ArtifactError:
    members = ", ".join(object_members(path)) or "none"
    return ArtifactError(
        f"{path} is a legacy LeRobot parity dump (has 'meta_keys'; pickled object arrays: {members}). "
        "Reading it means unpickling, which can execute arbitrary code, so it is not opened implicitly.\n"
        "  If you made this file yourself, pass trust_legacy=True (consumer notebook parameter "
        "`trust_legacy = True`, or load_artifact(path, trust_legacy=True)); otherwise re-run the producer "
        "(make report) to get a groot-parity-artifact/1 file.", path=path)


def _dict(data: dict, key: str, path: Path) -> dict[str, np.ndarray]:
    if key not in data:
        raise SchemaError(f"legacy dump {path} has no '{key}' entry (keys: {sorted(data)}).", path=path, key=key)
    value = data[key].item() if data[key].dtype.hasobject and data[key].ndim == 0 else data[key]
    if not isinstance(value, dict):
        raise SchemaError(f"legacy dump {path}: '{key}' must hold a dict of arrays, got {type(value).__name__}.",
                          path=path, key=key)
    out = {}
    for name, array in value.items():
        array = array.detach().cpu().numpy() if hasattr(array, "detach") else np.asarray(array)
        if array.dtype.hasobject:
            raise SchemaError(f"legacy dump {path}: '{key}.{name}' is still an object array after unpickling.",
                              path=path, key=f"{key}.{name}")
        out[str(name)] = array
    return out


def load_trusted(path: Path):
    """Convert a legacy dump into an ``Artifact`` (the caller has vouched for the file)."""
    from groot_lib.core.artifact import DEFAULT_VARIANT, Artifact

    try:
        with np.load(path, allow_pickle=True) as npz:
            data = {k: npz[k] for k in npz.files}
    except Exception as exc:  # noqa: BLE001 - anything here means the file is unreadable
        raise ArtifactError(f"legacy dump {path} could not be read: {type(exc).__name__}: {exc}", path=path) from None
    names = [str(n) for n in np.asarray(data["meta_keys"]).ravel()]
    missing = [k for k in (*REQUIRED_META, *names, "action_pred") if k not in data]
    if missing or any(k not in names for k in REQUIRED_META):
        raise SchemaError(f"legacy dump {path}: meta_keys {names} must include {list(REQUIRED_META)}, and every "
                          f"listed key must be present; missing: {missing or [k for k in REQUIRED_META if k not in names]}.",
                          path=path, key="meta_keys")
    meta = {k: data[k].item() if data[k].ndim == 0 else data[k].tolist() for k in names}
    pred = np.asarray(data["action_pred"])
    if pred.ndim != 3 or pred.dtype.kind != "f":
        raise SchemaError(f"legacy dump {path}: 'action_pred' must be float (B, horizon, dim), got "
                          f"{pred.dtype} {pred.shape}.", path=path, key="action_pred")
    outputs = {"action_pred": pred.astype(np.float32)}
    if "initial_noise" in data:
        outputs["initial_noise"] = np.asarray(data["initial_noise"], dtype=np.float32)
    inputs = _dict(data, "inputs", path)
    fingerprint = str(meta.get("checkpoint_fingerprint") or UNVERIFIED)
    return Artifact(
        path=path, embodiment_tag=str(meta["embodiment_tag"]), seed=int(meta["seed"]),
        producer={"implementation": "legacy LeRobot parity dump (trusted by the user)", "meta": meta},
        checkpoint={"fingerprint": fingerprint},
        variant=str(meta.get("variant") or DEFAULT_VARIANT),
        extra={"legacy": True, "trusted": True},
        raw=_dict(data, "raw", path), inputs=inputs,
        outputs=outputs,
    )
