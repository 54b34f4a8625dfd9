"""Will both kernels fit at once? Each side's peak memory, estimated before any kernel starts.

Why: at the real 3B size one fp32 model is ~12 GB; a 24 GiB machine cannot hold two. The two models never
need to coexist: the producer releases its models (and hands their pages back) before it publishes
source.json, and the consumer loads nothing before that (pipeline/handoff.py). What does coexist is the
producer's peak with the consumer's footprint (interpreter and imports: it imports LeRobot while the producer
works), then the consumer's peak with the producer's footprint until that kernel has exited. So the workflow
starts both kernels at once ("overlap") when the larger of those two sums fits, starts the consumer only once
the producer's kernel is gone ("sequential", and says so) when only one side at a time fits, and refuses,
naming the numbers, when one side alone cannot fit. tools env: stdlib only.

The model: peak = the kernel's own footprint (interpreter, torch, the implementation's imports) + LOAD_FACTOR x
the weights in fp32 (both load fp32 weights on the CPU; the original casts to the variant's dtype after loading).
Measured here (peak RSS, batch 2): the original 704 MB on the 4 MB tiny default and 1005 MB on the 288 MB x12
checkpoint (1.05 x the weights above its footprint), LeRobot 871 MB and 1061 MB; at real size (12.6 GB of fp32
weights) 0.98x the weights for either side, and the producer held 0.76 GB once it had released its model.
LOAD_FACTOR 1.25 leaves room for activations and allocator slack.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from groot_lib.core import settings

GB = 1e9
FOOTPRINT_GB = {"producer": 0.8, "consumer": 1.0}
LOAD_FACTOR = 1.25
GRADIENT_FACTOR = 1.5  # TRAIN=1: the gradients, plus the activations kept for the backward pass
BYTES = {"I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}  # non-floating dtypes load as stored
HEADROOM = 0.9  # of the available memory the plan may use
GPU_CONTEXT_GB = 0.6  # what a kernel still holds on the GPU after releasing its model (its CUDA context)


@dataclass
class MemoryPlan:
    mode: str  # "overlap" | "sequential"
    producer_gb: float
    consumer_gb: float
    available_gb: float
    where: str  # "RAM" (+ " and GPU")
    reason: str

    @property
    def at_once_gb(self) -> float:
        """The most memory the run holds at one instant: under overlap one kernel at its peak beside the other's
        footprint, else one kernel at its peak (what a scheduler must reserve for the run)."""
        if self.mode == "overlap":
            return max(self.producer_gb + FOOTPRINT_GB["consumer"], self.consumer_gb + FOOTPRINT_GB["producer"])
        return max(self.producer_gb, self.consumer_gb)

    def as_dict(self) -> dict:
        return {"mode": self.mode, "producer peak GB": round(self.producer_gb, 2),
                "consumer peak GB": round(self.consumer_gb, 2), "available GB": round(self.available_gb, 2),
                "reason": self.reason}


def weights_fp32_bytes(checkpoint: Path) -> int:
    """Bytes the checkpoint's weights take once loaded: floating ones in fp32, the rest as stored."""
    from groot_lib.core.checkpoint import SAFETENSORS_DTYPES, stored_tensors

    total = 0
    for tensor in stored_tensors(checkpoint):
        numel = math.prod(int(size) for size in tensor.get("shape", []))
        total += numel * (4 if tensor.get("dtype") in SAFETENSORS_DTYPES else BYTES.get(tensor.get("dtype"), 4))
    return total


def available_ram_bytes() -> int:
    """MemAvailable (what can be used without swapping), else physical memory."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def free_gpu_bytes() -> int | None:
    """Free memory of the first GPU, from nvidia-smi (None without one)."""
    if not shutil.which("nvidia-smi"):
        return None
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=memory.free", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=20).stdout.split()
        return int(out[0]) * 2**20 if out else None
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


def trainable_fp32_bytes(checkpoint: Path) -> int:
    """Bytes of the gradients a training step holds: the action head's weights in fp32 (what both sides train by
    default: tune_projector, tune_diffusion_model and tune_vlln on, the backbone frozen)."""
    from groot_lib.core.checkpoint import stored_tensors

    return sum(4 * math.prod(int(size) for size in t.get("shape", [])) for t in stored_tensors(checkpoint)
               if str(t.get("name", "")).startswith("action_head."))


def side_peak_gb(side: str, weights: int, gradients: int) -> float:
    """One side's peak: its footprint, LOAD_FACTOR x the fp32 weights, and a training step's gradients (TRAIN=1)."""
    return (FOOTPRINT_GB[side] * GB + LOAD_FACTOR * weights + GRADIENT_FACTOR * gradients) / GB


def plan(checkpoint: Path, *, device: str, schedule: str = settings.default("schedule"),
         memory_gb: float = settings.default("memory_gb"), train: bool = settings.default("train")) -> MemoryPlan:
    """Overlap or sequential, with the numbers; raises SettingError when one side alone cannot fit."""
    from groot_lib.core.errors import SettingError

    weights = weights_fp32_bytes(checkpoint)
    gradients = trainable_fp32_bytes(checkpoint) if train else 0
    peaks = {side: side_peak_gb(side, weights, gradients) for side in FOOTPRINT_GB}
    # one model at a time: the producer at its peak beside the importing consumer, then the other way round
    together = max(peaks["producer"] + FOOTPRINT_GB["consumer"], peaks["consumer"] + FOOTPRINT_GB["producer"])
    available = (memory_gb * GB if memory_gb else available_ram_bytes()) / GB
    budget = HEADROOM * available
    where = "RAM" + (" (GROOT_PARITY_MEMORY_GB)" if memory_gb else "")
    numbers = (f"producer ~{peaks['producer']:.1f} GB, consumer ~{peaks['consumer']:.1f} GB (fp32 weights "
               f"{weights / GB:.1f} GB x {LOAD_FACTOR}"
               + (f" + the training step's gradients {gradients / GB:.1f} GB x {GRADIENT_FACTOR}" if gradients else "")
               + f" + each kernel's footprint), {available:.1f} GB {where} available")
    alone = max(peaks.values())
    if alone > budget:
        raise SettingError(f"not enough memory for even one side at a time: {numbers}. Free memory, use a machine "
                           "with more, or a smaller checkpoint")
    gpu = free_gpu_bytes() if str(device).startswith("cuda") else None
    if gpu is not None:
        on_gpu = LOAD_FACTOR * weights / GB  # fp32 at most; bf16 variants take half
        if on_gpu > HEADROOM * gpu / GB:
            raise SettingError(f"the GPU has {gpu / GB:.1f} GB free; one side needs ~{on_gpu:.1f} GB "
                               "(fp32 weights x 1.25). Use DEVICE=cpu or a larger GPU")
        if on_gpu + GPU_CONTEXT_GB > HEADROOM * gpu / GB:
            return MemoryPlan("sequential", peaks["producer"], peaks["consumer"], available, where + " and GPU",
                              f"one model (~{on_gpu:.1f} GB) beside the other kernel's CUDA context "
                              f"(~{GPU_CONTEXT_GB} GB) would not fit the GPU's {gpu / GB:.1f} GB free: {numbers}")
    if schedule == "sequential":
        return MemoryPlan("sequential", peaks["producer"], peaks["consumer"], available, where,
                          f"SCHEDULE=sequential: {numbers}")
    if together > budget:
        if schedule == "overlap":
            raise SettingError(f"SCHEDULE=overlap, but one side's peak beside the other kernel's footprint needs "
                               f"~{together:.1f} GB, more than {HEADROOM:.0%} of the available memory: {numbers}. "
                               "Use SCHEDULE=auto (it runs them one after the other)")
        return MemoryPlan("sequential", peaks["producer"], peaks["consumer"], available, where,
                          f"one side's peak beside the other kernel's footprint would need ~{together:.1f} GB: "
                          f"{numbers}")
    return MemoryPlan("overlap", peaks["producer"], peaks["consumer"], available, where,
                      f"{numbers}; at most ~{together:.1f} GB at once (one model at a time: the consumer loads "
                      "once the producer has released its)")


@dataclass
class ResidentPlan:
    """Both models kept loaded (an investigation session): whether they may load at the same time."""

    load_together: bool
    reason: str


def resident(checkpoint: Path, *, device: str, memory_gb: float = settings.default("memory_gb")) -> ResidentPlan:
    """Will both models fit loaded at once (pipeline/investigate.py keeps them)? On the CPU both peaks sit in RAM
    together; on a GPU both models sit on it, and RAM holds each only while it loads (one after the other when two
    loads at once would not fit). Raises SettingError naming the numbers when they cannot fit."""
    from groot_lib.core.errors import SettingError

    weights = weights_fp32_bytes(checkpoint)
    peaks = {side: (FOOTPRINT_GB[side] * GB + LOAD_FACTOR * weights) / GB for side in FOOTPRINT_GB}
    available = (memory_gb * GB if memory_gb else available_ram_bytes()) / GB
    budget, both = HEADROOM * available, sum(peaks.values())
    numbers = (f"original ~{peaks['producer']:.1f} GB + LeRobot ~{peaks['consumer']:.1f} GB (fp32 weights "
               f"{weights / GB:.1f} GB x {LOAD_FACTOR} + each kernel's footprint), {available:.1f} GB RAM available")
    gpu = free_gpu_bytes() if str(device).startswith("cuda") else None
    if gpu is None:
        if both > budget:
            raise SettingError(f"an investigation session keeps both models loaded, which needs ~{both:.1f} GB: "
                               f"{numbers}. Use device='cuda', a machine with more memory, or `make report` (it "
                               "holds one model at a time)")
        return ResidentPlan(True, f"both models in RAM: {numbers}")
    on_gpu = 2 * LOAD_FACTOR * weights / GB
    if on_gpu > HEADROOM * gpu / GB:
        raise SettingError(f"an investigation session keeps both models on the GPU: ~{on_gpu:.1f} GB (fp32 weights "
                           f"x {LOAD_FACTOR}, twice), the GPU has {gpu / GB:.1f} GB free. Use a larger GPU, or "
                           "`make report` (it holds one model at a time)")
    if max(peaks["producer"] + FOOTPRINT_GB["consumer"], peaks["consumer"] + FOOTPRINT_GB["producer"]) > budget:
        raise SettingError(f"not enough RAM to load even one model beside the other kernel: {numbers}")
    together = both <= budget
    return ResidentPlan(together, f"both models on the GPU (~{on_gpu:.1f} GB of {gpu / GB:.1f} GB free); "
                                  + ("loaded at the same time" if together else "loaded one after the other")
                                  + f": {numbers}")
