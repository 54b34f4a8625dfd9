"""What the math ran on (the stdlib part; ``backends.math_stack`` adds torch's view): CPU model, the instruction sets that change results, threads, BLAS/oneDNN, GPU.

Why: the same fp32 code gives action_pred ~2e-6 apart on two CPUs, and bf16 up to 4.7e-2,
because torch dispatches different kernels per instruction set (AVX2 vs AVX512/AMX). Every
artifact, every stored LeRobot output's key and every report carry this record, so a gap can
be traced to the machine, and an output computed on another machine is never reused as if local.
"""

from __future__ import annotations

import platform
from pathlib import Path

# /proc/cpuinfo flags that select different math kernels in torch/oneDNN/MKL.
MATH_FLAG_PREFIXES = ("avx512", "amx", "avx_vnni", "avx2", "fma")


def cpu_info(cpuinfo: str | Path = "/proc/cpuinfo") -> dict:
    """CPU model and math-relevant ISA flags (stdlib only, so the tools env can show it too)."""
    model, flags = platform.processor() or platform.machine(), []
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and value.strip():
            model = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = sorted({f for f in value.split() if f.startswith(MATH_FLAG_PREFIXES)})
    return {"cpu_model": model, "machine": platform.machine(), "cpu_math_flags": flags}


def describe(info: dict | None) -> str:
    """One line for reports: 'Intel Xeon, torch AVX512, 2 threads, oneDNN 3.10.2, MKL 2024.2 [avx512f, ...]'."""
    if not info:
        return "machine not recorded"
    parts = [info.get("gpu") or info.get("cpu_model", "?")]
    if info.get("torch_cpu_capability"):
        parts.append(f"torch CPU kernels {info['torch_cpu_capability']}")
    if info.get("torch_threads"):
        parts.append(f"{info['torch_threads']} threads")
    parts += [f"{name} {info[key]}" for key, name in (("onednn", "oneDNN"), ("mkl", "MKL"), ("cuda", "CUDA"))
              if info.get(key)]
    flags = info.get("cpu_math_flags") or []
    amx_avx512 = [f for f in flags if f.startswith(("amx", "avx512"))]
    parts.append(f"AVX512/AMX: {', '.join(amx_avx512) if amx_avx512 else 'none'}")
    return ", ".join(parts)
