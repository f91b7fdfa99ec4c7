"""A short check of the accelerator paths and their speed: ``make gpu-check``.

On a CUDA machine, in under 5 minutes: the tests that exercise the device (they pick CUDA by
themselves), each method at 512/700/1024 px, photo-fast at 4096 px, a batch of 16 against one
at a time for ``fast`` and ``gatys``, feed-forward images/s at 512 px, autocast on and off, and
the float64 matting Laplacian on the device, with peak GPU memory throughout. Every part is
guarded, and the results file (JSON, with a markdown rendering beside it) is rewritten after
each part: a failing part, or a run cut short by ``--timeout``, leaves the others.

``python -m bench.gpu_check --cpu --tiny`` runs the same parts on the CPU at a few dozen
pixels, in seconds; the test suite does, so that the script cannot rot.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# The tests that run on the device when there is one (their transfers use device "auto").
DEVICE_TESTS = (
    "tests/styletransfer/test_engine.py",
    "tests/styletransfer/test_laplacian.py",
    "tests/styletransfer/test_transfer.py",
    "tests/styletransfer/test_fast_method.py",
    "tests/styletransfer/test_fast_network.py",
    "tests/styletransfer/test_photo_fast.py",
)
GIB = 1024**3


class Check:
    """The parts' results, written to ``path`` (JSON) and beside it (markdown) after each part."""

    def __init__(self, path: Path, device: Any, tiny: bool, deadline: float) -> None:
        self.path, self.device, self.tiny, self.deadline = path, device, tiny, deadline
        self.data: dict[str, Any] = {
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "device": _device_name(device),
            "mode": "tiny" if tiny else "full",
            "python": platform.python_version(),
            "parts": {},
        }
        self.write()

    def part(self, name: str) -> Callable[[Callable[[list[dict[str, Any]]], None]], None]:
        """A decorator that runs the function at once as the part ``name``, filling its rows.

        An error is recorded and the check goes on; a part begun after the deadline is skipped.
        """

        def run(fn: Callable[[list[dict[str, Any]]], None]) -> None:
            entry: dict[str, Any] = {"status": "skipped", "rows": []}
            self.data["parts"][name] = entry
            if time.monotonic() >= self.deadline:
                entry["error"] = "out of time (--timeout)"
                self.write()
                return
            start = time.monotonic()
            _reset_peak(self.device)
            try:
                fn(entry["rows"])
                entry["status"] = "ok"
            except Exception as exc:  # noqa: BLE001 - one failing part must not hide the others
                entry["status"] = "failed"
                entry["error"] = f"{type(exc).__name__}: {exc}"
                entry["traceback"] = traceback.format_exc(limit=4)
            entry["seconds"] = round(time.monotonic() - start, 2)
            entry["peak_gib"] = _peak_gib(self.device)
            self.write()

        return run

    def write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.data, indent=1, default=str) + "\n")
        self.path.with_suffix(".md").write_text(markdown(self.data))


def _device_name(device: Any) -> str:
    import torch

    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    from bench import cpu_capability

    return f"cpu: {platform.processor() or platform.machine()}, {cpu_capability()}"


def _reset_peak(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


def _peak_gib(device: Any) -> float | None:
    import torch

    if device.type != "cuda":
        return None
    torch.cuda.synchronize(device)
    return round(torch.cuda.max_memory_allocated(device) / GIB, 3)


def _timed(device: Any, fn: Callable[[], Any]) -> tuple[Any, float]:
    import torch

    start = time.perf_counter()
    value = fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return value, time.perf_counter() - start


def markdown(data: dict[str, Any]) -> str:
    """The results as markdown: one table per part."""
    lines = [
        "# GPU check",
        "",
        f"- device: {data['device']}; mode: {data['mode']}; started {data['started']}",
        "",
    ]
    for name, part in data["parts"].items():
        peak = part.get("peak_gib")
        head = f"## {name}: {part['status']}"
        if "seconds" in part:
            head += f" ({part['seconds']} s" + (f", peak {peak} GiB)" if peak is not None else ")")
        lines += [head, ""]
        if part.get("error"):
            lines += [f"    {part['error']}", ""]
        rows = part.get("rows") or []
        if rows:
            keys = list(dict.fromkeys(k for row in rows for k in row))
            lines.append("| " + " | ".join(keys) + " |")
            lines.append("|" + " --- |" * len(keys))
            for row in rows:
                lines.append("| " + " | ".join(_cell(row.get(k)) for k in keys) + " |")
            lines.append("")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def _random_model(directory: Path, tiny: bool) -> Path:
    """A fast network with random initial weights (its speed does not depend on them)."""
    import torch

    from styletransfer.fast.model import ModelMeta, StyleInfo, save_model
    from styletransfer.fast.network import NetworkSpec, TransformerNet
    from styletransfer.fast.train import TrainConfig

    torch.manual_seed(0)
    spec = NetworkSpec(num_styles=2, base_channels=8, residual_blocks=2) if tiny else None
    spec = spec or NetworkSpec(num_styles=2)
    meta = ModelMeta(
        name="gpu-check",
        network=spec,
        styles=tuple(StyleInfo(f"s{i}", "0" * 64) for i in range(2)),
        training=TrainConfig(
            steps=1,
            content_layers=("relu4_2",),
            style_layers=("relu1_1",),
            base_channels=spec.base_channels,
            residual_blocks=spec.residual_blocks,
        ),
        steps=0,
        dataset_fingerprint="0" * 64,
        dataset_size=0,
    )
    return save_model(directory / "gpu-check", TransformerNet(spec), meta)


def run(args: argparse.Namespace) -> int:
    import torch
    from skimage import data as samples

    from styletransfer import TransferCache, TransferConfig, transfer, transfer_batch
    from styletransfer.device import autocast_dtype
    from styletransfer.fast.infer import stylize_tensor
    from styletransfer.fast.model import load_model
    from styletransfer.laplacian import matting_laplacian, to_torch

    if not args.cpu and not torch.cuda.is_available():
        print(
            "no CUDA device here: run with --cpu (and --tiny) for the smoke mode", file=sys.stderr
        )
        return 2
    device = torch.device("cpu" if args.cpu else "cuda")
    tiny = args.tiny
    check = Check(Path(args.output), device, tiny, time.monotonic() + args.timeout)
    from PIL import Image

    content = Image.fromarray(samples.astronaut())
    style = Image.fromarray(samples.chelsea())
    sizes = (32,) if tiny else (512, 700, 1024)
    steps = 2 if tiny else 50
    base = {"device": device.type, "mixed_precision": False}
    cache = TransferCache()
    models = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    model = str(_random_model(models, tiny))

    def config(method: str, size: int, **kw: Any) -> TransferConfig:
        extra = {"model": model, "style_weights": (1.0, 0.0)} if method == "fast" else {}
        return TransferConfig(
            **{"method": method, "size": size, "steps": steps, **base, **extra, **kw}
        )

    if not tiny and not args.no_tests:

        @check.part("device tests")
        def _(rows: list[dict[str, Any]]) -> None:
            budget = max(30.0, min(150.0, check.deadline - time.monotonic() - 120))
            proc = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pytest",
                    "-q",
                    "-x",
                    "-p",
                    "no:cacheprovider",
                    *DEVICE_TESTS,
                ],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=budget,
                check=False,
            )
            summary = (proc.stdout.strip().splitlines() or ["(no output)"])[-1]
            rows.append({"files": len(DEVICE_TESTS), "exit": proc.returncode, "summary": summary})
            if proc.returncode != 0:
                raise RuntimeError(f"the device tests failed: {summary}")

    @check.part("float64 Laplacian on the device")
    def _(rows: list[dict[str, Any]]) -> None:
        import numpy as np

        side = 24 if tiny else 512
        image = np.asarray(content.resize((side, side)), dtype=np.float64) / 255
        laplacian, build = _timed(torch.device("cpu"), lambda: matting_laplacian(image))
        on_device = to_torch(laplacian, device)
        x = torch.rand(
            side * side, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0)
        )
        product, seconds = _timed(device, lambda: on_device @ x.to(device))
        reference = torch.from_numpy(laplacian @ x.numpy())
        quadratic = float((x.to(device) * product).sum())
        rows.append(
            {
                "pixels": side * side,
                "non-zeros": int(laplacian.nnz),
                "build s (CPU)": build,
                "product s": seconds,
                "max abs(device - CPU)": float((product.cpu() - reference).abs().max()),
                "x'Lx >= 0": quadratic >= -1e-9,
            }
        )
        if quadratic < -1e-9 or not torch.allclose(product.cpu(), reference, atol=1e-9):
            raise RuntimeError("the device Laplacian differs from the CPU one or is indefinite")

    @check.part("warm-up (feature network, first allocations)")
    def _(rows: list[dict[str, Any]]) -> None:
        transfer(content, style, config("gatys", sizes[0], steps=1), cache=cache, quality=False)

    for method in ("gatys", "dpst", "photo-fast", "fast"):

        @check.part(f"{method} by size")
        def _(rows: list[dict[str, Any]], method: str = method) -> None:
            for size in sizes:
                styles = [] if method == "fast" else style
                result, seconds = _timed(
                    device,
                    lambda m=method, s=size, st=styles: transfer(
                        content, st, config(m, s), cache=cache, quality=False
                    ),
                )
                rows.append(
                    {
                        "size": size,
                        "status": result.status,
                        "steps": result.steps,
                        "seconds": seconds,
                        "optimize s": result.seconds.get("optimize"),
                        "peak GiB": _peak_gib(device),
                    }
                )
                if result.status == "failed":
                    raise RuntimeError(f"{method} at {size} px failed: {result.error}")

    @check.part("photo-fast at 4096 px")
    def _(rows: list[dict[str, Any]]) -> None:
        size = 128 if tiny else 4096
        cfg = config("photo-fast", size, upscale=True)
        result, seconds = _timed(
            device, lambda: transfer(content, style, cfg, cache=cache, quality=False)
        )
        rows.append(
            {"size": f"{result.width}x{result.height}", "status": result.status, "seconds": seconds}
        )
        if result.status == "failed":
            raise RuntimeError(result.error)

    count, batch_size = (4, 16) if tiny else (16, 16)
    batch_px = 32 if tiny else 256
    for method in ("fast", "gatys"):

        @check.part(f"{method}: a batch of {count} against one by one")
        def _(rows: list[dict[str, Any]], method: str = method) -> None:
            cfg = config(method, batch_px, steps=2 if tiny else 20)
            styles = [] if method == "fast" else style
            contents = [content.rotate(3 * k) for k in range(count)]
            transfer(contents[0], styles, cfg, cache=cache, quality=False)  # warm-up
            _, batched = _timed(
                device,
                lambda cs=contents, st=styles, c=cfg: transfer_batch(
                    cs, st, c, cache=cache, max_batch=batch_size, quality=False
                ),
            )
            _, alone = _timed(
                device,
                lambda cs=contents, st=styles, c=cfg: [
                    transfer(one, st, c, cache=cache, quality=False) for one in cs
                ],
            )
            rows.append(
                {
                    "size": batch_px,
                    "images": count,
                    "batched images/s": count / batched,
                    "one by one images/s": count / alone,
                    "speed-up": alone / batched,
                }
            )

    @check.part("feed-forward images/s at 512 px")
    def _(rows: list[dict[str, Any]]) -> None:
        net = load_model(model).net.to(device)
        side = 32 if tiny else 512
        low = autocast_dtype(device, True)
        for batch in (1, 8) if tiny else (1, 8, 16):
            x = torch.rand(batch, 3, side, side, generator=torch.Generator().manual_seed(0))
            row: dict[str, Any] = {"batch": batch}
            for label, dtype in (("float32", None), ("autocast", low)):
                if label == "autocast" and dtype is None:
                    row["autocast images/s"] = "n/a (no bf16/fp16 here)"
                    continue
                stylize_tensor(net, x, style=0, batch_size=batch, autocast_dtype=dtype)
                _, seconds = _timed(
                    device,
                    lambda d=dtype, b=batch, t=x: stylize_tensor(
                        net, t, style=0, batch_size=b, autocast_dtype=d
                    ),
                )
                row[f"{label} images/s"] = batch / seconds
            rows.append(row)

    @check.part("autocast on and off (gatys)")
    def _(rows: list[dict[str, Any]]) -> None:
        size = sizes[0]
        for precision in (False, True):
            cfg = config("gatys", size, mixed_precision=precision)
            result, seconds = _timed(
                device, lambda c=cfg: transfer(content, style, c, cache=cache, quality=False)
            )
            rows.append(
                {
                    "autocast": precision,
                    "dtype": str(autocast_dtype(device, precision)),
                    "size": size,
                    "seconds": seconds,
                    "final loss": result.losses.get("total"),
                    "status": result.status,
                }
            )

    check.data["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    check.write()
    failed = [n for n, p in check.data["parts"].items() if p["status"] != "ok"]
    print(f"wrote {check.path} and {check.path.with_suffix('.md')}", file=sys.stderr)
    if failed:
        print(f"not ok: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu_check", description=__doc__)
    parser.add_argument("--cpu", action="store_true", help="run on the CPU (the smoke mode)")
    parser.add_argument("--tiny", action="store_true", help="a few dozen pixels, 2 steps")
    parser.add_argument("--no-tests", action="store_true", help="skip the device tests")
    parser.add_argument(
        "--timeout",
        type=float,
        default=280.0,
        help="seconds for the whole check; parts not begun by then are recorded as skipped "
        "[default: 280]",
    )
    parser.add_argument(
        "-o",
        "--output",
        default=str(HERE / "out" / "gpu-check.json"),
        help="results file (JSON; the markdown goes beside it) [default: bench/out/gpu-check.json]",
    )
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
