"""What the report shows, as plain values: settings told apart, the comparison grid, summaries."""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

import numpy as np

from stylebench.vocabulary import RUN_STATUSES

# Per-item phases a run may record (older files lack some): shown where any run has them;
# "wait" is the rest of its span (queued, or the other images of a stacked batch).
PHASES = ("load", "prepare", "laplacian", "optimize", "score", "write", "wait")
# Config keys that say where a run happened, not what it computed.
_NOT_SETTINGS = ("device", "method")


@dataclass(frozen=True)
class Metric:
    """A column of the summary: where its value comes from and which way is better."""

    key: str
    label: str
    unit: str
    lower_is_better: bool
    digits: int = 3


SECONDS = Metric("seconds", "time", "s", True)
QUALITY = (
    Metric("quality_ssim", "SSIM", "", False),
    Metric("quality_colour_distance", "colour distance", "", True),
    Metric("quality_affine_residual", "affine residual", "", True),
)
# Losses shown divided by the median of that loss among the runs under the same network.
LOSSES = (
    Metric("loss_content", "content loss", "× median", True, 2),
    Metric("loss_style", "style loss", "× median", True, 2),
)


def run_seconds(run: Mapping[str, Any]) -> float | None:
    """A run's own time: its span (``seconds_wall``) less ``seconds_wait`` where recorded (what
    it spent queued behind other runs' methods, waiting for a core, or on the other images of
    its stacked batch), else ``seconds_total``."""
    wall, wait, total = (run.get(k) for k in ("seconds_wall", "seconds_wait", "seconds_total"))
    if _finite(wall):
        return float(wall) - (float(wait) if _finite(wait) else 0.0)
    return float(total) if _finite(total) else None


def _finite(value: Any) -> bool:
    return value is not None and math.isfinite(value)


def config_of(run: Mapping[str, Any]) -> dict[str, Any]:
    """The settings a run recorded (its ``config`` JSON), or {} where it is not a JSON object."""
    try:
        value = json.loads(run.get("config") or "")
    except (TypeError, json.JSONDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def show_value(value: Any) -> str:
    """A setting's value as a reader writes it: lists comma-separated, numbers short."""
    if value is None:
        return "default"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(show_value(v) for v in value) or "none"
    if isinstance(value, dict):
        return ", ".join(f"{k}={show_value(v)}" for k, v in sorted(value.items())) or "none"
    return str(value)


@dataclass(frozen=True)
class Setting:
    """One column of an experiment: a method at one config (its planning hash)."""

    key: str  # config_hash
    method: str
    label: tuple[tuple[str, str], ...]  # the values that tell it from the method's others

    @property
    def title(self) -> str:
        return " · ".join([self.method, *(f"{k.replace('_', ' ')} {v}" for k, v in self.label)])


def settings_of(
    runs: Sequence[Mapping[str, Any]], planned: Sequence[tuple[str, str]] = ()
) -> list[Setting]:
    """The settings of ``runs`` (and of ``planned`` ``(config_hash, config JSON)``, run or not),
    each labelled by the values that differ between settings of the same method.

    A value that differs between runs of one setting (a pair's style blend) labels nothing.
    """
    configs: dict[str, list[dict[str, Any]]] = {}
    methods: dict[str, str] = {}
    for key, text in planned:
        configs.setdefault(key, []).append(config_of({"config": text}))
    for run in runs:
        key = run.get("config_hash") or ""
        configs.setdefault(key, []).append(config_of(run))
        methods.setdefault(key, run.get("method") or "")
    stable: dict[str, dict[str, Any]] = {}
    unstable: dict[str, set[str]] = {}
    for key, dicts in configs.items():
        names = set().union(*dicts) - set(_NOT_SETTINGS)
        unstable[key] = {n for n in names if any(d.get(n) != dicts[0].get(n) for d in dicts)}
        stable[key] = {n: dicts[0].get(n) for n in names - unstable[key]}
        methods[key] = dicts[0].get("method") or methods.get(key) or "?"
    by_method: dict[str, list[str]] = defaultdict(list)
    for key in configs:
        by_method[methods[key]].append(key)
    out = []
    for method, keys in by_method.items():
        varying = set().union(*(unstable[k] for k in keys))
        names = sorted(set().union(*(stable[k] for k in keys)) - varying)
        differ = [n for n in names if len({json.dumps(stable[k].get(n)) for k in keys}) > 1]
        for key in keys:
            label = tuple((n, show_value(stable[key].get(n))) for n in differ)
            out.append(Setting(key, method, label))
    if planned:
        order = {key: i for i, (key, _) in enumerate(planned)}
        return sorted(out, key=lambda s: (order.get(s.key, len(order)), s.title))
    return sorted(out, key=lambda s: s.title)


@dataclass(frozen=True)
class PairRow:
    """One row of the comparison grid: a content image and the styles blended on it."""

    pair_id: str
    content_id: str
    style_ids: tuple[str, ...]


def latest_by_cell(
    runs: Iterable[Mapping[str, Any]],
) -> tuple[list[PairRow], dict[tuple[str, str], dict[str, Any]], Counter]:
    """The grid's rows (pairs, in first-seen order), the latest run of each (pair, setting)
    and how many runs each (pair, setting) has (a failure retried counts twice)."""
    rows: dict[str, PairRow] = {}
    cells: dict[tuple[str, str], dict[str, Any]] = {}
    attempts: Counter = Counter()
    ordered = sorted(runs, key=lambda r: (r.get("finished_at") is None, r.get("finished_at")))
    for run in ordered:
        pair = run.get("pair_id") or ""
        rows.setdefault(
            pair, PairRow(pair, run.get("content_id") or "", tuple(run.get("style_ids") or ()))
        )
        key = (pair, run.get("config_hash") or "")
        cells[key] = dict(run)  # oldest first: the latest wins
        attempts[key] += 1
    return list(rows.values()), cells, attempts


@dataclass(frozen=True)
class Stat:
    """Median and interquartile range of a column over some runs."""

    median: float
    q1: float
    q3: float
    n: int


def stat(values: Iterable[float | None]) -> Stat | None:
    """The median and quartiles of the finite ``values``; None where there are none."""
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return None
    q1, median, q3 = np.percentile(finite, [25, 50, 75])
    return Stat(float(median), float(q1), float(q3), len(finite))


def loss_scales(runs: Iterable[Mapping[str, Any]]) -> dict[tuple[str | None, str], float]:
    """The median of each loss over the ok runs under each feature network."""
    values: dict[tuple[str | None, str], list[float]] = defaultdict(list)
    for run in runs:
        if run.get("status") != "ok":
            continue
        for metric in LOSSES:
            v = run.get(metric.key)
            if v is not None and math.isfinite(v):
                values[(run.get("feature_model"), metric.key)].append(float(v))
    return {k: float(np.median(v)) for k, v in values.items() if np.median(v) > 0}


@dataclass
class SummaryRow:
    """One setting (or experiment and setting) in a summary table."""

    label: str
    method: str
    runs: int
    counts: dict[str, int]
    values: dict[str, Stat | None]
    phases: list[tuple[str, float]] = field(default_factory=list)  # median seconds, > 0 only
    mask_sources: dict[str, int] = field(default_factory=dict)
    best: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Summary:
    """A summary table: its value columns (those some run has) and its rows, best marked."""

    columns: tuple[Metric, ...]
    rows: tuple[SummaryRow, ...]
    has_phases: bool
    has_masks: bool


def summarise(groups: Sequence[tuple[str, str, Sequence[Mapping[str, Any]]]]) -> Summary:
    """One row per ``(label, method, runs)``: runs by status, and the median and quartiles of
    time and of each quality metric (ok runs), and of each loss divided by the median of that
    loss under the same feature network (ok runs of all groups); the median seconds of each
    phase that took any. The best median of each column is marked where two or more rows
    have one."""
    everything = [r for _, _, runs in groups for r in runs]
    scales = loss_scales(everything)
    columns = (SECONDS, *QUALITY, *LOSSES)
    rows = []
    for label, method, runs in groups:
        ok = [r for r in runs if r.get("status") == "ok"]
        values: dict[str, Stat | None] = {SECONDS.key: stat(run_seconds(r) for r in ok)}
        for metric in QUALITY:
            values[metric.key] = stat(r.get(metric.key) for r in ok)
        for metric in LOSSES:
            values[metric.key] = stat(
                _scaled(r.get(metric.key), scales.get((r.get("feature_model"), metric.key)))
                for r in ok
            )
        phases = []
        for phase in PHASES:
            s = stat(r.get(f"seconds_{phase}") for r in ok)
            if s is not None and s.median > 0:
                phases.append((phase, s.median))
        counts = Counter(r.get("status") for r in runs)
        masks = Counter(r["mask_source"] for r in runs if r.get("mask_source"))
        rows.append(
            SummaryRow(
                label,
                method,
                len(runs),
                {s: counts.get(s, 0) for s in RUN_STATUSES},
                values,
                phases,
                dict(sorted(masks.items())),
            )
        )
    for metric in columns:
        medians = [r.values[metric.key].median for r in rows if r.values.get(metric.key)]
        if len(medians) < 2:
            continue
        best = min(medians) if metric.lower_is_better else max(medians)
        for row in rows:
            s = row.values.get(metric.key)
            if s is not None and s.median == best:
                row.best.add(metric.key)
    used = tuple(m for m in columns if any(r.values.get(m.key) for r in rows))
    return Summary(
        used, tuple(rows), any(r.phases for r in rows), any(r.mask_sources for r in rows)
    )


def _scaled(value: float | None, scale: float | None) -> float | None:
    if value is None or scale is None or not math.isfinite(value):
        return None
    return value / scale


def image_name(entry: Mapping[str, Any] | None, image_id: str, width: int = 28) -> str:
    """A short human name for an image: its title, its file name (an import), its search query
    and rank, the file name in its URL, else the start of its id."""
    entry = entry or {}
    url = entry.get("image_url") or ""
    tail = PurePosixPath(unquote(urlsplit(url).path)).name if url else ""
    query = entry.get("query")
    name = entry.get("title")
    if not name and url.startswith("file:"):
        name = tail
    if not name and query:
        name = f"{query} #{entry['rank']}" if entry.get("rank") is not None else query
    name = " ".join(str(name or tail or image_id[:10]).split())
    return name if len(name) <= width else name[: width - 1] + "…"


def fmt(value: float | None, digits: int = 3) -> str:
    """A number for a table: ``digits`` significant digits, no exponent for everyday sizes."""
    if value is None or not math.isfinite(value):
        return "—"
    if value != 0 and (abs(value) >= 10**6 or abs(value) < 10**-3):
        return f"{value:.{digits - 1}e}"
    text = f"{value:.{digits}g}"
    return text if "e" not in text else f"{value:.0f}"
