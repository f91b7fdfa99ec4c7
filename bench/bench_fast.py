"""Fast feed-forward inference: images per second at 256 and 512 px, and the speed-up over gatys."""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

from styletransfer import TransferConfig, transfer
from styletransfer.cache import TransferCache
from styletransfer.device import autocast_dtype, configure_threads, select_device
from styletransfer.fast.infer import stylize_tensor
from styletransfer.fast.model import ModelMeta, StyleInfo, save_model
from styletransfer.fast.network import NetworkSpec, TransformerNet
from styletransfer.fast.train import TrainConfig

TARGET_RATIO = 100.0


def _skimage_file(name: str) -> Path:
    import skimage

    return Path(skimage.__file__).parent / "data" / name


def _images_per_second(net: TransformerNet, size: int, batch: int, dtype, rounds: int) -> float:
    x = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(0))
    stylize_tensor(net, x, style=0, batch_size=batch, autocast_dtype=dtype)  # warm-up
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        stylize_tensor(net, x, style=0, batch_size=batch, autocast_dtype=dtype)
        best = min(best, time.perf_counter() - start)
    return batch / best


def _untrained_model(directory: Path, num_styles: int) -> Path:
    """A default-size network (Johnson et al.'s shape) with initial weights, saved as a model."""
    torch.manual_seed(0)
    spec = NetworkSpec(num_styles=num_styles)
    meta = ModelMeta(
        name="bench",
        network=spec,
        styles=tuple(StyleInfo(f"s{i}", "0" * 64) for i in range(num_styles)),
        training=TrainConfig(steps=1, content_layers=("relu4_2",), style_layers=("relu1_1",)),
        steps=0,
        dataset_fingerprint="0" * 64,
        dataset_size=0,
    )
    return save_model(directory / "bench", TransformerNet(spec), meta)


def run(quick: bool = False) -> str:
    import tempfile

    device = select_device("auto")
    threads = configure_threads() if device.type == "cpu" else None
    bf16 = autocast_dtype(device, True)
    rounds = 2 if quick else 3
    gatys_steps = 5 if quick else 50
    default_steps = TransferConfig().steps
    content, style = _skimage_file("astronaut.png"), _skimage_file("ihc.png")

    rows = []
    net = TransformerNet(NetworkSpec(num_styles=4)).to(device).eval()
    for size in (256, 512):
        for batch in (1, 4) if size == 256 else (1, 2):
            fp32 = _images_per_second(net, size, batch, None, rounds)
            half = _images_per_second(net, size, batch, bf16, rounds) if bf16 else None
            rows.append((size, batch, fp32, half))

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = _untrained_model(Path(tmp), num_styles=2)
        cache = TransferCache()
        fast_cfg = TransferConfig(
            method="fast",
            model=str(model_dir),
            size=256,
            style_weights=(0.5, 0.5),
            device=device.type,
            mixed_precision=False,
        )
        transfer(content, [], fast_cfg, cache=cache)  # loads and caches the model
        fast_times = []
        for _ in range(rounds + 2):
            start = time.perf_counter()
            fast_result = transfer(content, [], fast_cfg, cache=cache)
            fast_times.append(time.perf_counter() - start)
        fast_s = min(fast_times)

    gatys_cfg = TransferConfig(method="gatys", size=256, steps=gatys_steps, device=device.type)
    start = time.perf_counter()
    gatys_result = transfer(content, style, gatys_cfg, cache=TransferCache())
    gatys_s = time.perf_counter() - start
    for label, res in (("fast", fast_result), ("gatys", gatys_result)):
        if res.status == "failed" or (label == "gatys" and res.steps == 0):
            raise RuntimeError(f"{label} did not run ({res.status}): {res.error}")
    per_step = gatys_result.seconds["optimize"] / max(gatys_result.steps, 1)
    gatys_default_s = gatys_s - gatys_result.seconds["optimize"] + per_step * default_steps
    measured_ratio = gatys_s / fast_s
    default_ratio = gatys_default_s / fast_s
    verdict = "meets" if default_ratio >= TARGET_RATIO else "MISSES"

    table = "\n".join(
        f"| {size} | {batch} | {fp32:.2f} | "
        + (f"{half:.2f} ({half / fp32:.2f}x)" if half else "n/a (no bf16 on this device)")
        + " |"
        for size, batch, fp32, half in rows
    )
    where = f"{device}" + (f", {threads} threads" if threads else "")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    where += f"; 1-minute load average at the end {load:.1f} on {os.cpu_count()} cores"
    return f"""## Fast feed-forward networks: inference speed and speed-up over gatys

Device: {where}. The transformer is the default shape (Johnson et al. 2016: 32-64-128 channels,
5 residual blocks, conditional instance norm for 4 styles) with its **initial, untrained
weights**: inference time does not depend on the weight values, so training it first would
not change these numbers. Images per second through `stylize_tensor` (torch.inference_mode),
best of {rounds} rounds after a warm-up.

| size (px) | batch | images/s float32 | images/s bf16 autocast |
| --- | --- | --- | --- |
{table}

One 256 px image end to end through `styletransfer.transfer` (image loading, resizing and
saving-ready PIL output included; the fast model loaded once and cached, as in a batch):

| method | seconds | status |
| --- | --- | --- |
| fast (untrained 2-style model, blend 0.5/0.5, float32) | {fast_s:.3f} | {fast_result.status} |
| gatys, {gatys_result.steps} L-BFGS steps (measured) | {gatys_s:.2f} | {gatys_result.status} |
| gatys, {default_steps} steps (its default: measured set-up + \
{per_step:.3f} s/step x {default_steps}) | {gatys_default_s:.1f} | extrapolated |

- speed-up of fast over gatys at its default {default_steps} steps: **{default_ratio:,.0f}x** —
  {verdict} the {TARGET_RATIO:.0f}x target.
- speed-up over only {gatys_result.steps} measured gatys steps (no extrapolation, a lower
  bound on the real ratio): {measured_ratio:,.0f}x.
- The ratio is what matters across machines: both run on the same device in one process
  (absolute images/s move with the machine's load; the ratio much less).
  Gatys pays a VGG19 forward and backward per evaluation (several per L-BFGS step with the
  line search); the fast network pays one forward pass of a ~1.7 M-parameter network once
  trained (training is the overnight cost, e.g. 40 000 steps).
"""


if __name__ == "__main__":
    print(run())
