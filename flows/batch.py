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
import socket
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import groupby
from typing import Any

from storage import CurvePoint, PlannedConfig, RunRecord, Store, WorkItem

log = logging.getLogger(__name__)

PHASES = ("total", "prepare", "optimize", "laplacian")
LOSSES = ("total", "content", "style", "tv", "photoreal")
CURVE_COLUMNS = ("step", "elapsed_s", *(f"loss_{k}" for k in LOSSES))


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
    image.save(buf, format="PNG")
    return buf.getvalue()


def run_batch(
    store: Store,
    items: Sequence[WorkItem],
    *,
    accelerator_slot: Callable[[], AbstractContextManager[Any]] | None = None,
    cache: Any = None,
    on_item: Callable[[WorkItem, str], None] | None = None,
) -> BatchOutcome:
    """Stylise ``items`` and record them; a failing item becomes a ``failed`` row, never an abort.

    ``accelerator_slot`` is entered only around the transfer itself (the GPU section).
    """
    from stylebench import __version__
    from styletransfer import TransferConfig, transfer_batch
    from styletransfer.quality import QUALITY_METRICS

    slot = accelerator_slot or nullcontext
    host = socket.gethostname()
    runs: list[RunRecord] = []
    curves: list[CurvePoint] = []
    outcome = BatchOutcome()
    started_batch = time.perf_counter()
    for group in _groups(items):
        first = group[0]
        started = datetime.now(timezone.utc)
        try:
            config = TransferConfig.from_json(first.config)
            contents = [store.local_path(i.content_path) for i in group]
            masks = [_masks(store, config, i) for i in group]
            config, styles, runtime = _inputs(store, config, first)
            with slot():
                results = transfer_batch(
                    contents, styles, config, masks=masks, cache=cache, runtime=runtime
                )
            errors: list[str | None] = [None] * len(group)
        except Exception as exc:  # noqa: BLE001 - recorded as data, the batch carries on
            log.warning("transfer failed for %d item(s): %s", len(group), exc)
            results = [None] * len(group)
            errors = [f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}"] * len(group)
        finished = datetime.now(timezone.utc)
        for item, result, error in zip(group, results, errors, strict=True):
            run_id = uuid.uuid4().hex
            planned_config = json.loads(item.config)
            common: dict[str, Any] = {
                "run_id": run_id,
                "pair_id": item.pair_id,
                "content_id": item.content_id,
                "style_ids": tuple(item.style_ids),
                "method": planned_config.get("method"),
                "feature_model": planned_config.get("feature_model"),
                "config": item.config,
                "config_hash": item.config_hash,
                "experiment": item.experiment,
                "started_at": started,
                "finished_at": finished,
                "host": host,
                "stylebench_version": __version__,
            }
            if result is None:
                given = "given" if _gets_masks(common["method"], item) else None
                row = RunRecord(**common, status="failed", error=error, mask_source=given)
            else:
                output = None
                if result.status in ("ok", "diverged") and result.image is not None:
                    output = store.write_bytes(f"outputs/{run_id}.png", _png(result.image))
                losses = result.measured_losses()  # null where not measured: SQL skips it
                row = RunRecord(
                    **{**common, "config": result.config.to_json()},
                    status=result.status,
                    error=result.error,
                    device=result.device,
                    height=result.height,
                    width=result.width,
                    steps=result.steps,
                    output_path=output,
                    **{f"seconds_{k}": result.seconds.get(k) for k in PHASES},
                    **{f"loss_{k}": losses.get(k) for k in LOSSES},
                    **{f"quality_{k}": result.quality.get(k) for k in QUALITY_METRICS},
                    mask_source=result.mask_source,
                )
                curves.extend(
                    CurvePoint(run_id=run_id, **{k: p.get(k) for k in CURVE_COLUMNS})
                    for p in result.curve
                )
            runs.append(row)
            setattr(outcome, row.status, getattr(outcome, row.status) + 1)
            outcome.run_ids.append(run_id)
            if on_item is not None:
                on_item(item, row.status)
    # Curves first, runs last: a run is recorded only once everything it refers to exists.
    store.runs.record(runs, curves)
    outcome.seconds = time.perf_counter() - started_batch
    return outcome


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
