"""Devices and precision: which device runs, whether bf16 autocast applies, how many threads."""

from __future__ import annotations

import contextlib
import os
from functools import lru_cache

import torch


def select_device(name: str = "auto") -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; other names are checked for availability."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available; use auto or cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {name!r} requested but MPS is not available; use auto or cpu")
    return device


@lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """Whether this CPU has native bf16 arithmetic (avx512_bf16 or AMX) and torch uses it.

    ``ATEN_CPU_CAPABILITY=avx2`` (or lower) caps torch's kernels below AVX-512, and with it
    bf16: then this is False, as on a CPU without those units.
    """
    if torch.backends.cpu.get_cpu_capability() not in ("AVX512", "AVX512_BF16", "AMX"):
        return False
    try:
        with open("/proc/cpuinfo") as fh:
            flags = fh.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def autocast_dtype(device: torch.device, enabled: bool) -> torch.dtype | None:
    """bf16 where the hardware has it (CUDA, CPUs with bf16 units), else None (float32)."""
    if not enabled:
        return None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and cpu_has_bf16():
        return torch.bfloat16
    return None


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """An autocast context for the feature network, or a no-op."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def configure_threads() -> int:
    """Cap torch's intra-op threads at the cores this process may use (containers see more)."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 1
    if torch.get_num_threads() > usable:
        torch.set_num_threads(usable)
    return torch.get_num_threads()


@lru_cache(maxsize=1)
def single_threaded_blas() -> None:
    """Hold numpy's and scipy's BLAS to one thread for the rest of the process (the first call).

    Torch's threads already use every core while a transfer runs; the BLAS libraries' own
    threads, between their small calls (3x3 colour transforms, tall products), wait by spinning
    on those cores and slow torch down (photo-fast at 700 px on 2 cores: about a tenth more
    runs an hour on one BLAS thread). Like torch's thread count, a setting of the process:
    ``threadpoolctl.threadpool_limits`` sets it back. Both libraries are loaded by then
    (``styletransfer.run`` imports scipy's).
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")
