"""Read a raw GR00T N1.7 checkpoint's metadata and fingerprint it.

Both kernels read the same sidecar JSON files, so the embodiment layouts the
producer builds observations from and the consumer validates against come from
one place. numpy/stdlib only.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from groot_lib.core.errors import CheckpointMismatchError, ParityError

SIDECARS = ("config.json", "model.safetensors.index.json", "statistics.json")


@dataclass(frozen=True)
class EmbodimentLayout:
    """What one embodiment tag consumes and emits, as the checkpoint declares it."""

    tag: str
    cameras: list[str]
    video_horizon: int
    state_dims: dict[str, int]  # ordered as the modality config lists them
    language_key: str
    action_dims: dict[str, int]
    action_horizon: int
    embodiment_id: int | None

    @property
    def state_dim(self) -> int:
        return sum(self.state_dims.values())

    @property
    def action_dim(self) -> int:
        return sum(self.action_dims.values())

    def valid_mask(self, shape: tuple[int, ...]) -> np.ndarray:
        """True on the (..., horizon, dim) cells this embodiment uses; False on the padding the policy discards."""
        mask = np.zeros(shape, dtype=bool)
        mask[..., : self.action_horizon, : self.action_dim] = True
        return mask

    def action_labels(self, width: int | None = None) -> list[str]:
        """'group[index]' for each valid action dim, in the modality config's order; 'pad[i]' up to ``width``."""
        names = [f"{group}[{i}]" for group, size in self.action_dims.items() for i in range(size)]
        return names + [f"pad[{i}]" for i in range(len(names), width or len(names))]


def read_json(path: Path) -> dict:
    if not path.is_file():
        raise ParityError(f"checkpoint file missing: {path} (a raw GR00T N1.7 checkpoint needs it)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ParityError(f"checkpoint file {path} is not valid JSON: {exc}") from None


def resolve_checkpoint(checkpoint: str | os.PathLike) -> Path:
    """A local directory, or a hub id resolved from the HF cache (offline when HF_HUB_OFFLINE)."""
    path = Path(checkpoint).expanduser()
    if path.is_dir():
        return path.resolve()
    if str(checkpoint).count("/") == 1 and not path.exists():
        try:
            from huggingface_hub import snapshot_download
        except ImportError:
            raise ParityError(f"checkpoint {checkpoint!r} is not a directory and huggingface_hub is not installed") from None
        offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
        try:
            return Path(snapshot_download(str(checkpoint), local_files_only=offline))
        except Exception as exc:  # noqa: BLE001 - hub raises many types; the message is what matters
            raise ParityError(
                f"could not resolve checkpoint {checkpoint!r} from the Hugging Face cache "
                f"(HF_HOME={os.environ.get('HF_HOME', '~/.cache/huggingface')}, offline={offline}): {exc}"
            ) from None
    raise ParityError(f"checkpoint {checkpoint!r} is neither a directory nor a hub id (owner/name)")


def fingerprint(checkpoint: str | os.PathLike) -> dict:
    """Hash of config + weights index + statistics: cheap, and changes when the model does."""
    root = Path(checkpoint)
    digest = hashlib.sha256()
    for name in SIDECARS:
        path = root / name
        digest.update(name.encode() + b"\0")
        digest.update(path.read_bytes() if path.is_file() else b"<missing>")
    return {"fingerprint": digest.hexdigest()[:16], "files": list(SIDECARS), "name": root.name}


def check_fingerprint(found: str, expected: str, *, what: str) -> None:
    if found != expected:
        raise CheckpointMismatchError(
            f"{what} was produced from checkpoint fingerprint {found}, but the checkpoint under "
            f"test has fingerprint {expected}. Re-run the producer on this checkpoint."
        )


def embodiment_tags(checkpoint: str | os.PathLike) -> list[str]:
    """Tags that have both statistics and a modality config (what both sides can run)."""
    root = Path(checkpoint)
    stats = read_json(root / "statistics.json")
    configs = read_json(root / "processor_config.json").get("processor_kwargs", {}).get("modality_configs", {})
    return sorted(set(stats) & set(configs))


def embodiment_layout(checkpoint: str | os.PathLike, tag: str) -> EmbodimentLayout:
    root = Path(checkpoint)
    stats = read_json(root / "statistics.json")
    configs = read_json(root / "processor_config.json").get("processor_kwargs", {}).get("modality_configs", {})
    if tag not in configs or tag not in stats:
        raise ParityError(
            f"embodiment tag {tag!r} is not in {root}: statistics.json has {sorted(stats)}, "
            f"processor_config.json has {sorted(configs)}"
        )
    cfg, st = configs[tag], stats[tag]

    def dims(modality: str) -> dict[str, int]:
        out = {}
        for key in cfg[modality]["modality_keys"]:
            entry = st.get(modality, {}).get(key)
            if not entry or "min" not in entry:
                raise ParityError(f"{root / 'statistics.json'}: missing {tag}.{modality}.{key}.min (needed for its dimension)")
            out[key] = len(entry["min"])
        return out

    ids_path = root / "embodiment_id.json"
    ids = read_json(ids_path) if ids_path.is_file() else {}
    return EmbodimentLayout(
        tag=tag,
        cameras=list(cfg["video"]["modality_keys"]),
        video_horizon=len(cfg["video"]["delta_indices"]),
        state_dims=dims("state"),
        language_key=cfg["language"]["modality_keys"][0],
        action_dims=dims("action"),
        action_horizon=len(cfg["action"]["delta_indices"]),
        embodiment_id=ids.get(tag),
    )


CONTENT_HASH_LIMIT = 64 << 20  # files up to this size are hashed; larger ones (real weights) are stat-signed


def _files_signature(root: Path, digest) -> None:
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        if stat.st_size <= CONTENT_HASH_LIMIT:
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        else:  # hashing 12 GB per run is too slow; any rewrite changes size or mtime
            digest.update(f"{stat.st_size}:{stat.st_mtime_ns}".encode())


def backbone_ids(checkpoint: str | os.PathLike) -> list[str]:
    """Hub ids the two implementations read from the HF cache: the backbone, and LeRobot's processor id."""
    from groot_lib.tiny.layout import LEROBOT_PROCESSOR_ID

    model_name = read_json(Path(checkpoint) / "config.json").get("model_name")
    return [i for i in dict.fromkeys([model_name, LEROBOT_PROCESSOR_ID]) if i]


def hub_cache_dir(hf_home: str | os.PathLike | None, model_id: str) -> Path:
    """``$HF_HOME/hub/models--owner--name``: where an offline run finds ``model_id``."""
    home = Path(hf_home or os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface").expanduser()
    return home / "hub" / ("models--" + model_id.replace("/", "--"))


def input_signature(checkpoint: str | os.PathLike, hf_home: str | os.PathLike | None) -> str:
    """Hash of everything on disk a model run reads: every checkpoint file (weights included) and the
    backbone's cached config/tokenizer. Store keys use it; the fingerprint stays the cheap sidecar hash."""
    digest = hashlib.sha256()
    _files_signature(Path(checkpoint), digest)
    for model_id in backbone_ids(checkpoint):
        cache = hub_cache_dir(hf_home, model_id)
        digest.update(model_id.encode() + b"\0")
        if cache.is_dir():
            _files_signature(cache, digest)
    return digest.hexdigest()[:20]


SAFETENSORS_DTYPES = {"F32": "float32", "BF16": "bfloat16", "F16": "float16", "F64": "float64"}


def stored_tensors(checkpoint: str | os.PathLike) -> Iterator[dict]:
    """Every stored tensor's header entry ({"dtype", "shape", ...}) across the safetensors shards; no tensor
    is read, only each file's JSON header."""
    import struct

    for path in sorted(Path(checkpoint).glob("*.safetensors")):
        with open(path, "rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            header = json.loads(handle.read(length))
        yield from (entry for name, entry in header.items() if name != "__metadata__")


def stored_dtypes(checkpoint: str | os.PathLike) -> dict[str, int]:
    """Floating dtypes of the stored weights, counted from the safetensors headers (no tensor is read)."""
    from collections import Counter

    return dict(Counter(SAFETENSORS_DTYPES[t["dtype"]] for t in stored_tensors(checkpoint)
                        if t.get("dtype") in SAFETENSORS_DTYPES))


def dtype_warning(checkpoint: str | os.PathLike) -> str | None:
    """Why LeRobot may not load this checkpoint as stored: config.json's dtype (or the legacy torch_dtype; absent
    means LeRobot's bfloat16 default) differs from the weights' own. None when they agree."""
    config = read_json(Path(checkpoint) / "config.json")
    declared = config.get("dtype") or config.get("torch_dtype")
    stored = stored_dtypes(checkpoint)
    if not stored:
        return None
    majority = max(stored, key=stored.get)
    effective = declared or "bfloat16"
    if effective == majority:
        return None
    said = f"declares dtype {declared!r}" if declared else "declares no dtype (LeRobot then uses its bfloat16 default)"
    return (f"{Path(checkpoint) / 'config.json'} {said}, but its weights are stored as {majority} "
            f"({stored[majority]} of {sum(stored.values())} tensors): LeRobot loads its action head rounded to "
            f"{effective} (measured 1.1e-2..1.6e-2 on action_pred); the original is unaffected. Declare "
            f"\"dtype\": \"{majority}\" in config.json to compare like with like")
