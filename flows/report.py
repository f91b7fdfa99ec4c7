"""The static HTML report: a gallery of runs and matplotlib plots of losses, times and loss matrices."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from jinja2 import Environment, PackageLoader  # noqa: E402
from PIL import Image  # noqa: E402

from storage import Store  # noqa: E402

THUMB = 256


@dataclass(frozen=True)
class ReportResult:
    index: Path
    runs: int
    plots: int


def _thumb(store: Store, relpath: str | None, assets: Path, name: str) -> str | None:
    """A JPEG thumbnail of a stored image inside the report, or None if it cannot be read."""
    if not relpath:
        return None
    target = assets / f"{name}.jpg"
    if not target.exists():
        try:
            with Image.open(store.local_path(relpath)) as im:
                im = im.convert("RGB")
                im.thumbnail((THUMB, THUMB))
                im.save(target, quality=88)
        except (OSError, ValueError):
            return None
    return f"assets/{target.name}"


def _plot_curves(curves: list[dict[str, Any]], methods: dict[str, str], path: Path) -> bool:
    """Total loss relative to its first value, by step, one median line per method."""
    by_run: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for c in curves:
        if c["loss_total"] is not None and math.isfinite(c["loss_total"]):
            by_run[c["run_id"]].append((c["step"], c["loss_total"]))
    series: dict[str, list[np.ndarray]] = defaultdict(list)
    for run_id, points in by_run.items():
        if run_id not in methods or len(points) < 2:
            continue
        points.sort()
        steps = np.array([p[0] for p in points])
        values = np.array([p[1] for p in points])
        first = values[0] if values[0] > 0 else (np.abs(values).max() or 1.0)
        series[methods[run_id]].append(
            np.interp(np.linspace(0, 1, 50), steps / max(steps[-1], 1), values / first)
        )
    if not series:
        return False
    fig, ax = plt.subplots(figsize=(6.4, 4))
    x = np.linspace(0, 1, 50)
    for method, lines in sorted(series.items()):
        stack = np.stack(lines)
        ax.plot(x, np.median(stack, axis=0), label=f"{method} (n={len(lines)})")
        if len(lines) > 1:
            ax.fill_between(x, stack.min(axis=0), stack.max(axis=0), alpha=0.15)
    ax.set_yscale("log")
    ax.set_xlabel("fraction of the run's steps")
    ax.set_ylabel("total loss / initial total loss")
    ax.set_title("Loss curves by method (median, min-max band)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def _plot_times(rows: list[dict[str, Any]], path: Path) -> bool:
    """Mean seconds per run by method, one bar per output size."""
    ok = [r for r in rows if r["seconds_total"] is not None]
    if not ok:
        return False
    methods = sorted({r["method"] for r in ok})
    sizes = sorted({max(r["height"] or 0, r["width"] or 0) for r in ok})
    fig, ax = plt.subplots(figsize=(6.4, 4))
    width = 0.8 / max(len(sizes), 1)
    for j, size in enumerate(sizes):
        means = []
        for m in methods:
            vals = [
                r["seconds_total"]
                for r in ok
                if r["method"] == m and max(r["height"] or 0, r["width"] or 0) == size
            ]
            means.append(float(np.mean(vals)) if vals else 0.0)
        ax.bar(np.arange(len(methods)) + j * width, means, width, label=f"{size} px")
    ax.set_xticks(np.arange(len(methods)) + width * (len(sizes) - 1) / 2, methods)
    ax.set_ylabel("seconds per image (mean)")
    ax.set_yscale("log")
    ax.set_title("Time by method and size")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def _plot_matrix(rows: list[dict[str, Any]], names: dict[str, str], title: str, path: Path) -> None:
    images = sorted({r["image_a"] for r in rows} | {r["image_b"] for r in rows})
    index = {img: i for i, img in enumerate(images)}
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.4))
    for ax, key in zip(axes, ("content_loss", "style_loss"), strict=True):
        grid = np.full((len(images), len(images)), np.nan)
        for r in rows:
            grid[index[r["image_a"]], index[r["image_b"]]] = r[key]
        im = ax.imshow(grid, cmap="viridis")
        labels = [_plain(names.get(i, i[:8])) for i in images]
        ax.set_xticks(range(len(images)), labels, rotation=60, ha="right", fontsize=7)
        ax.set_yticks(range(len(images)), labels, fontsize=7)
        ax.set_title(key.replace("_", " "))
        fig.colorbar(im, ax=ax, shrink=0.8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def build_report(store: Store, out_dir: str | Path, *, limit: int = 200) -> ReportResult:
    """Write ``out_dir/index.html`` (with ``assets/``) for the latest ``limit`` runs."""
    out = Path(out_dir)
    assets = out / "assets"
    assets.mkdir(parents=True, exist_ok=True)
    runs = store.runs.latest(limit)
    catalog = store.catalog.entries(["path", "query", "engine", "license", "creator"])
    gallery = []
    for r in runs:
        content = catalog.get(r["content_id"] or "", {})
        gallery.append(
            {
                "run": r,
                "content": _thumb(store, content.get("path"), assets, f"img-{r['content_id']}"),
                "styles": [
                    _thumb(store, catalog.get(s, {}).get("path"), assets, f"img-{s}")
                    for s in (r["style_ids"] or [])
                ],
                "output": _thumb(store, r["output_path"], assets, f"out-{r['run_id']}"),
                "settings": _settings(r["config"]),
            }
        )
    plots = []
    run_ids = [r["run_id"] for r in runs]
    curves = store.runs.curves(run_ids)
    if _plot_curves(curves, {r["run_id"]: r["method"] for r in runs}, assets / "curves.png"):
        plots.append(("Loss curves", "assets/curves.png"))
    if _plot_times(runs, assets / "times.png"):
        plots.append(("Time by method and size", "assets/times.png"))
    matrix = store.matrices.all()
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in matrix:
        groups[(row["experiment_id"], row["feature_model"])].append(row)
    names = {i: (c.get("path") or i).rsplit("/", 1)[-1][:12] for i, c in catalog.items()}
    for n, ((experiment, model), rows) in enumerate(sorted(groups.items())):
        name = f"matrix-{n}.png"
        _plot_matrix(rows, names, _plain(f"{experiment} — {model}"), assets / name)
        plots.append((f"Loss matrix: {experiment}, {model}", f"assets/{name}"))
    summary = store.runs.summary()
    # every template here is HTML: escape everything (stored text is untrusted)
    env = Environment(loader=PackageLoader("flows", "templates"), autoescape=True)
    page = env.get_template("report.html.j2").render(
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        data_dir=store.display(""),
        summary=summary,
        gallery=gallery,
        plots=plots,
    )
    index = out / "index.html"
    index.write_text(page)
    return ReportResult(index=index, runs=len(runs), plots=len(plots))


def _plain(text: str) -> str:
    """Text for a matplotlib label: a ``$`` in stored text must not start mathtext."""
    return text.replace("$", r"\$")


def _settings(config: str | None) -> str:
    if not config:
        return ""
    try:
        values = json.loads(config)
    except json.JSONDecodeError:
        return config[:200]
    keep = (
        "feature_model",
        "size",
        "steps",
        "optimizer",
        "content_weight",
        "style_weight",
        "tv_weight",
        "photoreal_weight",
        "style_weights",
        "model",
    )
    return ", ".join(f"{k}={values[k]}" for k in keep if values.get(k) not in (None, 0, 0.0))
