"""Floating-point policy: which dtype each scale computes in, and the machine facts that move numbers.

The ``ci`` scale runs in float64. CPUs pick different kernels (``ATEN_CPU_CAPABILITY``: avx2, avx512,
default) and thread counts split reductions differently; in float32 a few epochs of training amplify
those last-bit differences into different statistics (a CI that passes only on the machine that wrote
its reference). In float64 the avx2 and avx512 paths agree to ~12 digits at 1 and 2 threads, so ci
numbers are portable (tests/reference/README.md states the tolerance policy). The other scales run in
float32 (bf16 autocast on CUDA): their numbers move between machines within seed noise.
"""

from __future__ import annotations

import platform
from pathlib import Path

import torch

SCALE_DTYPE = {"ci": torch.float64, "quick": torch.float32, "long": torch.float32, "gpu": torch.float32,
               "paper": torch.float32}


def use_scale_dtype(scale: str) -> torch.dtype:
    """Set torch's default float dtype for `scale` (new parameters, data, random tensors); return it."""
    dtype = SCALE_DTYPE[scale]
    torch.set_default_dtype(dtype)
    return dtype


def upcast(t: torch.Tensor) -> torch.Tensor:
    """t in full precision: half/bf16 (autocast outputs) become float32; float32 and float64 are kept."""
    return t if t.dtype in (torch.float32, torch.float64) else t.float()


def kernel_path() -> str:
    """The CPU kernel family PyTorch dispatches to on this machine: 'AVX512', 'AVX2', 'DEFAULT', …"""
    try:
        return torch.backends.cpu.get_cpu_capability()
    except (AttributeError, RuntimeError):  # very old torch
        return "unknown"


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_facts() -> dict:
    """What a CPU result depends on beyond code and seeds: CPU model, kernel path, threads, dtype."""
    return {"cpu_model": cpu_model(), "cpu_kernels": kernel_path(), "torch_threads": torch.get_num_threads(),
            "float_dtype": str(torch.get_default_dtype()).removeprefix("torch.")}
