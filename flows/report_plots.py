"""The report's matplotlib figures; each returns a sentence on what it shows, or None if empty."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.axis import Axis  # noqa: E402
from matplotlib.ticker import EngFormatter, FixedLocator, FuncFormatter, NullFormatter  # noqa: E402

FIGSIZE = (6.4, 4.0)
DPI = 100
PALETTE = plt.get_cmap("tab10").colors


def colours(labels: Sequence[str]) -> dict[str, tuple[float, ...]]:
    """One colour per label, the same in every figure of a page."""
    return {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(labels)}


def plain(text: str) -> str:
    """Text for a matplotlib label: a ``$`` in stored text must not start mathtext."""
    return text.replace("$", r"\$")


def _nice(value: float) -> float:
    """``value`` rounded to two significant digits."""
    if value <= 0 or not math.isfinite(value):
        return value
    digits = 1 - int(math.floor(math.log10(value)))
    return round(value, digits)


def _log_ticks(axis: Axis, lo: float, hi: float, label=None) -> None:
    """Ticks at 1, 2, 5 x 10^k inside [lo, hi] (at least three), labelled as plain numbers
    (or by ``label``)."""
    lo, hi = max(lo, 1e-12), max(hi, lo * 1.0001)
    ticks = [
        m * 10.0**k
        for k in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1)
        for m in (1, 2, 5)
        if lo <= m * 10.0**k <= hi
    ]
    if len(ticks) < 3:
        ticks = sorted({_nice(v) for v in np.geomspace(lo, hi, 4)})
    axis.set_major_locator(FixedLocator(ticks))
    axis.set_major_formatter(FuncFormatter(lambda v, _: (label or _plain_number)(v)))
    axis.set_minor_formatter(NullFormatter())


def _plain_number(value: float) -> str:
    return f"{value:g}"


def pixels(value: float) -> str:
    """A pixel count as a reader says it: 40k, 1.2M."""
    for scale, suffix in ((1e6, "M"), (1e3, "k")):
        if value >= scale:
            return f"{value / scale:g}{suffix}"
    return f"{value:g}"


def _padded(values: Sequence[float]) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    return lo / 1.3, hi * 1.3


def _save(fig: plt.Figure, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


# Sizes closer than this factor count as one (outputs of one size setting differ by aspect).
SIZE_SPREAD = 1.5


@dataclass(frozen=True)
class Fit:
    """``seconds = a * pixels ** exponent``, fitted on log-log axes."""

    exponent: float
    a: float


def fit_power(points: Sequence[tuple[float, float]]) -> Fit | None:
    """A least-squares line through log(pixels), log(seconds); None unless the sizes span a
    factor of ``SIZE_SPREAD`` or more."""
    pts = [(x, y) for x, y in points if x > 0 and y > 0]
    if not pts or max(x for x, _ in pts) < SIZE_SPREAD * min(x for x, _ in pts):
        return None
    lx = np.log10([x for x, _ in pts])
    ly = np.log10([y for _, y in pts])
    slope, intercept = np.polyfit(lx, ly, 1)
    return Fit(float(slope), float(10**intercept))


def time_vs_size(
    groups: Mapping[str, Sequence[tuple[float, float]]],
    palette: Mapping[str, tuple[float, ...]],
    path: Path,
) -> str | None:
    """Seconds per image against output pixels, log-log: a point per run, a fitted line per
    group whose sizes differ; None where all runs have about one size."""
    groups = {k: [(x, y) for x, y in v if x > 0 and y > 0] for k, v in groups.items()}
    groups = {k: v for k, v in groups.items() if v}
    all_x = [x for v in groups.values() for x, _ in v]
    all_y = [y for v in groups.values() for _, y in v]
    if not all_x or max(all_x) < SIZE_SPREAD * min(all_x):
        return None
    fig, ax = plt.subplots(figsize=FIGSIZE)
    notes = []
    for label, pts in groups.items():
        colour = palette.get(label)
        xs, ys = zip(*pts, strict=True)
        fit = fit_power(pts)
        name = plain(label)
        if fit is not None:
            line = np.geomspace(min(xs), max(xs), 20)
            ax.plot(line, fit.a * line**fit.exponent, color=colour, linewidth=1.5)
            name += f" (time ∝ pixels^{fit.exponent:.2f})"
            notes.append(
                f"{label}: time grows as pixels^{fit.exponent:.2f}"
                if abs(fit.exponent) >= 0.2
                else f"{label}: time hardly changes with size (pixels^{fit.exponent:.2f}: "
                "fixed costs dominate)"
            )
        ax.scatter(xs, ys, color=colour, s=28, alpha=0.8, label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(*_padded(all_x))
    ax.set_ylim(*_padded(all_y))
    _log_ticks(ax.xaxis, *ax.get_xlim(), label=pixels)
    _log_ticks(ax.yaxis, *ax.get_ylim())
    ax.set_xlabel("output size (pixels, width × height)")
    ax.set_ylabel("seconds per image")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)
    if not notes:
        return "Each group ran at one size, so no line is fitted."
    return "; ".join(notes) + " (an exponent of 1 is linear in the pixel count)."


def _frontier(points: Sequence[tuple[str, float, float]], higher_better: bool) -> list[int]:
    """Indices of the points no other point beats on both time and quality, fastest first."""
    sign = -1.0 if higher_better else 1.0  # quality as "lower is better"
    order = sorted(range(len(points)), key=lambda i: (points[i][1], sign * points[i][2]))
    kept: list[int] = []
    best = math.inf
    for i in order:
        if sign * points[i][2] < best:
            kept.append(i)
            best = sign * points[i][2]
    return kept


QUALITY_AXES = (
    ("quality_ssim", "SSIM with the content\n(higher: more structure kept)", True),
    ("quality_colour_distance", "colour distance to the style\n(lower: closer colours)", False),
)


def cost_quality(
    groups: Mapping[str, Sequence[Mapping[str, float | None]]],
    palette: Mapping[str, tuple[float, ...]],
    path: Path,
) -> str | None:
    """Each quality metric against seconds per image: a faint point per run, a large one at
    each group's medians, and the frontier of groups no other beats on both."""
    panels = [
        (key, label, higher)
        for key, label, higher in QUALITY_AXES
        if any(_ok(r.get(key)) and _ok(r.get("seconds")) for v in groups.values() for r in v)
    ]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(6.4 * len(panels), 4.4), squeeze=False)
    notes = []
    for ax, (key, label, higher) in zip(axes[0], panels, strict=True):
        medians: list[tuple[str, float, float]] = []
        all_t = []
        for name, runs in groups.items():
            pts = [(r["seconds"], r[key]) for r in runs if _ok(r.get(key)) and _ok(r["seconds"])]
            pts = [(t, q) for t, q in pts if t > 0]
            if not pts:
                continue
            ts, qs = zip(*pts, strict=True)
            all_t += ts
            colour = palette.get(name)
            ax.scatter(ts, qs, color=colour, s=12, alpha=0.35)
            mt, mq = float(np.median(ts)), float(np.median(qs))
            ax.scatter([mt], [mq], color=colour, s=80, edgecolor="black", label=plain(name))
            medians.append((name, mt, mq))
        front = _frontier(medians, higher)
        if len(front) > 1:
            ax.plot(
                [medians[i][1] for i in front],
                [medians[i][2] for i in front],
                color="0.4",
                linestyle="--",
                linewidth=1,
            )
        ax.set_xscale("log")
        ax.set_xlim(*_padded(all_t))
        _log_ticks(ax.xaxis, *ax.get_xlim())
        ax.set_xlabel("seconds per image")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        short = label.split("\n")[0]
        notes.append(f"{short}: {', '.join(medians[i][0] for i in front)}")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.tight_layout()
    rows = math.ceil(len(labels) / 3)
    fig.subplots_adjust(bottom=0.12 + 0.06 * rows)
    fig.legend(handles, labels, loc="lower center", ncol=min(3, len(labels)), fontsize=9)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return "On the frontier (nothing else both faster and better): " + "; ".join(notes) + "."


def _ok(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def loss_curves(
    groups: Mapping[str, Sequence[tuple[np.ndarray, np.ndarray]]],
    palette: Mapping[str, tuple[float, ...]],
    path: Path,
) -> str | None:
    """Total loss over its first value, by step: each group's median and its min-max band."""
    series: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for name, curves in groups.items():
        kept = []
        for steps, values in curves:
            good = np.isfinite(values)
            steps, values = steps[good], values[good]
            if len(values) < 2 or values[0] <= 0:
                continue
            kept.append((steps, values / values[0]))
        if kept:
            series[name] = kept
    if not series:
        return None
    last = {int(s[-1]) for curves in series.values() for s, _ in curves}
    by_step = len(last) == 1
    end = last.pop() if by_step else 1
    x = np.linspace(0, end, 60)
    fig, ax = plt.subplots(figsize=FIGSIZE)
    counts = []
    for name, curves in series.items():
        stack = np.stack([np.interp(x, s if by_step else s / max(s[-1], 1), v) for s, v in curves])
        colour = palette.get(name)
        ax.plot(x, np.median(stack, axis=0), color=colour, label=f"{plain(name)} (n={len(curves)})")
        if len(curves) > 1:
            ax.fill_between(x, stack.min(axis=0), stack.max(axis=0), color=colour, alpha=0.15)
        counts.append(len(curves))
    lo = max(min(float(np.nanmin(v)) for c in series.values() for _, v in c) * 0.8, 1e-6)
    hi = max(max(float(np.nanmax(v)) for c in series.values() for _, v in c) * 1.05, 1.05)
    if hi / lo > 5:  # losses falling by orders of magnitude: a log scale
        ax.set_yscale("log")
        _log_ticks(ax.yaxis, lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("step" if by_step else "fraction of the run's steps")
    ax.set_ylabel("total loss / its value at the first step")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)
    return (
        f"Lines are medians over {min(counts)}–{max(counts)} run(s) per group, bands their "
        "range; lower ends mean the optimiser got further."
        if min(counts) != max(counts)
        else f"Lines are medians over {counts[0]} run(s) per group, bands their range; "
        "lower ends mean the optimiser got further."
    )


def photoreal_term(
    curves: Sequence[tuple[str, np.ndarray, np.ndarray, bool]],
    palette: Mapping[str, tuple[float, ...]],
    path: Path,
) -> str | None:
    """The photorealism (matting Laplacian) term by step of each run, on a linear axis from 0;
    diverged runs dashed and marked where they stopped."""
    curves = [(n, s, v, d) for n, s, v, d in curves if np.isfinite(v).any()]
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=FIGSIZE)
    lowest, below, shown = math.inf, 0, set()
    for name, steps, values, diverged in curves:
        good = np.isfinite(values)
        s, v = steps[good], values[good]
        colour = palette.get(name)
        label = None if name in shown else plain(name)
        shown.add(name)
        ax.plot(s, v, color=colour, linestyle="--" if diverged else "-", linewidth=1.2, label=label)
        if diverged:
            ax.scatter([s[-1]], [v[-1]], marker="x", color="#b00", s=50, zorder=3)
        lowest = min(lowest, float(v.min()))
        below += int((v < 0).any())
    ax.axhline(0, color="black", linewidth=0.8)
    top = max(float(np.nanmax(v)) for _, _, v, _ in curves)
    ax.set_ylim(min(0.0, lowest * 1.1), top * 1.08 if top > 0 else 1.0)
    ax.yaxis.set_major_formatter(EngFormatter(sep=""))  # 40M, not an offset of 1e7
    ax.set_xlabel("step")
    ax.set_ylabel("photorealism term (matting Laplacian)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)
    diverged = sum(d for *_, d in curves)
    text = (
        f"The term stays at or above 0 in all {len(curves)} run(s) (lowest {lowest:.3g})"
        if below == 0
        else f"The term went below 0 in {below} of {len(curves)} run(s) (lowest {lowest:.3g}): "
        "the Laplacian is not positive semidefinite there"
    )
    return text + (
        f"; {diverged} diverged run(s) are dashed, x where they stopped." if diverged else "."
    )
