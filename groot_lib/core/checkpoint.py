"""Read a raw GR00T N1.7 checkpoint's metadata and fingerprint it.

Both kernels read the same sidecar JSON files, so the embodiment layouts the
producer builds observations from and the consumer validates against come from
one place. numpy/stdlib only.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

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


CHECKPOINT_FORMS = "a checkpoint folder, or a hub id owner/name[/subfolder][@branch|tag|commit]"
COMMIT_HASH = re.compile(r"[0-9a-f]{40}")
_SEGMENT = r"\w(?:[\w.-]*\w)?"  # huggingface_hub's repo-name characters, a word character at each end
HUB_ID = re.compile(rf"(?P<repo>{_SEGMENT}/{_SEGMENT})(?P<subfolder>(?:/{_SEGMENT})*)(?:@(?P<revision>\S+))?")


@dataclass(frozen=True)
class HubId:
    """What upstream's users type for a checkpoint on the hub: ``owner/name[/subfolder][@revision]`` (the LIBERO
    checkpoints are subfolders of one repo, e.g. nvidia/GR00T-N1.7-LIBERO/libero_10)."""

    repo_id: str
    subfolder: str = ""  # "" is the repo's root; may be nested (a/b)
    revision: str = "main"  # branch, tag or full commit hash

    def __str__(self) -> str:
        return "/".join(filter(None, (self.repo_id, self.subfolder))) + f"@{self.revision}"


def parse_hub_id(text: str) -> HubId | None:
    """``text`` as a hub id, or None when it is not shaped like one (``./x``, ``/abs``, ``~/x``, ``name``)."""
    match = HUB_ID.fullmatch(str(text))
    if not match or "--" in match["repo"] or ".." in match["repo"]:  # huggingface_hub refuses those repo ids
        return None
    return HubId(match["repo"], match["subfolder"].strip("/"), match["revision"] or "main")


def hub_root(hf_home: str | os.PathLike | None = None) -> Path:
    """The hub cache huggingface_hub uses: ``<hf_home>/hub`` when a cache is given, else its own rule
    ($HF_HUB_CACHE, $HF_HOME/hub, $XDG_CACHE_HOME/huggingface/hub, ~/.cache/huggingface/hub)."""
    if hf_home:
        return Path(hf_home).expanduser() / "hub"
    hub = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if hub:
        return Path(hub).expanduser()
    home = os.environ.get("HF_HOME") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "huggingface"
    return Path(home).expanduser() / "hub"


def hub_cache_dir(hf_home: str | os.PathLike | None, model_id: str) -> Path:
    """``<hub cache>/models--owner--name``: where an offline run finds ``model_id``."""
    return hub_root(hf_home) / ("models--" + model_id.replace("/", "--"))


def hub_offline() -> bool:
    """huggingface_hub's own switch: HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) set to 1, ON, YES or TRUE."""
    return any(os.environ.get(name, "").upper() in ("1", "ON", "YES", "TRUE")
               for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def _listed(items: list[str], limit: int = 8) -> str:
    return ", ".join(items[:limit]) + (f" and {len(items) - limit} more" if len(items) > limit else "") or "nothing"


def _commit(repo: Path, revision: str) -> str | None:
    """The commit ``revision`` names in a cached repo: a full hash itself, else what refs/<revision> holds."""
    ref = repo / "refs" / revision
    return revision if COMMIT_HASH.fullmatch(revision) else ref.read_text().strip() if ref.is_file() else None


def _cached(hub: HubId, hf_home: str | os.PathLike | None) -> Path | str:
    """``hub``'s folder read from the HF cache as huggingface_hub reads it offline (refs/<revision> names the
    commit, a full hash names itself, snapshots/<commit> holds it; never the newest-looking snapshot), or why
    not, naming the cache folder and what it has."""
    repo = hub_cache_dir(hf_home, hub.repo_id)
    snapshots = repo / "snapshots"
    if not snapshots.is_dir():
        held = sorted(p.parent.name[len("models--"):].replace("--", "/")
                      for p in repo.parent.glob("models--*/snapshots"))
        return f"{hub.repo_id!r} is not in the HF cache {repo.parent} (it holds {_listed(held)})"
    commit = _commit(repo, hub.revision)
    if not commit or not (snapshots / commit).is_dir():
        lacks = f"no snapshots/{commit}" if commit == hub.revision else \
            f"refs/{hub.revision} names {commit}, but no snapshots/{commit}" if commit else f"no refs/{hub.revision}"
        refs = sorted(f"{p.relative_to(repo / 'refs').as_posix()}={p.read_text().strip()[:12]}"
                      for p in (repo / "refs").rglob("*") if p.is_file())
        return (f"{repo} has no revision {hub.revision!r} ({lacks}; refs: {_listed(refs)}; snapshots: "
                f"{_listed(sorted(p.name for p in snapshots.iterdir()))})")
    folder = snapshots / commit / hub.subfolder if hub.subfolder else snapshots / commit
    if not folder.is_dir():
        held = sorted({p.parent.relative_to(snapshots / commit).as_posix()
                       for p in (snapshots / commit).rglob("config.json")} - {"."})
        return (f"snapshot {snapshots / commit} has no subfolder {hub.subfolder!r} (checkpoint subfolders "
                f"downloaded there: {_listed(held)})")
    return folder


def _hub_checkpoints(hub: HubId, hf_home: str | os.PathLike | None) -> str:
    """' (its checkpoint folders at <revision>: ...)' from the tree listing huggingface_hub 1.x caches
    (trees/<commit>.json), so a mistyped subfolder names the right ones; '' when it cached none."""
    repo = hub_cache_dir(hf_home, hub.repo_id)
    commit = _commit(repo, hub.revision)
    try:
        files = json.loads((repo / "trees" / f"{commit}.json").read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return ""
    held = sorted({str(Path(f).parent) for f in files if Path(f).name == "config.json"} - {"."})
    return f" (its checkpoint folders at {hub.revision}: {_listed(held)})"


def hub_download(hub: HubId, hf_home: str | os.PathLike | None = None) -> None:
    """Fill the HF cache as upstream's instructions do: snapshot_download, only the subfolder's files, with
    huggingface_hub's own progress bars. Raises ParityError (one line) when it cannot."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise ParityError(f"huggingface_hub is not installed in {sys.executable}") from None
    try:
        snapshot_download(hub.repo_id, revision=hub.revision, cache_dir=str(hub_root(hf_home)),
                          allow_patterns=[f"{hub.subfolder}/*"] if hub.subfolder else None)
    except Exception as exc:  # noqa: BLE001 - the hub raises many types; its first line is what matters
        raise ParityError(f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}") from None


def hub_unreachable(timeout: float = 3.0) -> str | None:
    """Why the hub cannot be reached from here (None: it answers TCP, or a proxy is configured, so let
    huggingface_hub try): an offline machine then gets the cache's answer in milliseconds, not after retries."""
    from urllib.parse import urlsplit

    if any(os.environ.get(name) for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY")):
        return None
    url = urlsplit(hub_endpoint())
    try:
        socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)), timeout).close()
    except OSError as exc:
        return f"{hub_endpoint()} is not reachable from here ({exc.strerror or exc})"
    return None


def resolve_checkpoint(checkpoint: str | os.PathLike, hf_home: str | os.PathLike | None = None, *,
                       download: Callable[[HubId, str | os.PathLike | None], None] | None = hub_download) -> Path:
    """The folder a checkpoint setting names; the one rule of pre-flight, the notebooks and doctor.

    An existing local path wins. Else ``owner/name[/subfolder][@revision]`` is read from the HF cache (``hf_home``,
    else huggingface_hub's own); only when the cache lacks it, HF_HUB_OFFLINE is unset and the hub answers is
    it downloaded (``download``: snapshot_download here; pre-flight's runs it in a kernel; None: never). The cache
    comes first so that pre-flight answers in milliseconds without huggingface_hub, and `make report` and a notebook
    opened by hand read the same snapshot. Raises ParityError with one line: what is there and what to do.
    """
    text = str(checkpoint)
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise ParityError(f"checkpoint {text!r} is not a directory (a file); expected {CHECKPOINT_FORMS}")
    if path.is_dir():
        return path.resolve()
    hub = parse_hub_id(text)
    if hub is None:
        raise ParityError(f"checkpoint {text!r} is not a directory (no such path) and not a hub id; "
                          f"expected {CHECKPOINT_FORMS}")
    said = f"checkpoint {text!r} (no such folder here, so hub repo {hub.repo_id!r}" + \
        (f", subfolder {hub.subfolder!r}" if hub.subfolder else "") + f", revision {hub.revision!r})"
    found = _cached(hub, hf_home)
    if isinstance(found, Path):
        return found
    elsewhere = "point HF_HOME at a cache that has it, or give the checkpoint's folder"
    why_not = ("HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) is set" if hub_offline() else
               "this command only reads the cache" if download is None else hub_unreachable())
    if why_not:
        raise ParityError(f"{said}: {found}, and {why_not}. To download it run `make report` (a notebook: offline = "
                          f"False) with HF_HUB_OFFLINE unset on a machine that reaches the hub; or {elsewhere}")
    try:
        download(hub, hf_home)
    except ParityError as exc:
        raise ParityError(f"{said}: {found}, and downloading it from {hub_endpoint()} failed ({exc}); check the id, "
                          f"subfolder and revision on the hub (and HF_TOKEN for a gated repo), {elsewhere}") from None
    found = _cached(hub, hf_home)
    if isinstance(found, Path):
        return found
    raise ParityError(f"{said}: the hub {hub_endpoint()} has no files for it" + (
        f" under {hub.subfolder}/" if hub.subfolder else "") + _hub_checkpoints(hub, hf_home))


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
    """Every stored tensor's header entry ({"dtype", "shape", ..., "name"}) across the safetensors shards; no
    tensor is read, only each file's JSON header."""
    import struct

    for path in sorted(Path(checkpoint).glob("*.safetensors")):
        with open(path, "rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            header = json.loads(handle.read(length))
        yield from ({**entry, "name": name} for name, entry in header.items() if name != "__metadata__")


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


def main(argv: list[str] | None = None) -> int:
    """``python -m groot_lib.core.checkpoint CKPT [--hf-home DIR]``: the folder CKPT resolves to, as JSON on the
    last stdout line ({"folder": ...} or {"error": ...}); pre-flight runs it in a kernel to download there."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m groot_lib.core.checkpoint", description="The folder CKPT names.")
    ap.add_argument("checkpoint", help=f"{CHECKPOINT_FORMS}")
    ap.add_argument("--hf-home", default=None, help="the HF cache (empty: huggingface_hub's own)")
    ap.add_argument("--download-only", action="store_true", help="only snapshot_download it, no cache look-up")
    args = ap.parse_args(argv)
    try:
        if args.download_only:
            hub = parse_hub_id(args.checkpoint)
            if hub is None:
                raise ParityError(f"{args.checkpoint!r} is not a hub id ({CHECKPOINT_FORMS})")
            hub_download(hub, args.hf_home)
            print(json.dumps({"folder": None}))
        else:
            print(json.dumps({"folder": str(resolve_checkpoint(args.checkpoint, args.hf_home))}))
    except ParityError as exc:
        print(json.dumps({"error": str(exc)}))
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
