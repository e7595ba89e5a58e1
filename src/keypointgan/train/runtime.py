"""Where and how computation runs: device, precision, threads, memory format.

On CPUs with AMX or AVX-512-bf16 (Sapphire Rapids and later), bf16 autocast together
with channels_last is several times faster than fp32 for the convolutions (measured in
docs/performance.md); elsewhere fp32 is kept. CUDA uses bf16 autocast when supported.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from functools import lru_cache

import torch
from torch import nn


@lru_cache(maxsize=None)
def cpu_has_fast_bf16() -> bool:
    """True when the CPU has AMX-bf16 or AVX-512-bf16 (bf16 matmul/conv in hardware)."""
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def resolve_device(spec: str = "auto") -> torch.device:
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(spec)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device '{spec}' requested but CUDA is not available")
    return dev


def resolve_precision(spec: str, device: torch.device) -> str:
    """``auto`` -> ``bf16`` where it is fast (AMX CPU, CUDA with bf16), else ``fp32``."""
    if spec not in ("auto", "bf16", "fp32"):
        raise ValueError(f"precision must be auto, bf16 or fp32, got '{spec}'")
    if spec != "auto":
        return spec
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if cpu_has_fast_bf16() else "fp32"


@dataclass(frozen=True)
class Runtime:
    """Device, precision and memory format of a run, with the matching contexts."""

    device: torch.device
    precision: str = "fp32"
    channels_last: bool = False

    @classmethod
    def create(cls, device: str = "auto", precision: str = "auto", channels_last: bool = True,
               threads: int | None = None) -> "Runtime":
        dev = resolve_device(device)
        if dev.type == "cpu":
            set_threads(threads)
        return cls(dev, resolve_precision(precision, dev), channels_last)

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def module(self, m: nn.Module) -> nn.Module:
        m = m.to(self.device)
        return m.to(memory_format=torch.channels_last) if self.channels_last else m

    def tensor(self, t: torch.Tensor) -> torch.Tensor:
        t = t.to(self.device, non_blocking=True)
        if self.channels_last and t.dim() == 4:
            t = t.contiguous(memory_format=torch.channels_last)
        return t

    def describe(self) -> str:
        fmt = "channels_last" if self.channels_last else "NCHW"
        return f"{self.device} {self.precision} {fmt} threads={torch.get_num_threads()}"


def set_threads(threads: int | None) -> None:
    """Pin intra-op threads to the cores we have (oversubscription slowed steps >10x here)."""
    if threads is None:
        threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    torch.set_num_threads(max(1, int(threads)))
