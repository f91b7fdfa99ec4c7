"""Benchmarks: each ``bench_<topic>.py`` has ``run(quick) -> str`` returning a markdown section."""

from __future__ import annotations

import os


def cpu_capability() -> str:
    """torch's CPU kernel level, and whether ``ATEN_CPU_CAPABILITY`` forced it."""
    import torch

    forced = os.environ.get("ATEN_CPU_CAPABILITY")
    note = f" (ATEN_CPU_CAPABILITY={forced})" if forced else ""
    return f"torch CPU capability {torch.backends.cpu.get_cpu_capability()}{note}"
