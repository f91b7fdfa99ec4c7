"""Planning and running batches of style transfer over recorded pairs (no Prefect here).

A work item is one (pair, config). Planning skips every item already recorded
``ok`` in ``runs``, so a rerun after a crash does only what is left. A worker
claims its items before running them (``storage.Runs.claim``), so two workers
given the same items run each once. A batch writes its outputs first (each
atomically), then one ``loss_curves`` file and one ``runs`` file: a batch that
dies part-way leaves no run recorded, and its items are planned again next time.

``plan_experiment``, ``stylize_claimed`` and ``finish_experiment`` are the nightly
loop; the ``stylize-nightly`` flow and ``stylize --no-prefect`` both call them.
"""

from __future__ import annotations

import io
import json
import logging
import os
import socket
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from itertools import groupby
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from storage import CurvePoint, PlannedConfig, RunRecord, Store, WorkItem

if TYPE_CHECKING:
    from styletransfer import TransferResult

log = logging.getLogger(__name__)

# A run's phases in the order they happen (styletransfer.run.PHASES), then the rest of its
# span ("wait"); together they add up to its wall time.
PHASES = ("load", "prepare", "laplacian", "optimize", "score", "write")
# Whether a CPU batch reads, scores and writes beside the method too (an accelerator always
# does), where its worker thread can run at the lowest priority (Linux, where a thread has a
# nice value of its own): it then takes the cores the method's threads leave idle (between
# torch's parallel sections, in the method's numpy and scipy steps) and hardly delays them.
# At the same priority it gained nothing on 2 cores (bench_throughput measures both ways).
OVERLAP_ON_CPU = True
# zlib level of the outputs' PNGs: 1 encodes a 700 px output about 3x faster than Pillow's
# default 6, for files about 8% larger (still lossless).
PNG_COMPRESS_LEVEL = 1


@dataclass
class BatchOutcome:
    """What one batch did, by status."""

    ok: int = 0
    failed: int = 0
    diverged: int = 0
    seconds: float = 0.0
    run_ids: list[str] = field(default_factory=list)

    def add(self, other: BatchOutcome) -> None:
        self.ok += other.ok
        self.failed += other.failed
        self.diverged += other.diverged
        self.seconds += other.seconds
        self.run_ids.extend(other.run_ids)


def planned(configs: Sequence[Any]) -> list[PlannedConfig]:
    """The configs as the runs table plans them: the codec's JSON (``to_json``) and hash."""
    return [PlannedConfig(c.to_json(), c.config_hash()) for c in configs]


def plan(
    store: Store,
    configs: Sequence[Any],
    *,
    strategy: str | None = None,
    limit: int | None = None,
    experiment: str | None = None,
) -> list[WorkItem]:
    """Every (pair, config) not yet recorded ``ok``, pairs oldest first."""
    return store.runs.pending(
        planned(configs), strategy=strategy, limit=limit, experiment=experiment
    )


def without_done(store: Store, items: Sequence[WorkItem]) -> list[WorkItem]:
    """``items`` less those recorded ``ok`` since they were planned."""
    return store.runs.not_done(items)


def make_batches(items: Sequence[WorkItem], batch_size: int) -> list[list[WorkItem]]:
    """Chunks of at most ``batch_size`` items of one config, items sharing styles adjacent."""
    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1, got {batch_size}")
    ordered = sorted(items, key=lambda i: (i.config_hash, i.style_ids, i.style_weights, i.pair_id))
    batches: list[list[WorkItem]] = []
    for _, group in groupby(ordered, key=lambda i: i.config_hash):
        chunk = list(group)
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    return batches


def _groups(items: Sequence[WorkItem]) -> Iterator[list[WorkItem]]:
    key = lambda i: (i.config_hash, i.style_ids, i.style_weights)  # noqa: E731
    for _, group in groupby(sorted(items, key=key), key=key):
        yield list(group)


def _inputs(store: Store, config: Any, item: WorkItem) -> tuple[Any, list[Any], Any]:
    """The method's (config, style images, runtime) for the pair's styles."""
    from styletransfer import PairStyle, Runtime, prepare_inputs

    runtime = Runtime(models_dir=store.models.local_root(config.model) if config.model else None)
    styles = [
        PairStyle(image_id, store.local_path(path), weight)
        for image_id, path, weight in zip(
            item.style_ids, item.style_paths, item.style_weights, strict=True
        )
    ]
    config, images = prepare_inputs(config, styles, runtime)
    return config, images, runtime


def _gets_masks(method: str | None, item: WorkItem) -> bool:
    """Whether the item's run is given its pair's masks: it has them and the method takes them."""
    from styletransfer import method_spec

    if item.content_mask is None or method is None:
        return False
    try:
        return method_spec(method).takes_masks
    except ValueError:  # an unknown method fails on its own
        return False


def _masks(store: Store, config: Any, item: WorkItem) -> Any:
    """The pair's segmentation masks as the method takes them, or None (none, or not used)."""
    from styletransfer import SegmentationMasks

    if not _gets_masks(config.method, item):
        return None
    return SegmentationMasks(
        store.local_path(item.content_mask), [store.local_path(m) for m in item.style_masks]
    )


def _png(image: Any) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buf.getvalue()


# -- one run, typed, and its row -------------------------------------------------------------
@dataclass
class RunOutcome:
    """One work item's run: its result (None where it failed before running) and its record.

    ``seconds`` holds the phases of PHASES, "total" (load to optimize), "wall" (the span,
    ``finished_at - started_at``) and "wait" (the rest of the span).
    """

    item: WorkItem
    run_id: str
    result: TransferResult | None
    error: str | None
    seconds: dict[str, float]
    started_at: datetime
    finished_at: datetime
    output_path: str | None = None

    @property
    def status(self) -> str:
        return "failed" if self.result is None else self.result.status


def run_record(outcome: RunOutcome, *, host: str, version: str) -> RunRecord:
    """The ``runs`` row of a run: the one place a transfer result becomes a row."""
    item, result, seconds = outcome.item, outcome.result, outcome.seconds
    planned_config = json.loads(item.config)
    common = {
        "run_id": outcome.run_id,
        "pair_id": item.pair_id,
        "content_id": item.content_id,
        "style_ids": tuple(item.style_ids),
        "config_hash": item.config_hash,
        "started_at": outcome.started_at,
        "finished_at": outcome.finished_at,
        "experiment": item.experiment,
        "host": host,
        "stylebench_version": version,
        "seconds_total": seconds.get("total"),
        "seconds_prepare": seconds.get("prepare"),
        "seconds_optimize": seconds.get("optimize"),
        "seconds_laplacian": seconds.get("laplacian"),
        "seconds_load": seconds.get("load"),
        "seconds_score": seconds.get("score"),
        "seconds_write": seconds.get("write"),
        "seconds_wall": seconds.get("wall"),
        "seconds_wait": seconds.get("wait"),
    }
    if result is None:  # failed before it ran: the planned config is what there is
        return RunRecord(
            **common,
            method=planned_config.get("method"),
            feature_model=planned_config.get("feature_model"),
            config=item.config,
            status="failed",
            error=outcome.error,
            mask_source="given" if _gets_masks(planned_config.get("method"), item) else None,
        )
    losses = result.measured_losses()  # null where not measured: SQL skips it
    quality = result.quality
    return RunRecord(
        **common,
        method=result.config.method,
        feature_model=result.config.feature_model,
        config=result.config.to_json(),
        device=result.device,
        height=result.height,
        width=result.width,
        steps=result.steps,
        status=result.status,
        error=result.error,
        loss_total=losses.get("total"),
        loss_content=losses.get("content"),
        loss_style=losses.get("style"),
        loss_tv=losses.get("tv"),
        loss_photoreal=losses.get("photoreal"),
        output_path=outcome.output_path,
        quality_ssim=quality.get("ssim"),
        quality_colour_distance=quality.get("colour_distance"),
        quality_affine_residual=quality.get("affine_residual"),
        mask_source=result.mask_source,
    )


def curve_points(outcome: RunOutcome) -> list[CurvePoint]:
    """The ``loss_curves`` rows of a run."""
    if outcome.result is None:
        return []
    return [
        CurvePoint(
            run_id=outcome.run_id,
            step=int(p["step"]),
            elapsed_s=p.get("elapsed_s"),
            loss_total=p.get("loss_total"),
            loss_content=p.get("loss_content"),
            loss_style=p.get("loss_style"),
            loss_tv=p.get("loss_tv"),
            loss_photoreal=p.get("loss_photoreal"),
        )
        for p in outcome.result.curve
    ]


# -- the batch loop ----------------------------------------------------------------------------
@dataclass
class _Chunk:
    """Items that run as one stacked batch, and what loading them gave."""

    items: list[WorkItem]
    group: _Group
    contents: list[Any] = field(default_factory=list)  # resized PIL images
    masks: list[Any] = field(default_factory=list)  # each item's SegmentationMasks, or None
    load_seconds: list[float] = field(default_factory=list)
    started: float = 0.0  # perf_counter when its loading began
    error: str | None = None


@dataclass
class _Group:
    """Items sharing a config and styles: loaded once, scored against the same styles."""

    items: list[WorkItem]
    config: Any = None
    styles: list[Any] | None = None  # resized PIL images
    runtime: Any = None
    scorer: Any = None
    error: str | None = None


def _failure(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}"


def _load(store: Store, chunk: _Chunk) -> _Chunk:
    """Read and resize a chunk's images (and, the first time, its group's styles)."""
    from styletransfer import TransferConfig
    from styletransfer.images import open_rgb, resize
    from styletransfer.quality import RunScorer
    from styletransfer.registry import method_spec

    chunk.started = time.perf_counter()
    clock = _phase_clock()
    group_started = clock()
    group = chunk.group
    try:
        shared = 0.0
        if group.config is None and group.error is None:
            config = TransferConfig.from_json(group.items[0].config)
            config, style_paths, group.runtime = _inputs(store, config, group.items[0])
            cfg = config.validate().resolved()
            group.styles = [resize(open_rgb(p), cfg.size, upscale=cfg.upscale) for p in style_paths]
            spec = method_spec(cfg.method)
            spec.function()  # its module imported here: load, not wait
            blend = cfg.blend(len(group.styles)) if group.styles and spec.needs_styles else ()
            group.scorer = RunScorer(group.styles, blend)
            group.config = config
            shared = clock() - group_started
        if group.error is not None:
            raise RuntimeError(group.error)
        cfg = group.config.validate().resolved()
        for item in chunk.items:
            started = clock()
            image = open_rgb(store.local_path(item.content_path))
            chunk.contents.append(resize(image, cfg.size, upscale=cfg.upscale))
            chunk.masks.append(_masks(store, group.config, item))
            chunk.load_seconds.append(clock() - started + shared / len(chunk.items))
    except Exception as exc:  # noqa: BLE001 - recorded as data, the batch carries on
        log.warning("could not load %d item(s): %s", len(chunk.items), exc)
        chunk.error = group.error or _failure(exc)
        if group.config is None:
            group.error = chunk.error
    return chunk


def _chunks(items: Sequence[WorkItem]) -> list[_Chunk]:
    """The items as stacked batches: by config and styles, at most as many as a batch holds."""
    from styletransfer import TransferConfig
    from styletransfer.device import select_device
    from styletransfer.run import batch_limit

    chunks = []
    for items_ in _groups(items):
        group = _Group(items_)
        try:
            cfg = TransferConfig.from_json(items_[0].config).resolved()
            limit = batch_limit(select_device(cfg.device), cfg.size, cfg.size)
        except Exception:  # noqa: BLE001 - an invalid config fails when its chunk is loaded
            limit = 1
        chunks.extend(_Chunk(items_[i : i + limit], group) for i in range(0, len(items_), limit))
    return chunks


def _at(origin: tuple[datetime, float], perf: float) -> datetime:
    """The wall-clock time of a ``time.perf_counter()`` reading."""
    return origin[0] + timedelta(seconds=perf - origin[1])


def _finish(
    store: Store,
    chunk: _Chunk,
    results: list[TransferResult] | None,
    error: str | None,
    origin: tuple[datetime, float],
) -> list[RunOutcome]:
    """Score and write a chunk's outputs; the outcome of each item with its timings."""
    clock = _phase_clock()
    outcomes = []
    for k, item in enumerate(chunk.items):
        run_id = uuid.uuid4().hex
        result = results[k] if results is not None else None
        seconds = {name: 0.0 for name in PHASES}
        if k < len(chunk.load_seconds):
            seconds["load"] = chunk.load_seconds[k]
        output = None
        if result is not None:
            for name in ("prepare", "laplacian", "optimize"):
                seconds[name] = result.seconds.get(name, 0.0)
            seconds["load"] += result.seconds.get("load", 0.0)  # the library's copy of them
            if result.status != "failed":
                started = clock()
                content = chunk.contents[k]
                masks = chunk.masks[k] if k < len(chunk.masks) else None
                result.quality = chunk.group.scorer.score(result.image, content, masks)
                seconds["score"] = clock() - started
                started = clock()
                output = store.write_bytes(f"outputs/{run_id}.png", _png(result.image))
                seconds["write"] = clock() - started
        finished = time.perf_counter()
        seconds["total"] = sum(seconds[k] for k in ("load", "prepare", "laplacian", "optimize"))
        seconds["wall"] = finished - chunk.started
        seconds["wait"] = max(0.0, seconds["wall"] - sum(seconds[k] for k in PHASES))
        outcomes.append(
            RunOutcome(
                item,
                run_id,
                result,
                error if result is None else None,
                seconds,
                _at(origin, chunk.started),
                _at(origin, finished),
                output,
            )
        )
    return outcomes


def run_batch(
    store: Store,
    items: Sequence[WorkItem],
    *,
    accelerator_slot: Callable[[], AbstractContextManager[Any]] | None = None,
    cache: Any = None,
    on_item: Callable[[WorkItem, str], None] | None = None,
    overlap: bool | None = None,
) -> BatchOutcome:
    """Stylise ``items`` and record them; a failing item becomes a ``failed`` row, never an abort.

    ``accelerator_slot`` guards the device: on an accelerator it is held only while the method
    runs (the GPU section); on a CPU, whose cores the reading, scoring and writing use too, once
    for the whole batch (each hold is a round trip to Prefect's server: held per stacked batch
    it cost a quarter of a second a run). With ``overlap`` (default: on an accelerator, and on a
    CPU where ``OVERLAP_ON_CPU`` and the worker can run at the lowest priority) a worker thread
    reads the next stacked batch's images and scores and writes the last one's outputs while
    the method runs, which runs the batches back to back inside one hold of the slot; else each
    batch is loaded, run, scored and written in turn. On a CPU the worker runs at the lowest
    priority; what it has not begun when the method needs it, the method's thread does itself.
    """
    from stylebench import __version__
    from styletransfer import transfer_batch
    from styletransfer.device import select_device

    slot = accelerator_slot or nullcontext
    host = socket.gethostname()
    origin = (datetime.now(timezone.utc), time.perf_counter())
    started_batch = origin[1]
    chunks = _chunks(items)
    accelerated = _on_accelerator(chunks, select_device)
    if overlap is None:
        overlap = accelerated or (OVERLAP_ON_CPU and sys.platform.startswith("linux"))
    outcome = BatchOutcome()
    runs: list[RunRecord] = []
    curves: list[CurvePoint] = []

    def collect(done: list[RunOutcome]) -> None:
        for run in done:
            runs.append(run_record(run, host=host, version=__version__))
            curves.extend(curve_points(run))
            setattr(outcome, run.status, getattr(outcome, run.status) + 1)
            outcome.run_ids.append(run.run_id)
            if on_item is not None:
                on_item(run.item, run.status)

    def run(
        chunk: _Chunk, hold: Callable[[], AbstractContextManager[Any]]
    ) -> tuple[list[TransferResult] | None, str | None]:
        if chunk.error is not None:
            return None, chunk.error
        group = chunk.group
        try:
            with hold():
                results = transfer_batch(
                    chunk.contents,
                    group.styles,
                    group.config,
                    masks=chunk.masks,
                    cache=cache,
                    runtime=group.runtime,
                    quality=False,
                )
            return results, None
        except Exception as exc:  # noqa: BLE001 - recorded as data, the batch carries on
            log.warning("transfer failed for %d item(s): %s", len(chunk.items), exc)
            return None, _failure(exc)

    if not overlap:
        batch_hold, method_hold = (nullcontext, slot) if accelerated else (slot, nullcontext)
        with batch_hold() if chunks else nullcontext():
            for chunk in chunks:
                _load(store, chunk)
                collect(_finish(store, chunk, *run(chunk, method_hold), origin))
    elif chunks:
        with ThreadPoolExecutor(
            max_workers=1,
            thread_name_prefix="housekeeping",
            initializer=None if accelerated else _at_lowest_priority,
        ) as pool:
            finishing: list[_Job[list[RunOutcome]]] = []
            loading = _Job(pool, _load, store, chunks[0])
            loading.result()
            # The method runs batch after batch while the worker reads the next one and
            # scores and writes the last: the slot is held once, for all of them.
            with slot():
                for k, chunk in enumerate(chunks):
                    loading.result()
                    if k + 1 < len(chunks):
                        loading = _Job(pool, _load, store, chunks[k + 1])
                    ran = run(chunk, nullcontext)
                    finishing.append(_Job(pool, _finish, store, chunk, *ran, origin))
                    while finishing and finishing[0].done():
                        collect(finishing.pop(0).result())
            for job in finishing:
                collect(job.result())
    # Curves first, runs last: a run is recorded only once everything it refers to exists.
    store.runs.record(runs, curves)
    outcome.seconds = time.perf_counter() - started_batch
    return outcome


_housekeeper = threading.local()


def _at_lowest_priority() -> None:
    """Give the calling thread the lowest priority there is (Linux: its own nice value, 19)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    except (AttributeError, OSError) as exc:
        log.debug("the housekeeping thread keeps its priority: %s", exc)
    else:
        _housekeeper.lowered = True


def _phase_clock() -> Callable[[], float]:
    """What times a phase in this thread: the wall clock, or at the lowest priority its CPU time.

    At the lowest priority a phase waits for cores the method leaves idle, interval by
    interval: its seconds are the work it did (its thread's CPU time), the waiting falls to
    the item's ``wait``.
    """
    return time.thread_time if getattr(_housekeeper, "lowered", False) else time.perf_counter


T = TypeVar("T")


class _Job(Generic[T]):
    """Work handed to the housekeeping thread; what it has not begun when the result is wanted
    runs in the caller's thread instead, so the method never waits for a worker that another
    process's threads keep from the cores (a lowered thread on a busy machine)."""

    def __init__(self, pool: ThreadPoolExecutor, fn: Callable[..., T], *args: Any) -> None:
        self.fn, self.args = fn, args
        self.future: Future[T] = pool.submit(fn, *args)

    def done(self) -> bool:
        return self.future.done()

    def result(self) -> T:
        if self.future.cancel():  # not begun: it will not be
            return self.fn(*self.args)
        return self.future.result()


def _on_accelerator(chunks: Sequence[_Chunk], select_device: Callable[[str], Any]) -> bool:
    """Whether the batch's first config runs on an accelerator (a GPU, MPS)."""
    from styletransfer import TransferConfig

    if not chunks:
        return False
    try:
        device = TransferConfig.from_json(chunks[0].items[0].config).resolved().device
        return select_device(device).type != "cpu"
    except Exception:  # noqa: BLE001 - the config's own error is recorded when it runs
        return False


def stylize_claimed(
    store: Store,
    items: Sequence[WorkItem],
    *,
    accelerator_slot: Callable[[], AbstractContextManager[Any]] | None = None,
    on_item: Callable[[WorkItem, str], None] | None = None,
) -> BatchOutcome:
    """Claim ``items``, run those this worker got (none done meanwhile), record, release."""
    with store.runs.claim(items) as claim:
        if claim.skipped:
            log.info("%d item(s) are done or held by another worker; skipping them", claim.skipped)
        if not claim.items:
            return BatchOutcome()
        return run_batch(store, claim.items, accelerator_slot=accelerator_slot, on_item=on_item)


@dataclass(frozen=True)
class NightPlan:
    """One planning of an experiment: its configs, the pending items and their batches."""

    name: str
    config_hashes: tuple[str, ...]
    items: tuple[WorkItem, ...]
    batches: tuple[tuple[WorkItem, ...], ...]
    started: datetime

    def batch_dicts(self) -> list[list[dict[str, Any]]]:
        return [[i.to_dict() for i in batch] for batch in self.batches]


def plan_experiment(store: Store, spec: Any) -> NightPlan:
    """Plan an ExperimentSpec once: every pending (pair, config), in batches."""
    from flows.specs import expand_configs

    started = datetime.now(timezone.utc)
    configs = expand_configs(spec)
    items = plan(
        store, configs, strategy=spec.pairs.strategy, limit=spec.pairs.limit, experiment=spec.name
    )
    batches = make_batches(items, spec.batch_size)
    log.info(
        "%d pending item(s) in %d batch(es) for %d config(s)",
        len(items),
        len(batches),
        len(configs),
    )
    return NightPlan(
        spec.name,
        tuple(c.config_hash() for c in configs),
        tuple(items),
        tuple(tuple(b) for b in batches),
        started,
    )


def finish_experiment(store: Store, night: NightPlan) -> tuple[dict[str, Any], list[dict]]:
    """What the night did (runs of its items recorded since it was planned, by status; what
    is still pending) and the runs of its configs by method and status."""
    counts = store.runs.outcome(night.items, night.started)
    pending = len(store.runs.not_done(night.items))
    seconds = (datetime.now(timezone.utc) - night.started).total_seconds()
    result = {
        "planned": len(night.items),
        "batches": len(night.batches),
        "pending": pending,
        **counts,
        "seconds": round(seconds, 1),
    }
    return result, store.runs.by_method(night.config_hashes)
