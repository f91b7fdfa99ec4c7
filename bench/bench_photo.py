"""photo-fast on the DPST paper's own 12 pairs, fp32, against dpst, color-matcher and the paper.

``python -m bench --only photo`` as part of the run, or ``python -m bench.bench_photo`` to
update only this section of bench/RESULTS.md. The pairs are read in place from
``../shared/datasets/dpst-paper`` (or ``$STYLEBENCH_DPST_DIR``); where they are absent the
section says so and the run goes on. ``$BENCH_DPST_PAIRS`` (default 1; quick 0) and
``$BENCH_DPST_STEPS`` (default 300) size the dpst runs, which dominate the time on a CPU.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from bench import cpu_capability, dataset_dir, dataset_missing, main
from styletransfer import SegmentationMasks, TransferCache, TransferConfig, transfer
from styletransfer.quality import Quality, labels_from_label_images, score

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# The files of a pair that the photorealistic sections read.
PAIR_FILES = "inN.png, tarN.png, seg_inN.png, seg_tarN.png and luanN.png"
PAIRS = (2, 4, 7, 10, 13, 15, 27, 31, 32, 45, 50, 58)
SECTION = "## Photorealistic transfer on the DPST paper's pairs"
OUT = HERE / "out"
GIB = 1024**3
# The Done-when criteria of each pair, against the paper's published result.
MAX_DISTANCE_RATIO = 1.25
MAX_MEDIAN_RATIO = 1.0
SSIM_SLACK = 0.05
CM_WINS = 10


@dataclass
class Pair:
    """One pair's pictures, labels and scores."""

    n: int
    content: Image.Image
    style: Image.Image
    content_mask: Image.Image
    style_mask: Image.Image
    paper: Image.Image
    outputs: dict[str, Image.Image] = field(default_factory=dict)
    scores: dict[str, Quality] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def score(self, name: str, image: Image.Image) -> Quality:
        lc, ls = labels_from_label_images(
            self.content_mask, self.style_mask, image.size, self.style.size
        )
        self.outputs[name] = image
        self.scores[name] = score(image, self.content, self.style, lc, ls)
        return self.scores[name]


def load(n: int, folder: Path) -> Pair:
    def rgb(name: str) -> Image.Image:
        with Image.open(folder / name) as img:
            return img.convert("RGB")

    content = rgb(f"in{n}.png")
    paper = rgb(f"luan{n}.png")
    if paper.size != content.size:
        paper = paper.resize(content.size, Image.Resampling.LANCZOS)
    return Pair(
        n, content, rgb(f"tar{n}.png"), rgb(f"seg_in{n}.png"), rgb(f"seg_tar{n}.png"), paper
    )


CPU_SECONDS: dict[tuple[int, str], float] = {}


def _timed(fn, key: tuple[int, str] | None = None):
    start, cpu = time.perf_counter(), time.process_time()
    value = fn()
    if key is not None:
        CPU_SECONDS[key] = time.process_time() - cpu
    return value, time.perf_counter() - start


def photo_fast(pair: Pair, cache: TransferCache, refine: bool) -> tuple[Image.Image, float, int]:
    extra = {"refine": 1} if refine else {}
    cfg = TransferConfig(
        method="photo-fast",
        size=max(pair.content.size),
        steps=200,
        device="cpu",
        mixed_precision=False,
        extra=extra,
    )
    masks = SegmentationMasks(pair.content_mask, [pair.style_mask])
    result, seconds = _timed(
        lambda: transfer(pair.content, pair.style, cfg, masks=masks, cache=cache, quality=False),
        (pair.n, "refined" if refine else "default"),
    )
    if result.status != "ok":
        raise RuntimeError(f"photo-fast on pair {pair.n}: {result.status} {result.error}")
    return result.image, seconds, result.steps


def color_matcher(pair: Pair, method: str) -> tuple[Image.Image, float]:
    from color_matcher import ColorMatcher

    src, ref = np.array(pair.content), np.array(pair.style)  # writable: some methods edit them
    out, seconds = _timed(lambda: ColorMatcher().transfer(src=src, ref=ref, method=method))
    image = Image.fromarray(np.clip(np.asarray(out), 0, 255).round().astype(np.uint8))
    return image, seconds


def color_matcher_methods() -> tuple[str, ...]:
    from color_matcher.top_level import METHODS

    return tuple(m for m in METHODS if m != "default")


def dpst(pair: Pair, cache: TransferCache, steps: int, size: int) -> tuple[Image.Image, float]:
    cfg = TransferConfig(method="dpst", size=size, steps=steps, device="cpu", mixed_precision=False)
    masks = SegmentationMasks(pair.content_mask, [pair.style_mask])
    result, seconds = _timed(
        lambda: transfer(pair.content, pair.style, cfg, masks=masks, cache=cache, quality=False)
    )
    return result.image, seconds


_BIG_SCRIPT = textwrap.dedent("""
    import json, sys, time
    from PIL import Image
    from styletransfer import SegmentationMasks, TransferConfig, transfer

    def peak_kib():
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        return 0

    folder, n, size, masked = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
    rgb = lambda name: Image.open(f"{folder}/{name}").convert("RGB")
    content, style = rgb(f"in{n}.png"), rgb(f"tar{n}.png")
    big = content.resize((size, round(size * content.height / content.width)), Image.LANCZOS)
    masks = SegmentationMasks(rgb(f"seg_in{n}.png"), [rgb(f"seg_tar{n}.png")]) if masked else None
    cfg = TransferConfig(method="photo-fast", size=size, device="cpu", mixed_precision=False)
    transfer(content, style, cfg.with_(size=700), masks=masks, quality=False)  # loaded once
    start = time.perf_counter()
    r = transfer(big, style, cfg, masks=masks, quality=False)
    seconds = time.perf_counter() - start
    assert r.status == "ok", r.error
    print(json.dumps({"seconds": seconds, "size": list(r.image.size), "peak_kib": peak_kib()}))
""")


def big_run(folder: Path, n: int, size: int, masked: bool = True) -> dict:
    """photo-fast's default at ``size`` px (the pair's content upscaled), with the pair's masks
    or without, in a fresh process after one run at 700 px (what a batch has loaded)."""
    proc = subprocess.run(
        [sys.executable, "-c", _BIG_SCRIPT, str(folder), str(n), str(size), str(int(masked))],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "ignore"},
    )
    if proc.returncode != 0:
        raise RuntimeError(f"the {size} px run failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def peak_gib() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024 / GIB
    except OSError:
        pass
    return float("nan")


def side_by_side(pairs: list[Pair], names: list[str], path: Path, width: int = 220) -> None:
    """One row per pair: content, style, then each named output, with a header row."""
    labels = ["content", "style", *names]
    rows = []
    for pair in pairs:
        tiles = [pair.content, pair.style, *(pair.outputs.get(k) for k in names)]
        rows.append(tiles)
    heights = [max(round(width * t.height / t.width) for t in row if t is not None) for row in rows]
    header = 18
    canvas = Image.new("RGB", (width * len(labels), header + sum(heights)), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for i, label in enumerate(labels):
        draw.text((i * width + 4, 3), label, fill=(0, 0, 0))
    y = header
    for pair, row, h in zip(pairs, rows, heights, strict=True):
        for i, tile in enumerate(row):
            if tile is None:
                continue
            small = tile.resize((width, round(width * tile.height / tile.width)))
            canvas.paste(small, (i * width, y))
        draw.text((4, y + 3), f"#{pair.n}", fill=(255, 255, 0))
        y += h
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)


def _cpu() -> str:
    name = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as fh:
            names = [line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")]
        name = names[0] if names else name
    except OSError:
        pass
    return f"{name}, {cpu_capability()}, {torch.get_num_threads()} threads"


def run(quick: bool = False) -> str:
    folder = dataset_dir()
    load_avg = os.getloadavg()[0]  # the work already running on the machine as the section begins
    if (missing := dataset_missing(SECTION, folder, PAIR_FILES)) is not None:
        return missing
    lines = [SECTION, ""]
    torch.set_num_threads(min(torch.get_num_threads(), os.cpu_count() or 1))
    dpst_pairs = int(os.environ.get("BENCH_DPST_PAIRS", "0" if quick else "1"))
    dpst_steps = int(os.environ.get("BENCH_DPST_STEPS", "300"))
    dpst_budget = float(os.environ.get("BENCH_DPST_SECONDS", "900"))
    dpst_size = 350
    chosen = PAIRS[:3] if quick else PAIRS
    cache = TransferCache()
    pairs = [load(n, folder) for n in chosen]
    # Warm-up (imports, the feature network, first allocations): not timed.
    photo_fast(pairs[0], cache, refine=False)
    photo_fast(pairs[0], cache, refine=True)
    cm_methods = color_matcher_methods()
    cm_scores: dict[str, list[float]] = {m: [] for m in cm_methods}
    cm_images: dict[tuple[int, str], tuple[Image.Image, float]] = {}
    for pair in pairs:
        pair.score("paper", pair.paper)
        image, pair.seconds["default"], _ = photo_fast(pair, cache, refine=False)
        pair.score("default", image)
        image, pair.seconds["refined"], steps = photo_fast(pair, cache, refine=True)
        pair.seconds["refined_steps"] = steps
        pair.score("refined", image)
        for m in cm_methods:
            cm_images[(pair.n, m)] = color_matcher(pair, m)
            lc, ls = labels_from_label_images(
                pair.content_mask, pair.style_mask, pair.content.size, pair.style.size
            )
            cm_scores[m].append(
                score(cm_images[(pair.n, m)][0], pair.content, pair.style, lc, ls).colour_distance
            )
        print(f"pair {pair.n}: {pair.seconds}", file=sys.stderr, flush=True)
    best_cm = min(cm_methods, key=lambda m: float(np.median(cm_scores[m])))
    for pair in pairs:
        image, pair.seconds["color-matcher"] = cm_images[(pair.n, best_cm)]
        pair.score("color-matcher", image)
    dpst_ran = []
    dpst_start = time.perf_counter()
    for pair in pairs[:dpst_pairs]:
        if time.perf_counter() - dpst_start > dpst_budget:
            break
        image, pair.seconds["dpst"] = dpst(pair, cache, dpst_steps, dpst_size)
        pair.score("dpst", image)
        dpst_ran.append(pair.n)
    dpst_total = time.perf_counter() - dpst_start
    peak = peak_gib()
    big = None
    if not quick:
        big = big_run(folder, PAIRS[0], 4096)
    side_by_side(pairs, ["paper", "default", "refined", "color-matcher"], OUT / "dpst_pairs.png")
    lines += report(
        pairs, best_cm, cm_scores, dpst_ran, dpst_steps, dpst_size, dpst_total, peak, big, load_avg
    )
    return "\n".join(lines) + "\n"


def _fmt(q: Quality | None, field_: str, digits: str) -> str:
    return "—" if q is None else format(getattr(q, field_), digits)


def report(
    pairs, best_cm, cm_scores, dpst_ran, dpst_steps, dpst_size, dpst_total, peak, big, load_avg
):
    names = ["paper", "default", "refined", "color-matcher", "dpst"]
    out = [
        f"CPU: {_cpu()}; fp32 throughout (mixed precision off). The 12 pairs of "
        "`../shared/datasets/dpst-paper` (content 700 px wide) read in place; every output is "
        "scored by `styletransfer.quality` against the content and the style with the pair's "
        "masks: **cd** is the per-segment sliced Wasserstein-2 distance in CIELAB to the "
        "style (64 fixed projections, area-weighted over segments present in both), **SSIM** "
        "the luma SSIM against the content, **res** the share of local variance (5x5) that a "
        "local affine map of the content does not explain. *paper* is the published "
        "`luanN.png`; *default* photo-fast (closed form), *refined* with `refine` 1 (VGG grid "
        f"fit at 192 px, at most 200 steps and 20 s of set-up and optimisation); *color-matcher* its best method here, `{best_cm}`, "
        "without masks (it has none); *dpst* stylebench's at "
        f"{dpst_steps} steps, {dpst_size} px, masks on, on {len(dpst_ran)} of {len(pairs)} pairs "
        f"({', '.join(map(str, dpst_ran)) or 'none'}; {dpst_total:.0f} s in all; the pair count, "
        "steps and time budget are BENCH_DPST_PAIRS, BENCH_DPST_STEPS, BENCH_DPST_SECONDS). Times are wall "
        "seconds of the library call (model loaded) at 700 px; the 1-minute load average "
        f"was {load_avg:.1f} as the section began ({os.cpu_count()} cores; above that, other work "
        "shared them and the times are inflated).",
        "",
        "| pair | " + " | ".join(f"cd {n}" for n in names) + " | SSIM paper | SSIM default | "
        "SSIM refined | res paper | res default | res refined | s default | s refined | s c-m "
        "| cpu s default | cpu s refined |",
        "|" + " ---: |" * (1 + len(names) + 11),
    ]
    ratios, ratios_refined, checks, checks_refined, cm_wins, cm_wins_refined = [], [], [], [], 0, 0
    for p in pairs:
        s = p.scores
        paper = s["paper"]
        cells = [_fmt(s.get(n), "colour_distance", ".2f") for n in names]
        cells += [_fmt(s.get(n), "ssim", ".3f") for n in ("paper", "default", "refined")]
        cells += [_fmt(s.get(n), "affine_residual", ".4f") for n in ("paper", "default", "refined")]
        cells += [f"{p.seconds[k]:.2f}" for k in ("default", "refined", "color-matcher")]
        cells += [f"{CPU_SECONDS.get((p.n, k), float('nan')):.2f}" for k in ("default", "refined")]
        out.append(f"| {p.n} | " + " | ".join(cells) + " |")
        for name, rs, ck in (
            ("default", ratios, checks),
            ("refined", ratios_refined, checks_refined),
        ):
            q = s[name]
            ratio = q.colour_distance / paper.colour_distance
            rs.append(ratio)
            ck.append(
                (
                    ratio <= MAX_DISTANCE_RATIO,
                    q.ssim >= paper.ssim - SSIM_SLACK,
                    q.affine_residual <= paper.affine_residual,
                )
            )
        cm_wins += s["default"].colour_distance < s["color-matcher"].colour_distance
        cm_wins_refined += s["refined"].colour_distance < s["color-matcher"].colour_distance
    out.append("")
    cm_line = ", ".join(f"{m} {np.median(v):.2f}" for m, v in sorted(cm_scores.items()))
    out.append(f"color-matcher's methods by median cd over the pairs: {cm_line}.")
    out.append("")
    n = len(pairs)
    for name, rs, ck, wins in (
        ("default", ratios, checks, cm_wins),
        ("refined", ratios_refined, checks_refined, cm_wins_refined),
    ):
        d_ok = sum(c[0] for c in ck)
        s_ok = sum(c[1] for c in ck)
        r_ok = sum(c[2] for c in ck)
        median = float(np.median(rs))
        verdicts = [
            d_ok == n,
            median <= MAX_MEDIAN_RATIO,
            s_ok == n,
            r_ok == n,
            wins >= min(CM_WINS, n),
        ]
        out.append(
            f"- **{name}**: cd <= {MAX_DISTANCE_RATIO}x the paper's on {d_ok}/{n} pairs "
            f"(worst {max(rs):.2f}x, median {median:.2f}x: {'met' if verdicts[1] else '**MISSED**'}); "
            f"SSIM >= paper's - {SSIM_SLACK} on {s_ok}/{n}; residual <= paper's on {r_ok}/{n}; "
            f"lower cd than color-matcher on {wins}/{n}. "
            f"All criteria: {'met' if all(verdicts) else '**MISSED**'}."
        )
    times = [p.seconds["default"] for p in pairs]
    refined = [p.seconds["refined"] for p in pairs]
    cpu = [CPU_SECONDS.get((p.n, "default"), float("nan")) for p in pairs]
    out.append(
        f"- time at 700 px: default median {np.median(times):.2f} s (max {max(times):.2f}; "
        f"target <= 2 s: {'met' if max(times) <= 2 else '**MISSED**'}), refined median "
        f"{np.median(refined):.1f} s (max {max(refined):.1f}; target <= 30 s: "
        f"{'met' if max(refined) <= 30 else '**MISSED**'}); color-matcher median "
        f"{np.median([p.seconds['color-matcher'] for p in pairs]):.2f} s. Process CPU "
        f"time of the default (all threads): median {np.median(cpu):.2f} s, max {max(cpu):.2f} s "
        "(on a loaded machine the wall time is the CPU time plus the wait for a core). Peak "
        f"resident memory of the whole section's process: {peak:.2f} GiB."
    )
    if big is not None:
        gib = big["peak_kib"] * 1024 / GIB
        out.append(
            f"- 4096 px (pair {PAIRS[0]}'s content upscaled to {big['size'][0]}x{big['size'][1]}), "
            f"default, in a fresh process: {big['seconds']:.2f} s, peak resident {gib:.2f} GiB "
            f"(targets <= 10 s: {'met' if big['seconds'] <= 10 else '**MISSED**'}, <= 4 GiB: "
            f"{'met' if gib <= 4 else '**MISSED**'})."
        )
    out.append(
        "- The side-by-side picture (content, style, paper, default, refined, color-matcher) "
        "is written to `bench/out/dpst_pairs.png` (git-ignored; no picture of the pairs is "
        "committed)."
    )
    return out


if __name__ == "__main__":
    main(run, "bench_photo", SECTION)
