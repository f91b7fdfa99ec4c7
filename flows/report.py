"""The static HTML report: an index (runs by method, loss matrices, a gallery) and a page per
experiment (its runs side by side, a summary per setting, the plots that compare them)."""

from __future__ import annotations

import hashlib
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from jinja2 import Environment, PackageLoader
from PIL import Image

from flows import report_plots as plots
from flows.report_data import (
    QUALITY,
    PairRow,
    Setting,
    config_of,
    fmt,
    image_name,
    latest_by_cell,
    run_seconds,
    settings_of,
    show_value,
    summarise,
)
from flows.report_matrices import matrix_view
from storage import Store

THUMB = 256


@dataclass(frozen=True)
class ReportResult:
    index: Path
    runs: int
    plots: int
    pages: tuple[Path, ...] = ()


@dataclass
class Experiment:
    """The runs of one experiment, and the configs it planned where its spec is known."""

    name: str
    runs: list[dict[str, Any]]
    planned: list[tuple[str, str]] = field(default_factory=list)  # (config_hash, config JSON)
    source: str = ""  # how its runs were found, for the page's header


@dataclass(frozen=True)
class Figure:
    title: str
    src: str
    caption: str
    wide: bool = False  # spans the page's width


class _Assets:
    """The report's assets folder: thumbnails of stored images and the figures."""

    def __init__(self, store: Store, out: Path):
        self.store = store
        self.dir = out / "assets"
        self.dir.mkdir(parents=True, exist_ok=True)

    def thumb(self, relpath: str | None, name: str) -> str | None:
        """A JPEG thumbnail of a stored image, or None if it cannot be read."""
        if not relpath:
            return None
        target = self.dir / f"{name}.jpg"
        if not target.exists():
            try:
                with Image.open(self.store.local_path(relpath)) as im:
                    im = im.convert("RGB")
                    im.thumbnail((THUMB, THUMB))
                    im.save(target, quality=88)
            except (OSError, ValueError):
                return None
        return f"assets/{target.name}"

    def figure(self, name: str) -> Path:
        return self.dir / name


# ------------------------------------------------------------------ selecting runs


def find_experiments(
    store: Store, wanted: Sequence[str], where: str | None = None
) -> list[Experiment]:
    """Each of ``wanted``: an experiment name (its recorded runs) or an experiment YAML file
    (the runs of its configs over its pairs, whichever experiment recorded them)."""
    out = []
    for entry in wanted:
        path = Path(entry)
        if entry.endswith((".yaml", ".yml")) and path.is_file():
            out.append(_from_spec(store, path, where))
            continue
        runs = store.runs.select(experiments=[entry], where=where)
        if not runs:
            known = [e["experiment"] for e in store.runs.experiments()]
            raise ValueError(
                f"no runs of experiment {entry!r}"
                + (" match the --where condition" if where and entry in known else "")
                + (f"; the experiments recorded are: {', '.join(known)}" if known else "")
                + "; or give an experiment YAML file"
            )
        out.append(Experiment(entry, runs, source="runs recorded under this name"))
    return out


def _from_spec(store: Store, path: Path, where: str | None) -> Experiment:
    from flows.specs import ExperimentSpec, expand_configs, load_spec

    spec = load_spec(path, ExperimentSpec)
    configs = expand_configs(spec)
    planned = list(dict.fromkeys((c.config_hash(), c.to_json()) for c in configs))
    pairs = {p["pair_id"] for p in store.runs.pairs(spec.pairs.strategy, spec.pairs.limit)}
    runs = store.runs.select(config_hashes=[h for h, _ in planned], where=where)
    runs = [r for r in runs if r["pair_id"] in pairs]
    return Experiment(spec.name, runs, planned, source=f"the configs of {path.name}")


# ------------------------------------------------------------------ building


def build_report(
    store: Store,
    out_dir: str | Path,
    *,
    limit: int = 200,
    experiments: Sequence[str] = (),
    where: str | None = None,
) -> ReportResult:
    """Write ``out_dir/index.html`` and a page per experiment (with ``assets/``).

    ``experiments``: names or YAML files of the experiments to report (default: those of the
    latest ``limit`` runs); ``where``: an SQL condition on the runs' columns that every run
    shown must meet.
    """
    out = Path(out_dir)
    assets = _Assets(store, out)
    catalog = store.catalog.entries(
        ["path", "role", "query", "rank", "title", "image_url", "engine", "license", "creator"]
    )
    experiments = list(dict.fromkeys(experiments))
    if experiments:
        chosen = find_experiments(store, experiments, where)
        seen: dict[str, dict[str, Any]] = {}
        for exp in chosen:
            seen.update((r["run_id"], r) for r in exp.runs)
        runs = sorted(seen.values(), key=_newest_first)
    else:
        runs = store.runs.select(where=where, limit=limit)
        names = list(dict.fromkeys(r["experiment"] for r in runs if r.get("experiment")))
        chosen = [
            Experiment(
                n,
                store.runs.select(experiments=[n], where=where),
                source="runs recorded under this name",
            )
            for n in names
        ]
    env = Environment(loader=PackageLoader("flows", "templates"), autoescape=True)
    env.filters["num"] = fmt
    common = {
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "data_dir": store.display(""),
        "where": where,
    }
    matrices = _matrices(store, catalog, assets, {e.name for e in chosen} if experiments else None)
    pages = []
    figures_total = 0
    page_of = {}
    for exp in chosen:
        page = out / _page_name(exp.name)
        figures = _experiment_page(env, common, store, exp, catalog, assets, matrices, page)
        figures_total += figures
        pages.append(page)
        page_of[exp.name] = page.name
    gallery = [_gallery_entry(r, catalog, assets) for r in runs[:limit]]
    by_method = _groups_by(runs, lambda r: r.get("method") or "?")
    palette = plots.colours(list(by_method))
    figures = _figures(store, runs, by_method, palette, assets, "index", by="method")
    compared = None
    if experiments and len(chosen) > 1:
        compared = summarise(
            [
                (
                    f"{exp.name} · {s.title}",
                    s.method,
                    [r for r in exp.runs if r["config_hash"] == s.key],
                )
                for exp in chosen
                for s in settings_of(exp.runs, exp.planned)
            ]
        )
    page = env.get_template("report.html.j2").render(
        **common,
        experiments=[_experiment_row(e, page_of[e.name]) for e in chosen],
        selected=list(experiments),
        compared=compared,
        by_method=summarise([(m, m, rs) for m, rs in by_method.items()]),
        figures=_wide_first(figures),
        matrices=matrices,
        gallery=gallery,
        limit=limit,
        total_runs=len(runs),
    )
    index = out / "index.html"
    index.write_text(page)
    return ReportResult(
        index=index,
        runs=len(runs),
        plots=len(figures) + figures_total,
        pages=tuple(pages),
    )


def _newest_first(run: Mapping[str, Any]) -> tuple:
    finished = run.get("finished_at")
    return (finished is None, -(finished.timestamp() if finished else 0), run["run_id"])


def _page_name(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or "experiment"
    return f"experiment-{slug}-{hashlib.sha1(name.encode()).hexdigest()[:6]}.html"


def _groups_by(runs: Iterable[dict[str, Any]], key) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in runs:
        groups[key(r)].append(r)
    return dict(sorted(groups.items()))


def _experiment_row(exp: Experiment, page: str) -> dict[str, Any]:
    statuses = [r.get("status") for r in exp.runs]
    finished = [r["finished_at"] for r in exp.runs if r.get("finished_at")]
    return {
        "name": exp.name,
        "page": page,
        "runs": len(exp.runs),
        "settings": len({r.get("config_hash") for r in exp.runs} | {h for h, _ in exp.planned}),
        "pairs": len({r.get("pair_id") for r in exp.runs}),
        "ok": statuses.count("ok"),
        "failed": statuses.count("failed"),
        "diverged": statuses.count("diverged"),
        "last": max(finished).strftime("%Y-%m-%d %H:%M") if finished else "—",
    }


# ------------------------------------------------------------------ figures


def _figures(
    store: Store,
    runs: Sequence[dict[str, Any]],
    groups: Mapping[str, Sequence[dict[str, Any]]],
    palette: Mapping[str, tuple[float, ...]],
    assets: _Assets,
    prefix: str,
    *,
    by: str,
    size_groups: Mapping[str, Sequence[dict[str, Any]]] | None = None,
) -> list[Figure]:
    """Time against size (one group per ``size_groups``, default ``groups``), the
    cost-quality frontier and the loss curves, one group per ``by`` (method or setting)."""
    out = []
    size_groups = groups if size_groups is None else size_groups
    sizes = {
        name: [
            ((r.get("height") or 0) * (r.get("width") or 0), run_seconds(r) or 0.0)
            for r in rs
            if r.get("status") == "ok"
        ]
        for name, rs in size_groups.items()
    }
    name = f"{prefix}-time-size.png"
    size_palette = palette if size_groups is groups else plots.colours(list(size_groups))
    note = plots.time_vs_size(sizes, size_palette, assets.figure(name))
    if note:
        out.append(
            Figure(
                f"Time against output size, by {by}",
                f"assets/{name}",
                "Seconds per image (its own: wall time less waits, where recorded) against the "
                "output's pixel count, both on log scales, one point per ok run"
                + ("" if size_groups is groups else f", a {by}'s sizes in one colour")
                + f". {note}",
            )
        )
    quality = {
        name: [
            {"seconds": run_seconds(r), **{m.key: r.get(m.key) for m in QUALITY}}
            for r in rs
            if r.get("status") == "ok"
        ]
        for name, rs in groups.items()
    }
    name = f"{prefix}-cost-quality.png"
    note = plots.cost_quality(quality, palette, assets.figure(name))
    if note:
        out.append(
            Figure(
                f"Cost against quality, by {by}",
                f"assets/{name}",
                "Quality metrics that no method optimises against seconds per image: faint "
                f"points are runs, large ones each {by}'s medians, the dashed line joins "
                f"those no other {by} beats on both. {note}",
                wide=True,
            )
        )
    curves = _curves(store, [r["run_id"] for r in runs])
    series = {
        name: [curves[r["run_id"]][:2] for r in rs if r["run_id"] in curves]
        for name, rs in groups.items()
    }
    name = f"{prefix}-curves.png"
    note = plots.loss_curves(series, palette, assets.figure(name))
    if note:
        out.append(
            Figure(
                f"Loss curves, by {by}",
                f"assets/{name}",
                f"Total loss relative to its value at the first step. {note}",
            )
        )
    return out


def _curves(store: Store, run_ids: Sequence[str]) -> dict[str, tuple[np.ndarray, ...]]:
    """Each run's (steps, total loss, photorealism term), by step."""
    points: dict[str, list[tuple[int, float, float]]] = defaultdict(list)
    for c in store.runs.curves(run_ids):
        points[c["run_id"]].append(
            (
                c["step"],
                math.nan if c["loss_total"] is None else c["loss_total"],
                math.nan if c.get("loss_photoreal") is None else c["loss_photoreal"],
            )
        )
    out = {}
    for run_id, pts in points.items():
        pts.sort()
        arr = np.array(pts, dtype=np.float64)
        out[run_id] = (arr[:, 0], arr[:, 1], arr[:, 2])
    return out


# ------------------------------------------------------------------ an experiment's page


def _experiment_page(
    env: Environment,
    common: dict[str, Any],
    store: Store,
    exp: Experiment,
    catalog: Mapping[str, dict[str, Any]],
    assets: _Assets,
    matrices: list[dict[str, Any]],
    page: Path,
) -> int:
    settings = settings_of(exp.runs, exp.planned)
    by_setting = {s.title: [r for r in exp.runs if r.get("config_hash") == s.key] for s in settings}
    summary = summarise([(s.title, s.method, by_setting[s.title]) for s in settings])
    pairs, cells, attempts = latest_by_cell(exp.runs)
    pairs.sort(key=lambda p: (image_name(catalog.get(p.content_id), p.content_id), p.pair_id))
    palette = plots.colours([s.title for s in settings])
    prefix = _page_name(exp.name).removesuffix(".html")
    size_free: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in settings:
        size_free[_title_without(s, "size")] += by_setting[s.title]
    figures = _figures(
        store, exp.runs, by_setting, palette, assets, prefix, by="setting", size_groups=size_free
    )
    curves = _curves(store, [r["run_id"] for r in exp.runs])
    title_of = {s.key: s.title for s in settings}
    photoreal = [
        (
            title_of.get(r.get("config_hash"), "?"),
            *curves[r["run_id"]][::2],
            r["status"] == "diverged",
        )
        for r in exp.runs
        if r["run_id"] in curves and np.nanmax(np.abs(curves[r["run_id"]][2]), initial=0) > 0
    ]
    name = f"{prefix}-photoreal.png"
    note = plots.photoreal_term(photoreal, palette, assets.figure(name))
    if note:
        figures.append(
            Figure(
                "Photorealism term over the steps",
                f"assets/{name}",
                "The matting-Laplacian term of every run that has one, by step, on a linear "
                f"scale from 0 (a correct Laplacian is positive semidefinite). {note}",
            )
        )
    diverged = [
        _diverged_row(r, curves.get(r["run_id"]), title_of, catalog)
        for r in exp.runs
        if r.get("status") == "diverged"
    ]
    html = env.get_template("experiment.html.j2").render(
        **common,
        name=exp.name,
        source=exp.source,
        settings=settings,
        summary=summary,
        header=[_setting_head(s) for s in settings],
        rows=[_grid_row(p, settings, cells, attempts, catalog, assets) for p in pairs],
        figures=_wide_first(figures),
        diverged=diverged,
        matrices=[m for m in matrices if m["experiment_id"] == exp.name],
        counts=_experiment_row(exp, page.name),
    )
    page.write_text(html)
    return len(figures)


def _diverged_row(
    run: Mapping[str, Any],
    curve: tuple[np.ndarray, ...] | None,
    title_of: Mapping[str, str],
    catalog: Mapping[str, dict[str, Any]],
) -> dict[str, Any]:
    """Where a diverged run stopped: its last recorded step and total loss, and why."""
    step, loss = run.get("steps"), run.get("loss_total")
    if curve is not None:
        finite = np.isfinite(curve[1])
        step = int(curve[0][-1])
        if finite.any():
            loss = float(curve[1][finite][-1])
    pair = PairRow(run["pair_id"], run["content_id"], tuple(run["style_ids"] or ()))
    return {
        "pair": _pair_names(pair, catalog),
        "setting": title_of.get(run.get("config_hash"), "?"),
        "step": step,
        "loss": loss,
        "error": (run.get("error") or "").strip().splitlines()[:1],
    }


def _title_without(setting: Setting, name: str) -> str:
    """The setting's title without one of its values (the groups of a plot along that value)."""
    return Setting(
        setting.key, setting.method, tuple(kv for kv in setting.label if kv[0] != name)
    ).title


def _setting_head(setting: Setting) -> dict[str, Any]:
    return {"method": setting.method, "label": setting.label, "title": setting.title}


def _pair_names(pair: PairRow, catalog: Mapping[str, dict[str, Any]]) -> str:
    styles = " + ".join(image_name(catalog.get(s), s) for s in pair.style_ids)
    return f"{image_name(catalog.get(pair.content_id), pair.content_id)} ← {styles}"


def _image_head(image_id: str, catalog: Mapping[str, dict[str, Any]], assets: _Assets) -> dict:
    entry = catalog.get(image_id) or {}
    return {
        "id": image_id,
        "name": image_name(entry, image_id),
        "role": entry.get("role") or "",
        "thumb": assets.thumb(entry.get("path"), f"img-{image_id}"),
    }


def _grid_row(
    pair: PairRow,
    settings: Sequence[Setting],
    cells: Mapping[tuple[str, str], dict[str, Any]],
    attempts: Mapping[tuple[str, str], int],
    catalog: Mapping[str, dict[str, Any]],
    assets: _Assets,
) -> dict[str, Any]:
    row_cells = []
    for s in settings:
        run = cells.get((pair.pair_id, s.key))
        if run is None:
            row_cells.append({"status": "missing"})
            continue
        row_cells.append(
            {
                "status": run["status"],
                "run_id": run["run_id"],
                "output": assets.thumb(run.get("output_path"), f"out-{run['run_id']}"),
                "seconds": run_seconds(run),
                "wall": run.get("seconds_wall") is not None,
                "size": f"{run['width']}×{run['height']}" if run.get("width") else None,
                "quality": [(m.label, run.get(m.key)) for m in QUALITY],
                "mask_source": run.get("mask_source"),
                "error": (run.get("error") or "").strip(),
                "attempts": attempts.get((pair.pair_id, s.key), 1),
            }
        )
    return {
        "content": _image_head(pair.content_id, catalog, assets),
        "styles": [_image_head(s, catalog, assets) for s in pair.style_ids],
        "cells": row_cells,
    }


# ------------------------------------------------------------------ the index's parts


def _gallery_entry(
    run: dict[str, Any], catalog: Mapping[str, dict[str, Any]], assets: _Assets
) -> dict[str, Any]:
    config = config_of(run)
    return {
        "run": run,
        "content": _image_head(run.get("content_id") or "", catalog, assets),
        "styles": [_image_head(s, catalog, assets) for s in (run.get("style_ids") or [])],
        "output": assets.thumb(run.get("output_path"), f"out-{run['run_id']}"),
        "settings": _settings(config) if config else (run.get("config") or "")[:200],
        "model": config.get("model"),
        "seconds": run_seconds(run),
    }


_SHOWN_SETTINGS = (
    "feature_model",
    "size",
    "steps",
    "optimizer",
    "content_weight",
    "style_weight",
    "tv_weight",
    "photoreal_weight",
    "style_layers",
    "style_layer_weights",
    "style_weights",
)


def _settings(config: Mapping[str, Any]) -> str:
    return ", ".join(
        f"{k}={show_value(config[k])}"
        for k in _SHOWN_SETTINGS
        if config.get(k) not in (None, 0, 0.0)
    )


def _matrices(
    store: Store,
    catalog: Mapping[str, dict[str, Any]],
    assets: _Assets,
    only: set[str] | None,
) -> list[dict[str, Any]]:
    """Each loss matrix (by experiment id, those in ``only`` if given) as its view."""
    groups: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for row in store.matrices.all():
        if only is None or row["experiment_id"] in only:
            groups[row["experiment_id"]][row["feature_model"]].append(row)
    out = []
    for experiment_id, models in sorted(groups.items(), key=lambda kv: str(kv[0])):
        ids = {r[k] for rows in models.values() for r in rows for k in ("image_a", "image_b")}
        heads = [_image_head(i, catalog, assets) for i in sorted(ids)]
        out.append(matrix_view(experiment_id, models, heads))
    return out


def _wide_first(figures: list[Figure]) -> list[Figure]:
    """The page-wide figure first, so the others pair up two to a row."""
    return sorted(figures, key=lambda f: not f.wide)
