"""Everything that can be checked before a kernel starts, in well under 3 s, with one-line errors.

Why: a bad setting found 40 s into a run, inside a notebook, costs a minute and reads as a
traceback; found here it costs nothing and names the file, key or variable to fix. Runs in the
tools env (stdlib + groot_lib's torch-free modules); the kernels re-check what only they can see.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from groot_lib.core import checkpoint as ckpt
from groot_lib.tiny import layout as tiny_layout
from groot_lib.core.errors import ParityError, SettingError
from groot_lib.core.variants import VARIANTS


@dataclass
class Plan:
    """What pre-flight established: the run can start with these resolved inputs."""

    checkpoint: Path
    hf_home: str | None
    tags: list[str]
    gr00t: str  # "importable" | "absent: <why>"
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    memory: object = None  # core.memory.MemoryPlan: overlap or one side after the other


def resolve_checkpoint(value: str | None, hf_home: str | None) -> Path:
    """The folder CKPT= names, by core/checkpoint.py's one rule (empty: the tiny default). A download runs in the
    LeRobot kernel, as the tools env has no huggingface_hub; its progress bars go to this terminal."""
    try:
        return ckpt.resolve_checkpoint(value or tiny_layout.TINY_CHECKPOINT, hf_home, download=download_in_kernel)
    except ParityError as exc:
        raise SettingError(str(exc)) from None


def download_in_kernel(hub: ckpt.HubId, hf_home: str | None) -> None:
    """``ckpt.hub_download`` in the groot-lerobot kernel's interpreter; raises ParityError with its one line."""
    import json

    from groot_lib.workbench.kernels import interpreter

    python = interpreter("groot-lerobot")
    if python is None or not python.exists():
        raise ParityError("the groot-lerobot kernel, whose huggingface_hub downloads, has no interpreter (run `make "
                          "kernels`)")
    command = [str(python), "-m", "groot_lib.core.checkpoint", "--download-only", str(hub)]
    done = subprocess.run(command + (["--hf-home", str(hf_home)] if hf_home else []), stdout=subprocess.PIPE,
                          text=True)  # stderr stays on the terminal: huggingface_hub's progress bars
    lines = done.stdout.strip().splitlines()
    answer = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {"error": f"exit {done.returncode}"}
    if "error" in answer:
        raise ParityError(answer["error"])


def check_checkpoint_files(root: Path) -> None:
    """Every JSON the two implementations read parses; errors name the file, line and column."""
    for name in ("config.json", "processor_config.json", "statistics.json", "model.safetensors.index.json",
                 "embodiment_id.json"):
        path = root / name
        if name in ("config.json", "processor_config.json", "statistics.json") or path.exists():
            try:
                ckpt.read_json(path)
            except Exception as exc:  # noqa: BLE001 - ParityError already names file and error
                raise SettingError(str(exc)) from None


def check_hf_cache(root: Path, hf_home: str | None) -> None:
    for model_id in ckpt.backbone_ids(root):
        cache = ckpt.hub_cache_dir(hf_home, model_id)
        if not (cache / "snapshots").is_dir():
            home = hf_home or os.environ.get("HF_HOME") or "~/.cache/huggingface (HF_HOME unset)"
            raise SettingError(
                f"the checkpoint's backbone {model_id!r} (config.json model_name, or LeRobot's processor id) is not "
                f"in the HF cache: no {cache}. Runs are offline. Set HF_HOME=/path/to/cache to a cache that has it "
                f"(make report HF_HOME=...); HF_HOME is now {home}")


def gr00t_in_original_env() -> str:
    """'importable' or 'absent: why', asked of the original kernel's interpreter without importing gr00t."""
    from groot_lib.workbench.kernels import interpreter

    python = interpreter("groot-original")
    if python is None or not Path(python).exists():
        return "absent: the groot-original kernel has no interpreter (run `make kernels`)"
    probe = "import importlib.util, sys; sys.exit(0 if importlib.util.find_spec('gr00t') else 3)"
    try:
        code = subprocess.run([str(python), "-c", probe], capture_output=True, timeout=30).returncode
    except (OSError, subprocess.SubprocessError) as exc:
        return f"absent: {exc}"
    return "importable" if code == 0 else "absent: gr00t is not installed in the groot-original env"


def check_recordings(values: dict, checkpoint: Path | None = None) -> None:
    """Without gr00t only the committed recordings can serve: they cover one seed, batch and variant set."""
    which = values.get("recordings", "cpu")
    wanted = [v for v in values["variants"].split(",") if not VARIANTS[v].needs_cuda]  # refused on CPU anyway
    gap = tiny_layout.recordings_gap(values["seed"], values["batch_size"], wanted, which,
                                     checkpoint or tiny_layout.TINY_CHECKPOINT,
                                     values.get("sweep_from", 0) + values.get("sweep", 0) if values.get("sweep") else 0)
    if gap:
        raise SettingError(f"gr00t is not installed, and {gap}")
    if which == "cuda" and values.get("noise_mode") == "seed" and not values["device"].startswith("cuda") \
            and not (values["device"] == "auto" and _has_nvidia()):
        raise SettingError("RECORDINGS=cuda replays an original that drew its noise on CUDA; LeRobot here runs on "
                           "the CPU, whose generator draws different noise from the same seed. Use NOISE_MODE=inject "
                           "(LeRobot then starts from the recorded noise)")


def check_artifacts(values: dict, root: Path, hf_home: str | None) -> tuple[list[str], str]:
    """ARTIFACTS=dir: the folder holds an fp32 artifact for every tag asked (default: every tag it has that the
    checkpoint knows), LeRobot's own dumps come with TRUST_LEGACY=1, and every file fits the checkpoint (core/fit.py:
    tag, embodiment id, shapes, cameras, image tokens, fingerprint when recorded). Returns (tags, what judges them)."""
    from groot_lib.core import fit
    from groot_lib.core.errors import ParityError

    known = ckpt.embodiment_tags(root)
    from groot_lib.core import upstream
    from groot_lib.core.artifact import find_artifacts
    from groot_lib.core.errors import ArtifactError

    folder = Path(values["artifacts"]).expanduser()
    if not folder.is_dir():
        raise SettingError(f"artifacts {values['artifacts']!r} is not a directory; ARTIFACTS= (or $GROOT_N1_7_PARITY_DIR) "
                           "takes the folder of the original's .npz outputs to judge")
    try:
        found = find_artifacts(folder)
    except ArtifactError as exc:
        raise SettingError(str(exc)) from None
    if not found:
        raise SettingError(f"artifacts folder {folder} holds no fp32 artifact (<tag>.npz, or LeRobot's "
                           f"original_n1_7_<tag>.npz); it has {sorted(p.name for p in folder.iterdir())[:10]}")
    asked = [t for t in values["tags"].split(",") if t]
    missing = [t for t in asked if t not in found]
    if missing:
        raise SettingError(f"artifacts folder {folder} has no artifact for tag(s) {missing}; it has {sorted(found)}")
    strangers = [t for t in (asked or found) if t not in known]
    if strangers:
        raise SettingError(f"artifacts in {folder} are for tag(s) {strangers}, which the checkpoint does not have "
                           f"({known}): CKPT= must be the checkpoint they were made from")
    dumps = [found[t].name for t in (asked or found) if upstream.is_upstream(found[t])]
    if dumps and not values["trust_legacy"]:
        raise SettingError(f"{', '.join(dumps)} in {folder} are LeRobot dumps (dump_original_n1_7.py) with pickled "
                           "dtype lists, which could run code when read: TRUST_LEGACY=1 (--trust-legacy 1) if you "
                           "made them, else regenerate them with the workbench's producer")
    tags = asked or sorted(found)
    try:
        unattached = fit.check_folder(folder, root, tags, hf_home=hf_home, trust_legacy=values["trust_legacy"])
    except ParityError as exc:
        raise SettingError(str(exc).splitlines()[0]) from None
    if unattached:
        raise SettingError(f"{', '.join(unattached)} in {folder} record no checkpoint identity (made elsewhere?). They "
                           f"fit {root}: attach it with `make attach-checkpoint ARTIFACTS={folder}"
                           + ("" if tiny_layout.is_embedded(root) else f" CKPT={root}") + "`, then run this again")
    return tags, f"not needed: judging {folder}"


def _has_nvidia() -> bool:
    return Path("/proc/driver/nvidia/version").exists() or bool(shutil.which("nvidia-smi"))


def check_device(device: str) -> None:
    if device.startswith("cuda") and not _has_nvidia():
        raise SettingError(f"device={device!r} but this machine shows no NVIDIA driver (no /proc/driver/nvidia, no "
                           "nvidia-smi); use DEVICE=cpu or DEVICE=auto")


def check_writable(path: Path, what: str, flag: str) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-probe-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise SettingError(f"{what} {path} is not writable ({type(exc).__name__}: {exc.strerror or exc}); "
                           f"fix its permissions or choose another with {flag}") from None


def check(values: dict, *, out_root: Path, store_root: Path) -> Plan:
    """Validate the resolved settings against this machine; raises SettingError with one actionable line."""
    from groot_lib.workbench.kernels import KERNELS, require_kernel

    start = time.perf_counter()
    check_device(values["device"])
    hf_home = tiny_layout.hf_home_for(values["checkpoint"], values["hf_home"])
    root = resolve_checkpoint(values["checkpoint"], hf_home)
    check_checkpoint_files(root)
    known = ckpt.embodiment_tags(root)
    tags = [t for t in values["tags"].split(",") if t] or known
    unknown = [t for t in tags if t not in known]
    if unknown:
        raise SettingError(f"embodiment tag(s) {unknown} are not in {root}: it has {known} (statistics.json and "
                           "processor_config.json modality_configs)")
    for tag in tags:
        try:
            ckpt.embodiment_layout(root, tag)
        except Exception as exc:  # noqa: BLE001 - names the file and key
            raise SettingError(str(exc)) from None
    check_hf_cache(root, hf_home)
    for kernel in KERNELS:
        try:
            require_kernel(kernel)
        except Exception as exc:  # noqa: BLE001 - KernelError lists the installed kernels
            raise SettingError(str(exc)) from None
    if values.get("artifacts"):
        tags, gr00t = check_artifacts(values, root, hf_home)
    else:
        gr00t = gr00t_in_original_env()
    if not values.get("artifacts") and gr00t != "importable":
        if not tiny_layout.is_embedded(root):
            raise SettingError(f"gr00t is not usable in the groot-original kernel ({gr00t[len('absent: '):]}), and "
                               f"{root} is not a committed tiny checkpoint, whose recordings are the only fallback. gr00t is "
                               "not on PyPI: `make setup GR00T_SRC=/path/to/Isaac-GR00T` (commit ab88b50 is what "
                               "LeRobot's fixtures pin)")
        check_recordings(values, root)
    check_writable(out_root, "reports folder", "--out-root / REPORTS_DIR=")
    check_writable(store_root, "artifact store", "--artifacts-root / STORE_DIR=")
    from groot_lib.core import memory

    schedule = memory.plan(root, device=values["device"], schedule=values["schedule"], memory_gb=values["memory_gb"],
                           train=values["train"])
    notes = [n for n in (ckpt.dtype_warning(root),) if n]
    return Plan(root, hf_home, tags, gr00t, round(time.perf_counter() - start, 3), notes, schedule)
