"""Where and how computation runs: device, precision, threads, memory format.

On CPUs with AMX-bf16 (Sapphire Rapids and later, where the hypervisor exposes AMX),
bf16 autocast together with channels_last is several times faster than fp32 for the
convolutions (docs/performance.md). AVX-512-bf16 without AMX is not one kind: on an AMD
EPYC Zen 4 bf16 convolutions ran 2x *faster* than fp32, on a Sapphire Rapids guest with
AMX hidden 1.26x *slower* (both measured, docs/performance.md), with the same flags; the
rule is by vendor (:func:`cpu_has_fast_bf16`). AVX2-only CPUs emulate bf16: fp32. CUDA
uses bf16 autocast when supported.
"""

from __future__ import annotations

import contextlib
import os
import platform
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Optional

import torch
from torch import nn

from ..config import ConfigError
from ..errors import KeypointGANError


class DeviceError(KeypointGANError, RuntimeError):
    """The requested device is not available here."""


@lru_cache(maxsize=None)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (``/proc/cpuinfo``; empty where it cannot be read)."""
    try:
        text = open("/proc/cpuinfo").read()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


@lru_cache(maxsize=None)
def cpu_vendor() -> str:
    """``vendor_id`` of ``/proc/cpuinfo`` (``GenuineIntel``, ``AuthenticAMD``; empty if unknown)."""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("vendor_id"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def cpu_has_fast_bf16() -> bool:
    """True where bf16 autocast beat fp32 when measured: AMX-bf16 tiles, or AVX-512-bf16 on AMD.

    AVX-512-bf16 without AMX is not one kind (docs/performance.md): an AMD EPYC Zen 4 ran a
    64-channel conv pair (fwd+bwd, batch 16, 32 px) 2.0x faster in bf16 and a whole training
    iteration 1.98x; a Sapphire Rapids guest with AMX hidden ran the same pair 1.26x slower.
    A timing probe could not tell them apart reliably on a busy machine (1.2-1.6x on the
    loaded Zen 4), so the rule is fixed, by vendor: a run's precision never depends on load.
    """
    flags = cpu_flags()
    if "amx_bf16" in flags:
        return True
    return "avx512_bf16" in flags and cpu_vendor() == "AuthenticAMD"


def cpu_model_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), or what ``platform`` knows."""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def cpu_kind() -> str:
    """One line naming the CPU's vector ISA and whether bf16 is fast: for logs and benchmarks."""
    flags = cpu_flags()
    isa = torch.backends.cpu.get_cpu_capability()
    if "amx_bf16" in flags:
        bf16 = "AMX-bf16"
    elif "avx512_bf16" in flags:
        bf16 = "AVX-512-bf16, no AMX" + (" (AMD: bf16 fast)" if cpu_has_fast_bf16() else "")
    else:
        bf16 = "no bf16"
    return f"{isa}, {bf16}"


def resolve_device(spec: str = "auto") -> torch.device:
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(spec)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device '{spec}' requested but CUDA is not available")
    return dev


def resolve_precision(spec: str, device: torch.device) -> str:
    """``auto`` -> ``bf16`` where it is fast (CUDA with bf16; CPUs per :func:`cpu_has_fast_bf16`),
    else ``fp32``."""
    if spec not in ("auto", "bf16", "fp32"):
        raise ConfigError(f"precision must be auto, bf16 or fp32, got '{spec}'")
    if spec != "auto":
        return spec
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if cpu_has_fast_bf16() else "fp32"


def auto_channels_last(precision: str, device: torch.device) -> bool:
    """``train.channels_last: auto``: on with bf16 autocast or on CUDA, off for fp32 on CPU."""
    return precision == "bf16" or device.type == "cuda"


@dataclass(frozen=True)
class Runtime:
    """Device, precision and memory format of a run, with the matching contexts."""

    device: torch.device
    precision: str = "fp32"
    channels_last: bool = False

    @classmethod
    def create(cls, device: str = "auto", precision: str = "auto", channels_last: Optional[bool] = None,
               threads: int | None = None) -> "Runtime":
        """``channels_last=None`` (auto): on with bf16 autocast or on CUDA, off for fp32 on CPU,
        where NCHW was faster (2.33 vs 2.61 s per training iteration on an AVX-512 Sapphire
        Rapids without AMX, 3.60 vs 3.74 s on an AVX2 EPYC; docs/performance.md)."""
        dev = resolve_device(device)
        if dev.type == "cpu":
            set_threads(threads)
        prec = resolve_precision(precision, dev)
        if channels_last is None:
            channels_last = auto_channels_last(prec, dev)
        return cls(dev, prec, bool(channels_last))

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
        where = f" ({cpu_model_name()}: {cpu_kind()})" if self.device.type == "cpu" else ""
        return f"{self.device}{where} {self.precision} {fmt} threads={torch.get_num_threads()}"

    def record(self) -> dict[str, Any]:
        """What a run ran on, for its checkpoints' ``state.json``: figures name their machine."""
        rec: dict[str, Any] = {"device": str(self.device), "precision": self.precision,
                               "channels_last": self.channels_last, "threads": torch.get_num_threads(),
                               "torch": torch.__version__}
        if self.device.type == "cpu":
            rec.update(cpu=cpu_model_name(), cpu_capability=torch.backends.cpu.get_cpu_capability(),
                       cpu_kind=cpu_kind())
        else:
            rec["device_name"] = torch.cuda.get_device_name(self.device)
        return rec


def set_threads(threads: int | None) -> None:
    """Pin intra-op threads to the cores we have (oversubscription slowed steps >10x here)."""
    if threads is None:
        threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    torch.set_num_threads(max(1, int(threads)))
