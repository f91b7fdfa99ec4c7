"""photo-fast vs dpst side by side: speed at 512 px, quality on photo pairs, batching, memory."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from skimage import data
from skimage.metrics import structural_similarity

from styletransfer import TransferCache, TransferConfig, transfer, transfer_batch
from styletransfer.features import default_layers, load_encoder
from styletransfer.images import resize, rgb_to_yiq, to_tensor
from styletransfer.losses import gram_matrix, style_loss

# Content/style photo pairs from scikit-image's bundled data.
# (Each ships with scikit-image; stereo_motorcycle is the left view of a stereo pair.)
PAIRS = (
    ("astronaut", "coffee"),
    ("chelsea", "hubble_deep_field"),
    ("rocket", "retina"),
    ("stereo_motorcycle", "immunohistochemistry"),
    ("coffee", "astronaut"),
    ("retina", "chelsea"),
)
BATCH_CONTENTS = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "stereo_motorcycle",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
)
LUAN_STEPS = 1000  # per stage: Luan et al. run 1000 steps without, then 1000 with, the Laplacian
GIB = 1024**3


@dataclass(frozen=True)
class Settings:
    """Sizes and step counts of one benchmark run."""

    speed_size: int = 512
    dpst_timed_steps: int = 50  # per stage, for the per-step time
    quality_size: int = 256
    quality_pairs: int = 4
    quality_first: int = 0  # index into PAIRS of the first pair (to split the work)
    dpst_quality_steps: int = 600  # two stages of 300
    batch_size: int = 128
    batch_pairs: int = 16
    batch_steps: int = 100  # steps per pair of an optimising method (photo-fast's default: none)
    memory_sizes: tuple[int, ...] = (512, 1024)
    memory_steps: int = 5


FULL = Settings()
QUICK = Settings(
    speed_size=128,
    dpst_timed_steps=4,
    quality_size=96,
    quality_pairs=4,
    dpst_quality_steps=16,
    batch_size=96,
    batch_pairs=8,
    batch_steps=10,
    memory_sizes=(128, 256),
    memory_steps=2,
)


def photo(name: str) -> Image.Image:
    """A bundled scikit-image photograph as RGB."""
    array = getattr(data, name)()
    if isinstance(array, tuple):  # stereo_motorcycle: (left, right, disparity)
        array = array[0]
    if array.ndim == 2:
        array = np.stack([array] * 3, axis=-1)
    return Image.fromarray(np.ascontiguousarray(array[..., :3])).convert("RGB")


class Evaluator:
    """Style distance (Gram loss, bundled VGG19, Gatys' style layers, float32) and luma SSIM."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.layers = default_layers("vgg19").style
        self.encoder = load_encoder("vgg19", self.layers, None, torch.device("cpu"))

    def style_distance(self, output: Image.Image, style: Image.Image) -> float:
        with torch.no_grad():
            out = self.encoder(to_tensor(output))
            ref = self.encoder(to_tensor(resize(style, self.size)))
            return sum(
                float(style_loss(gram_matrix(out[k]), gram_matrix(ref[k]))) for k in self.layers
            )

    @staticmethod
    def ssim(output: Image.Image, content: Image.Image) -> float:
        y_out = rgb_to_yiq(to_tensor(output))[0, 0].numpy()
        y_ref = rgb_to_yiq(to_tensor(content.resize(output.size, Image.Resampling.LANCZOS)))
        return float(structural_similarity(y_out, y_ref[0, 0].numpy(), data_range=1.0))


def _time(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def speed(s: Settings, cache: TransferCache) -> dict[str, float]:
    """photo-fast whole vs dpst's per-step time in each stage at ``speed_size``."""
    content, style = photo("astronaut"), photo("coffee")
    fast, fast_s = _time(
        lambda: transfer(
            content, style, TransferConfig(method="photo-fast", size=s.speed_size), cache=cache
        )
    )
    base = TransferConfig(method="dpst", size=s.speed_size, steps=s.dpst_timed_steps)
    stage1, stage1_s = _time(
        lambda: transfer(content, style, base.with_(photoreal_weight=0.0), cache=cache)
    )
    stage2, _ = _time(lambda: transfer(content, style, base, cache=cache))
    per1 = stage1.seconds["optimize"] / max(stage1.steps, 1)
    per2 = stage2.seconds["optimize"] / max(stage2.steps, 1)
    # The Laplacian of this content was cached by the timed run: rebuild it once, timed.
    lap_s = stage2.seconds["laplacian"]
    if lap_s < 1e-3:
        from styletransfer.laplacian import matting_laplacian

        array = to_tensor(resize(content, s.speed_size))[0].permute(1, 2, 0).double().numpy()
        _, lap_s = _time(lambda: matting_laplacian(array))
    dpst_s = stage1.seconds["prepare"] + lap_s + LUAN_STEPS * (per1 + per2)
    return {
        "fast_s": fast_s,
        "fast_steps": fast.steps,
        "fast_status": fast.status,
        "per1": per1,
        "per2": per2,
        "steps1": stage1.steps,
        "steps2": stage2.steps,
        "lap_s": lap_s,
        "dpst_s": dpst_s,
        "stage1_s": stage1_s,
    }


def quality(s: Settings, cache: TransferCache) -> list[dict]:
    """dpst (two stages) vs photo-fast on photo pairs: style distance and luma SSIM."""
    ev = Evaluator(s.quality_size)
    rows = []
    for content_name, style_name in PAIRS[s.quality_first : s.quality_first + s.quality_pairs]:
        content, style = photo(content_name), photo(style_name)
        row = {
            "pair": f"{content_name} / {style_name}",
            "content_sd": ev.style_distance(resize(content, s.quality_size), style),
            "content_ssim": 1.0,
        }
        for name, cfg in (
            (
                "dpst",
                TransferConfig(
                    method="dpst", size=s.quality_size, steps=s.dpst_quality_steps, two_stage=True
                ),
            ),
            ("fast", TransferConfig(method="photo-fast", size=s.quality_size)),
        ):
            result, seconds = _time(
                lambda c=content, st=style, cfg=cfg: transfer(c, st, cfg, cache=cache)
            )
            row[f"{name}_sd"] = ev.style_distance(result.image, style)
            row[f"{name}_ssim"] = ev.ssim(result.image, content)
            row[f"{name}_s"] = seconds
            row[f"{name}_status"] = result.status
        rows.append(row)
        print(f"quality: {row}", file=sys.stderr, flush=True)
    return rows


def batching(s: Settings) -> dict[str, float | str]:
    """``batch_pairs`` photo-fast pairs sharing two styles: one batch per style vs one by one."""
    contents = [resize(photo(n), s.batch_size) for n in BATCH_CONTENTS]
    contents = [c.resize((s.batch_size, s.batch_size)) for c in contents]  # one size: one batch
    styles = [photo("coffee"), photo("retina")]
    per_style = s.batch_pairs // 2
    cfg = TransferConfig(method="photo-fast", size=s.batch_size, steps=s.batch_steps)
    # Warm the encoder and the style targets so that neither side pays for them.
    warm = TransferCache()
    for style in styles:
        transfer(contents[0], style, cfg.with_(steps=1), cache=warm)
    jobs = [(contents[i % len(contents)], styles[k]) for k in range(2) for i in range(per_style)]
    _, one_s = _time(lambda: [transfer(c, st, cfg, cache=warm) for c, st in jobs])
    _, batch_s = _time(
        lambda: [
            transfer_batch([c for c, st in jobs if st is style], style, cfg, cache=warm)
            for style in styles
        ]
    )
    return {"one_s": one_s, "batch_s": batch_s, "pairs": len(jobs), **network_batching(s)}


def network_batching(s: Settings) -> dict[str, float | str]:
    """Per-image time of a VGG19 forward and backward pass, batch of 8 vs one, mixed precision."""
    from styletransfer.device import autocast, autocast_dtype, select_device

    device = select_device("auto")
    dtype = autocast_dtype(device, True)
    layers = default_layers("vgg19")
    encoder = load_encoder(
        "vgg19", tuple(dict.fromkeys((*layers.content, *layers.style))), None, device
    )
    out: dict[str, float | str] = {}
    for size in sorted({s.batch_size, 2 * s.batch_size}):
        per_image = {}
        for batch in (1, 8):
            x = torch.rand(batch, 3, size, size, device=device, requires_grad=True)

            def step(x: torch.Tensor = x) -> None:
                with autocast(device, dtype):
                    feats = encoder(x)
                sum(v.float().pow(2).mean() for v in feats.values()).backward()
                if device.type == "cuda":
                    torch.cuda.synchronize()

            step()  # warm-up
            _, seconds = _time(lambda step=step: [step() for _ in range(3)])
            per_image[batch] = seconds / 3 / batch
        out[f"vgg_{size}"] = per_image[8] / per_image[1]
    out["device"] = device.type
    return out


_MEMORY_SCRIPT = textwrap.dedent("""
    import json, resource, sys
    import numpy as np
    from PIL import Image
    from skimage import data
    from styletransfer import TransferConfig, transfer

    def peak_kib():
        # VmHWM: the peak resident size of this process image. ru_maxrss would also count the
        # parent's memory copied at fork, before the exec.
        try:
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1])
        except OSError:
            pass
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return rss // 1024 if sys.platform == "darwin" else rss  # macOS: bytes

    method, size, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    before = peak_kib()
    if method != "none":
        cfg = TransferConfig(method=method, size=size, steps=steps, device="cpu",
                             two_stage=True if method == "dpst" else None)
        r = transfer(Image.fromarray(data.astronaut()), Image.fromarray(data.coffee()), cfg)
        assert r.status == "ok", r.error
    print(json.dumps({"before_kib": before, "peak_kib": peak_kib()}))
""")


def memory(method: str, size: int, steps: int) -> float:
    """Peak resident memory (GiB) of one transfer in a fresh process."""
    proc = subprocess.run(
        [sys.executable, "-c", _MEMORY_SCRIPT, method, str(size), str(steps)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    if proc.returncode != 0:
        raise RuntimeError(f"memory run {method} {size} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])["peak_kib"] * 1024 / GIB


def _verdict(ok: bool) -> str:
    return "met" if ok else "**MISSED**"


def _fast_steps(steps: int) -> str:
    return "closed form, no optimiser steps" if steps == 0 else f"{steps} refinement steps"


def speed_section(s: Settings, cache: TransferCache) -> list[str]:
    """(a) speed at ``speed_size``."""
    sp = speed(s, cache)
    ratio = sp["dpst_s"] / sp["fast_s"]
    return [
        f"(a) Speed at {s.speed_size} px (astronaut / coffee, CPU, {torch.get_num_threads()} "
        f"threads). dpst with Luan et al.'s schedule ({LUAN_STEPS} + {LUAN_STEPS} L-BFGS "
        f"steps) is **extrapolated** from its measured per-step time over {sp['steps1']} steps "
        f"of stage 1 (no Laplacian) and {sp['steps2']} steps of stage 2 (with it), plus its "
        "measured preparation and Laplacian build; photo-fast is measured whole, with its "
        "default settings.",
        "",
        f"| method | measured | time at {s.speed_size} px |",
        "| --- | --- | --- |",
        f"| dpst stage 1 | {sp['per1']:.3f} s/step over {sp['steps1']} steps | "
        f"{LUAN_STEPS * sp['per1']:.0f} s for {LUAN_STEPS} steps (extrapolated) |",
        f"| dpst stage 2 | {sp['per2']:.3f} s/step over {sp['steps2']} steps | "
        f"{LUAN_STEPS * sp['per2']:.0f} s for {LUAN_STEPS} steps (extrapolated) |",
        f"| dpst, Luan schedule | Laplacian build {sp['lap_s']:.2f} s | "
        f"**{sp['dpst_s']:.0f} s** (extrapolated) |",
        f"| photo-fast | whole run, {_fast_steps(sp['fast_steps'])}, {sp['fast_status']} | "
        f"**{sp['fast_s']:.1f} s** (measured) |",
        "",
        f"photo-fast is **{ratio:.0f}x** faster than dpst (Luan schedule): target >= 50x, "
        f"{_verdict(ratio >= 50)}.",
    ]


def quality_section(s: Settings, cache: TransferCache) -> list[str]:
    """(a) quality on photo pairs."""
    q = quality(s, cache)
    sd_ratio = [r["fast_sd"] / r["dpst_sd"] for r in q]
    ssim_ok = all(r["fast_ssim"] >= r["dpst_ssim"] for r in q)
    sd_ok = all(x <= 1.10 for x in sd_ratio)
    lines = [
        f"Quality at {s.quality_size} px on {len(q)} photo pairs: dpst at 2 x "
        f"{s.dpst_quality_steps // 2} steps vs photo-fast (default settings). Style distance: "
        "sum over relu1_1..relu5_1 of the mean squared Gram difference (bundled VGG19, float32) "
        "to the style image at the same size; lower is better. SSIM: of the luminance against "
        "the content image; higher keeps more structure. The content image's own style "
        "distance is the reference column.",
        "",
        "| pair | content: style dist. | dpst: style dist. | photo-fast: style dist. "
        "| fast/dpst | dpst SSIM | photo-fast SSIM | dpst s | photo-fast s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r, x in zip(q, sd_ratio, strict=True):
        status = "" if r["dpst_status"] == "ok" else f" ({r['dpst_status']})"
        lines.append(
            f"| {r['pair']} | {r['content_sd']:.4g} | {r['dpst_sd']:.4g}{status} | "
            f"{r['fast_sd']:.4g} | {x:.2f} | {r['dpst_ssim']:.3f} | {r['fast_ssim']:.3f} | "
            f"{r['dpst_s']:.0f} | {r['fast_s']:.1f} |"
        )
    lines += [
        "",
        f"Style distance no more than 10% worse than dpst's on every pair: {_verdict(sd_ok)} "
        f"(worst ratio {max(sd_ratio):.2f}, geometric mean "
        f"{float(np.exp(np.mean(np.log(sd_ratio)))):.2f}). SSIM no lower than dpst's on every "
        f"pair: {_verdict(ssim_ok)}.",
    ]
    return lines


def batch_section(s: Settings) -> list[str]:
    """(c) a batch sharing two styles vs one by one."""
    b = batching(s)
    ratio = b["batch_s"] / b["one_s"]
    vgg = ", ".join(
        f"{k.removeprefix('vgg_')} px: {v:.2f}x" for k, v in b.items() if k.startswith("vgg_")
    )
    if b["device"] == "cpu":
        verdict = (
            f"This CPU ({torch.get_num_threads()} threads) gains little or nothing from "
            "batching; a GPU, whose one-image passes leave most of it idle, is where batches pay."
        )
    else:
        verdict = f"Measured on {b['device']}."
    return [
        f"(c) {b['pairs']} photo-fast pairs at {s.batch_size} px (default settings: the closed "
        "form) sharing 2 styles: "
        f"`transfer_batch` (one batch per style) took {b['batch_s']:.1f} s, the same pairs one "
        f"by one through `transfer` {b['one_s']:.1f} s (both with the network and the style "
        f"targets already cached): ratio **{ratio:.2f}x**, target <= 0.7x, "
        f"{_verdict(ratio <= 0.7)}.",
        "",
        "Why, on this machine: a batch saves only what the pairs share (the network, the style "
        "targets: cached either way) and gains only if the hardware runs a batch faster per "
        "image. Per-image time of one VGG19 forward and backward pass (mixed precision, the "
        f"work of every optimiser step) in a batch of 8 against one at a time: {vgg}. " + verdict,
    ]


def memory_section(s: Settings) -> list[str]:
    """(d) peak memory per method and size, each in a fresh process."""
    mem = {
        (m, size): memory(m, size, s.memory_steps)
        for size in s.memory_sizes
        for m in ("photo-fast", "gatys", "dpst")
    }
    baseline = memory("none", 64, 0)
    big = max(s.memory_sizes)
    lines = [
        f"(d) Peak resident memory (GiB, `VmHWM` of a fresh process per run, "
        f"{s.memory_steps} optimiser steps, astronaut / coffee, dpst two-stage; a process that "
        f"only imports the libraries peaks at {baseline:.2f} GiB):",
        "",
        "| method | " + " | ".join(f"{size} px" for size in s.memory_sizes) + " |",
        "| --- | " + " | ".join("---" for _ in s.memory_sizes) + " |",
    ]
    for m in ("photo-fast", "gatys", "dpst"):
        lines.append(
            f"| {m} | " + " | ".join(f"{mem[(m, size)]:.2f}" for size in s.memory_sizes) + " |"
        )
    lbfgs_gib = 2 * 100 * 3 * big * big * 4 / GIB
    lines += [
        "",
        f"photo-fast at {big} px within 4 GiB: {_verdict(mem[('photo-fast', big)] <= 4.0)}. "
        f"gatys and dpst grow further with steps: L-BFGS keeps 100 pairs of image-sized "
        f"vectors, {lbfgs_gib:.1f} GiB more at {big} px once its history is full; photo-fast's "
        "default runs no optimiser (with --refine, its optimiser state is the size of its "
        "grid: kilobytes).",
    ]
    return lines


SECTIONS = ("speed", "quality", "batch", "memory")


def run(
    quick: bool = False, settings: Settings | None = None, sections: tuple[str, ...] = SECTIONS
) -> str:
    s = settings or (QUICK if quick else FULL)
    cache = TransferCache()
    parts = []
    for name in sections:
        if name == "speed":
            parts.append(speed_section(s, cache))
        elif name == "quality":
            parts.append(quality_section(s, cache))
        elif name == "batch":
            parts.append(batch_section(s))
        elif name == "memory":
            parts.append(memory_section(s))
        else:
            raise ValueError(f"unknown section {name!r}; the sections are: {', '.join(SECTIONS)}")
        if name == "quality":
            parts.append(
                ["(b) gatys vs the `pastiche` package: see the section of `bench/bench_gatys.py`."]
            )
    lines = ["## Speed: photo-fast vs dpst, side by side", ""]
    for part in parts:
        lines += part + [""]
    if settings is not None and settings not in (FULL, QUICK):
        changed = {k: v for k, v in dataclasses.asdict(settings).items() if v != getattr(FULL, k)}
        lines.append(f"_Run with settings changed from the full run's: {changed}._")
    if quick:
        lines.append(
            "_Quick mode: sizes and steps far below the targets' settings; the "
            "verdicts above are not the issue's targets._"
        )
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_speed", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument(
        "--only",
        nargs="*",
        choices=SECTIONS,
        default=list(SECTIONS),
        help="sections to run (default: all)",
    )
    names = sorted(f.name for f in dataclasses.fields(Settings))
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="NAME=VALUE",
        help=f"override settings: {', '.join(names)}",
    )
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL
    for item in args.set:
        name, _, value = item.partition("=")
        if name not in names:
            parser.error(f"unknown setting {name!r}; the settings are: {', '.join(sorted(names))}")
        parsed = tuple(int(v) for v in value.split(",")) if name == "memory_sizes" else int(value)
        settings = dataclasses.replace(settings, **{name: parsed})
    print(run(quick=args.quick, settings=settings, sections=tuple(args.only)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
