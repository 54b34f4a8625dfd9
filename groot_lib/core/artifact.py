"""The producer -> consumer contract: one ``.npz`` per embodiment (and variant).

Plain numpy arrays only (no pickles), so a consumer can open an artifact without
trusting whoever wrote it, and every failure names the file and key involved.
"""
from __future__ import annotations

import json
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from groot_lib.core.atomic import atomic_save_npz
from groot_lib.core.errors import ArtifactError, CheckpointMismatchError, SchemaError

SCHEMA = "groot-parity-artifact/1"
from groot_lib.core.variants import DEFAULT_VARIANT  # noqa: E402  (re-exported)
REQUIRED_KEYS = ("meta::schema", "meta::embodiment_tag", "meta::seed", "meta::producer",
                 "meta::checkpoint", "out::action_pred")
_REGEN = "re-run the producer (make report) to regenerate it"
_SECTIONS = {"raw::": "raw", "in::": "inputs", "out::": "outputs", "stage::": "stages", "train::": "training"}
_ACTION_CHUNKS = ("out::action_pred", "out::decoded_action")  # float32 (B, horizon, action_dim) when present


@dataclass
class Artifact:
    """A loaded, validated artifact; array dicts are keyed without their prefix."""

    path: Path
    embodiment_tag: str
    seed: int
    producer: dict
    checkpoint: dict
    variant: str = DEFAULT_VARIANT
    extra: dict = field(default_factory=dict)
    raw: dict[str, np.ndarray] = field(default_factory=dict)
    inputs: dict[str, np.ndarray] = field(default_factory=dict)
    outputs: dict[str, np.ndarray] = field(default_factory=dict)
    # named model stages (backends/stage_hooks.py): "<stage>@<call>" -> float32 output, when captured
    stages: dict[str, np.ndarray] = field(default_factory=dict)
    # one training step (pipeline/training_step.py): "action.<group>" (the chunk beside ``raw``), "in.<key>" (its
    # collated inputs with the encoded target), "draw.<i>.<kind>", "loss", "action_loss", "grad.<parameter>"
    training: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def action_pred(self) -> np.ndarray:
        return self.outputs["action_pred"]

    @property
    def initial_noise(self) -> np.ndarray | None:
        return self.outputs.get("initial_noise")

    @property
    def decoded_action(self) -> np.ndarray | None:
        """The original policy's decoded action chunk (unnormalised, absolute), when the producer recorded it."""
        return self.outputs.get("decoded_action")

    @property
    def fingerprint(self) -> str:
        return self.checkpoint["fingerprint"]

    @property
    def batch_size(self) -> int:
        return int(self.action_pred.shape[0])


def artifact_path(directory: str | Path, tag: str, variant: str = DEFAULT_VARIANT) -> Path:
    """``<dir>/<tag>.npz`` for the default variant, ``<dir>/<tag>__<variant>.npz`` otherwise."""
    if not tag or "__" in tag or "/" in tag or "\\" in tag:
        raise ValueError(f"invalid embodiment tag {tag!r}: must be non-empty, without '/' or '__'")
    name = f"{tag}.npz" if variant == DEFAULT_VARIANT else f"{tag}__{variant}.npz"
    return Path(directory) / name


def find_artifacts(directory: str | Path, variant: str = DEFAULT_VARIANT) -> dict[str, Path]:
    """Map embodiment tag -> artifact path for one variant (default: fp32-sdpa), by file name."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ArtifactError(f"Artifact directory {directory} does not exist.\n"
                            f"  Hint: {_REGEN}.", path=directory)
    found = {}
    for p in sorted(directory.glob("*.npz")):
        tag, var = _name_parts(p)
        if var == variant and tag:
            if tag in found:
                raise ArtifactError(f"{directory} holds two artifacts for {tag!r}: {found[tag].name} and {p.name}; "
                                    "keep one", path=directory)
            found[tag] = p
    return found


def _name_parts(path: Path) -> tuple[str, str]:
    """(tag, variant) from a file name: ``<tag>.npz``, ``<tag>__<variant>.npz``, or upstream's
    ``original_n1_7_<tag>.npz`` (fp32 by construction)."""
    from groot_lib.core.upstream import tag_from_name

    upstream_tag = tag_from_name(path)
    if upstream_tag:
        return upstream_tag, DEFAULT_VARIANT
    tag, sep, variant = path.stem.partition("__")
    return tag, variant if sep else DEFAULT_VARIANT


def find_variants(directory: str | Path) -> list[str]:
    """Variants present in ``directory`` (fp32 reference first), by file name."""
    names = {_name_parts(p)[1] or DEFAULT_VARIANT for p in Path(directory).glob("*.npz")}
    return sorted(names, key=lambda n: (n != DEFAULT_VARIANT, n))


def _check_array(key: str, arr: np.ndarray, path: Path) -> None:
    if arr.dtype.hasobject:
        raise SchemaError(f"Cannot save {path}: key '{key}' has object dtype; artifacts hold "
                          "plain numeric/unicode arrays only (convert strings with np.array(..., dtype=str)).",
                          path=path, key=key)
    if key in _ACTION_CHUNKS and (arr.dtype != np.float32 or arr.ndim != 3):
        raise SchemaError(f"Cannot save {path}: '{key}' must be float32 (B, horizon, action_dim), "
                          f"got {arr.dtype} {arr.shape}.", path=path, key=key)
    if key.startswith("raw::video.") and (arr.dtype != np.uint8 or arr.ndim != 5):
        raise SchemaError(f"Cannot save {path}: '{key}' must be uint8 (B, T, H, W, 3), "
                          f"got {arr.dtype} {arr.shape}.", path=path, key=key)
    if key.startswith("raw::language.") and arr.dtype.kind != "U":
        raise SchemaError(f"Cannot save {path}: '{key}' must be a unicode string array, got {arr.dtype}.",
                          path=path, key=key)


def save_artifact(artifact: Artifact) -> Path:
    """Validate ``artifact`` and write it to ``artifact.path`` atomically (temp file + fsync + os.replace): readers
    never see half a file."""
    path, checkpoint, outputs = Path(artifact.path), artifact.checkpoint, artifact.outputs
    if "fingerprint" not in checkpoint:
        raise SchemaError(f"Cannot save {path}: 'meta::checkpoint' needs a 'fingerprint' entry "
                          f"(got keys {sorted(checkpoint)}).", path=path, key="meta::checkpoint")
    if "action_pred" not in outputs:
        raise SchemaError(f"Cannot save {path}: outputs must contain 'action_pred' (stored as 'out::action_pred').",
                          path=path, key="out::action_pred")
    arrays: dict[str, np.ndarray] = {
        "meta::schema": np.array(SCHEMA),
        "meta::embodiment_tag": np.array(str(artifact.embodiment_tag)),
        "meta::seed": np.array(int(artifact.seed), dtype=np.int64),
        "meta::producer": np.array(json.dumps(dict(artifact.producer), sort_keys=True, default=str)),
        "meta::checkpoint": np.array(json.dumps(dict(checkpoint), sort_keys=True, default=str)),
        "meta::variant": np.array(str(artifact.variant)),
        "meta::extra": np.array(json.dumps(dict(artifact.extra or {}), sort_keys=True, default=str)),
    }
    for prefix, section in (("raw::", artifact.raw), ("in::", artifact.inputs), ("out::", outputs),
                            ("stage::", artifact.stages or {}), ("train::", artifact.training or {})):
        for name, value in section.items():
            key = prefix + name
            if not name or "::" in name:
                raise SchemaError(f"Cannot save {path}: invalid key {key!r}.", path=path, key=key)
            arrays[key] = np.asarray(value)
            _check_array(key, arrays[key], path)
    noise = arrays.get("out::initial_noise")
    if noise is not None and (noise.dtype != np.float32 or noise.shape != arrays["out::action_pred"].shape):
        raise SchemaError(f"Cannot save {path}: 'out::initial_noise' must be float32 with the shape of "
                          f"action_pred {arrays['out::action_pred'].shape}, got {noise.dtype} {noise.shape}.",
                          path=path, key="out::initial_noise")

    atomic_save_npz(path, arrays)
    return path


_PREFETCHED: dict[tuple, dict[str, np.ndarray]] = {}  # file identity -> its members, read ahead (prefetch)


def _identity(path: Path) -> tuple:
    """The file as it is now: a file replaced or rewritten (a new inode, size or mtime) is another file."""
    stat = Path(path).stat()
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns


def prefetch(path: str | Path) -> None:
    """Read ``path``'s members ahead of its ``load_artifact`` (the consumer does it while the producer still
    works): the next load of this very file takes them from memory, once, and still validates them. Raises
    what reading raises; callers that only prefetch ignore it, and the real load reports it."""
    key = _identity(Path(path))
    if key not in _PREFETCHED:
        _PREFETCHED[key] = _read_members(Path(path))


def drop_prefetched() -> None:
    """Forget what was read ahead and not loaded (e.g. a tag this run does not judge)."""
    _PREFETCHED.clear()


def _read_all(path: Path) -> dict[str, np.ndarray]:
    """Read every member eagerly so corruption surfaces here, not deep inside a comparison."""
    if _PREFETCHED:
        try:
            cached = _PREFETCHED.pop(_identity(path), None)
        except OSError:
            cached = None
        if cached is not None:
            return cached
    return _read_members(path)


def _read_members(path: Path) -> dict[str, np.ndarray]:
    if not zipfile.is_zipfile(path):
        raise ArtifactError(f"Artifact {path} is truncated or corrupt: not a valid .npz (zip) archive.\n"
                            f"  Hint: {_REGEN}.", path=path)
    key = None
    try:
        with np.load(path, allow_pickle=False) as npz:
            out = {}
            for key in npz.files:
                out[key] = npz[key]
            return out
    except ValueError as exc:
        if "allow_pickle" in str(exc) or "bject arrays" in str(exc):
            raise ArtifactError(f"Artifact {path} contains pickled object arrays (key '{key}'); "
                                "refusing to unpickle untrusted data.\n"
                                f"  Hint: {_REGEN} with a current groot_lib.", path=path, key=key) from None
        err = exc
    except (zipfile.BadZipFile, EOFError, OSError, zlib.error) as exc:
        err = exc
    where = f" while reading key '{key}'" if key else ""
    raise ArtifactError(f"Artifact {path} is truncated or corrupt{where}: {type(err).__name__}: {err}.\n"
                        f"  Hint: {_REGEN}.", path=path, key=key) from None


def _json(data: dict, key: str, path: Path) -> dict:
    try:
        value = json.loads(str(data[key]))
    except json.JSONDecodeError as exc:
        raise SchemaError(f"Artifact {path}: '{key}' is not valid JSON ({exc}).\n  Hint: {_REGEN}.",
                          path=path, key=key) from None
    if not isinstance(value, dict):
        raise SchemaError(f"Artifact {path}: '{key}' must be a JSON object, got {type(value).__name__}.\n"
                          f"  Hint: {_REGEN}.", path=path, key=key)
    return value


def _check_fingerprint(path: Path, found: str, expected: str) -> None:
    if found != expected:
        raise CheckpointMismatchError(
            f"Artifact {path} was produced from checkpoint {found!r}, "
            f"but checkpoint {expected!r} is expected; the comparison would be meaningless.\n"
            f"  Hint: use the same checkpoint on both sides, or {_REGEN}.")


def load_artifact(path: str | Path, *, expected_fingerprint: str | None = None,
                  trust_legacy: bool = False, require_checkpoint: bool = True) -> Artifact:
    """Load and validate an artifact; optionally insist it came from a given checkpoint.

    LeRobot's own dumps (``core/upstream.py``: pickled object arrays) are refused unless ``trust_legacy``;
    they record no checkpoint fingerprint, which the artifact's ``extra["warning"]`` says. A file of this
    schema made elsewhere without ``meta::checkpoint`` loads only with ``require_checkpoint=False`` (pre-flight
    checks it against the checkpoint, core/fit.py) and is refused with the command that attaches one.
    """
    from groot_lib.core import upstream

    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"Artifact {path} not found.\n  Hint: {_REGEN}.", path=path)
    if upstream.is_upstream(path):
        if not trust_legacy:
            raise upstream.refuse(path)
        return upstream.load_trusted(path)
    data = _read_all(path)
    if "meta::schema" not in data:
        raise SchemaError(f"Artifact {path} has no 'meta::schema' key; it is not a {SCHEMA} file.\n"
                          f"  Hint: {_REGEN}.", path=path, key="meta::schema")
    found = str(data["meta::schema"])
    if found != SCHEMA:
        raise SchemaError(f"Artifact {path} has schema {found!r}, expected {SCHEMA!r}.\n"
                          f"  Hint: {_REGEN} with this version of groot_lib.", path=path, key="meta::schema")
    missing = [k for k in REQUIRED_KEYS if k not in data and (require_checkpoint or k != "meta::checkpoint")]
    if missing == ["meta::checkpoint"]:
        raise SchemaError(f"Artifact {path} records no checkpoint identity (meta::checkpoint): made elsewhere? "
                          f"Check it fits and attach it: make attach-checkpoint ARTIFACTS={path.parent} CKPT=<the "
                          "checkpoint it was made from>", path=path, key="meta::checkpoint")
    if missing:
        raise SchemaError(f"Artifact {path} is missing required keys: {', '.join(missing)}.\n"
                          f"  Hint: {_REGEN}.", path=path, key=missing[0])
    for key in _ACTION_CHUNKS:
        arr = data.get(key)
        if arr is not None and (arr.dtype != np.float32 or arr.ndim != 3):
            raise SchemaError(f"Artifact {path}: '{key}' must be float32 (B, horizon, action_dim), "
                              f"got {arr.dtype} {arr.shape}.\n  Hint: {_REGEN}.", path=path, key=key)
    checkpoint = _json(data, "meta::checkpoint", path) if "meta::checkpoint" in data else {}
    if "fingerprint" not in checkpoint and require_checkpoint:
        raise SchemaError(f"Artifact {path}: 'meta::checkpoint' has no 'fingerprint' entry.\n"
                          f"  Hint: {_REGEN}.", path=path, key="meta::checkpoint")
    if expected_fingerprint is not None:
        _check_fingerprint(path, checkpoint["fingerprint"], expected_fingerprint)
    sections: dict[str, dict[str, np.ndarray]] = {"raw": {}, "inputs": {}, "outputs": {}, "stages": {}, "training": {}}
    for key, arr in data.items():
        for prefix, section in _SECTIONS.items():
            if key.startswith(prefix):
                sections[section][key[len(prefix):]] = arr
    return Artifact(
        path=path,
        embodiment_tag=str(data["meta::embodiment_tag"]),
        seed=int(data["meta::seed"]),
        producer=_json(data, "meta::producer", path),
        checkpoint=checkpoint,
        variant=str(data["meta::variant"]) if "meta::variant" in data else DEFAULT_VARIANT,
        extra=_json(data, "meta::extra", path) if "meta::extra" in data else {},
        **sections,
    )
