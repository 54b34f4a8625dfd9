"""torch's view of the machine: the ISA its CPU kernels dispatch to, threads, MKL / oneDNN, the GPU.

With ``core.machine.cpu_info`` this is the record every artifact, stored key and report carries.
"""

from __future__ import annotations

import re

from groot_lib.core.machine import cpu_info


def _config_version(pattern: str, text: str) -> str | None:
    found = re.search(pattern, text)
    return found.group(1) if found else None


def math_stack(device: str = "cpu") -> dict:
    """torch's view: the ISA its CPU kernels dispatch to, threads, MKL / oneDNN versions, the GPU."""
    import torch

    shown = torch.__config__.show()
    info = {
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_threads": torch.get_num_threads(),
        "mkl": _config_version(r"Math Kernel Library Version ([^\s]+)", shown),
        "onednn": _config_version(r"MKL-DNN v([^\s]+)", shown),
    }
    if str(device).startswith("cuda") and torch.cuda.is_available():
        index = torch.device(device).index or 0
        info["gpu"] = torch.cuda.get_device_name(index)
        info["gpu_capability"] = ".".join(map(str, torch.cuda.get_device_capability(index)))
        info["cuda"] = torch.version.cuda
    return info


def machine_info(device: str = "cpu") -> dict:
    """Everything about this machine that can change a result (goes into provenance and store keys)."""
    return {**cpu_info(), **math_stack(device)}
