"""Benchmarks: each ``bench_<topic>.py`` has ``run(quick) -> str`` returning a markdown section."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"


def cpu_capability() -> str:
    """torch's CPU kernel level, and whether ``ATEN_CPU_CAPABILITY`` forced it."""
    import torch

    forced = os.environ.get("ATEN_CPU_CAPABILITY")
    note = f" (ATEN_CPU_CAPABILITY={forced})" if forced else ""
    return f"torch CPU capability {torch.backends.cpu.get_cpu_capability()}{note}"


def dataset_dir() -> Path:
    """The DPST paper's pairs, read in place: ``$STYLEBENCH_DPST_DIR`` or ../shared beside."""
    env = os.environ.get("STYLEBENCH_DPST_DIR")
    return Path(env) if env else HERE.parent.parent / "shared" / "datasets" / "dpst-paper"


def dataset_missing(section: str, folder: Path, files: str) -> str | None:
    """The section's text when the DPST pairs are not in ``folder`` (it did not run), else None.

    ``files``: which of the pairs' files the section reads, for the message.
    """
    if (folder / "in2.png").is_file():
        return None
    return (
        f"{section}\n\nThe DPST pairs are not here ({folder} is missing): this section did not "
        f"run. Set STYLEBENCH_DPST_DIR to the folder of {files} to run it.\n"
    )


def update_results(section: str, heading: str, path: Path = RESULTS) -> None:
    """Replace (or append) the section under ``heading`` in ``path``, leaving the others."""
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    start = text.find(heading)
    if start < 0:
        text = text.rstrip() + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(heading))
        text = text[:start] + section.rstrip() + "\n" + ("" if end < 0 else text[end:])
    path.write_text(text)


def main(run: Callable[..., str], name: str, heading: str) -> None:
    """``python -m bench.<name> [--quick]``: print the section; a full run also writes it to
    RESULTS.md."""
    quick = "--quick" in sys.argv
    start = time.perf_counter()
    body = run(quick=quick)
    body = body.rstrip() + f"\n\n_{name} took {time.perf_counter() - start:.0f} s._\n"
    print(body)
    if not quick:
        update_results(body, heading)
