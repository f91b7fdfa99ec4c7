"""Planning and running batches of style transfer over recorded pairs (no Prefect here).

A work item is one (pair, config). Planning skips every item already recorded
``ok`` in ``runs``, so a rerun after a crash does only what is left. A batch
writes its outputs first (each atomically), then one ``loss_curves`` file and
one ``runs`` file: a batch that dies part-way leaves no run recorded, and its
items are planned again next time.
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
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from itertools import groupby
from typing import Any

from storage import Store

log = logging.getLogger(__name__)

PHASES = ("total", "prepare", "optimize", "laplacian")
LOSSES = ("total", "content", "style", "tv", "photoreal")
QUALITY = ("ssim", "colour_distance", "affine_residual")
CURVE_COLUMNS = ("step", "elapsed_s", *(f"loss_{k}" for k in LOSSES))


@dataclass(frozen=True)
class WorkItem:
    """One pair under one config: everything a worker needs, as plain values."""

    pair_id: str
    content_id: str
    content_path: str
    style_ids: tuple[str, ...]
    style_paths: tuple[str, ...]
    style_weights: tuple[float, ...]
    config: str  # canonical JSON of the TransferConfig
    config_hash: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WorkItem:
        return cls(
            pair_id=d["pair_id"],
            content_id=d["content_id"],
            content_path=d["content_path"],
            style_ids=tuple(d["style_ids"]),
            style_paths=tuple(d["style_paths"]),
            style_weights=tuple(float(w) for w in d["style_weights"]),
            config=d["config"],
            config_hash=d["config_hash"],
        )


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


def config_from_json(text: str) -> Any:
    from styletransfer import TransferConfig

    values = json.loads(text)
    for key, value in values.items():
        if isinstance(value, list):
            values[key] = tuple(tuple(v) if isinstance(v, list) else v for v in value)
    return TransferConfig(**values)


def config_json(config: Any) -> str:
    return json.dumps(config.to_dict(), sort_keys=True, separators=(",", ":"))


def plan(
    store: Store,
    configs: Sequence[Any],
    *,
    strategy: str | None = None,
    limit: int | None = None,
) -> list[WorkItem]:
    """Every (pair, config) not yet recorded ``ok``, pairs oldest first."""
    pairs = store.query(
        """SELECT pair_id, any_value(content_id) AS content_id, any_value(style_ids) AS style_ids,
                  any_value(style_weights) AS style_weights, min(created_at) AS created_at
           FROM pairs WHERE ? IS NULL OR strategy = ?
           GROUP BY pair_id ORDER BY created_at, pair_id""",
        [strategy, strategy],
    ).to_pylist()
    if limit is not None:
        pairs = pairs[:limit]
    paths = {
        r["image_id"]: r["path"]
        for r in store.query("SELECT image_id, path FROM catalog").to_pylist()
    }
    done = _done(store)
    items = []
    for config in configs:
        text, digest = config_json(config), config.config_hash()
        for p in pairs:
            if (p["pair_id"], digest) in done:
                continue
            missing = [i for i in [p["content_id"], *p["style_ids"]] if i not in paths]
            if missing:
                log.warning("pair %s names image(s) not in the catalog: %s", p["pair_id"], missing)
                continue
            items.append(
                WorkItem(
                    pair_id=p["pair_id"],
                    content_id=p["content_id"],
                    content_path=paths[p["content_id"]],
                    style_ids=tuple(p["style_ids"]),
                    style_paths=tuple(paths[s] for s in p["style_ids"]),
                    style_weights=tuple(p["style_weights"]),
                    config=text,
                    config_hash=digest,
                )
            )
    return items


def _done(store: Store) -> set[tuple[str, str]]:
    rows = store.query("SELECT DISTINCT pair_id, config_hash FROM runs WHERE status = 'ok'")
    return {(r["pair_id"], r["config_hash"]) for r in rows.to_pylist()}


def without_done(store: Store, items: Sequence[WorkItem]) -> list[WorkItem]:
    """``items`` less those recorded ``ok`` since they were planned."""
    if not items:
        return []
    done = _done(store)
    return [i for i in items if (i.pair_id, i.config_hash) not in done]


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


def _fast_inputs(store: Store, config: Any, item: WorkItem) -> tuple[Any, list[Any]]:
    """A fast run takes its styles from the model: blend the model's styles as the pair asks."""
    from flows.training import local_models_dir, model_style_weights

    if not config.model:
        raise ValueError("method fast needs settings.model: the name of a trained model")
    models_dir = local_models_dir(store, config.model)
    weights = model_style_weights(models_dir, config.model, item.style_ids, item.style_weights)
    extra = {**dict(config.extra), "models_dir": str(models_dir)}
    return config.with_(style_weights=weights, extra=extra), []


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
    from styletransfer import transfer_batch

    slot = accelerator_slot or nullcontext
    host = socket.gethostname()
    runs: list[dict[str, Any]] = []
    curves: list[dict[str, Any]] = []
    outcome = BatchOutcome()
    started_batch = time.perf_counter()
    for group in _groups(items):
        first = group[0]
        started = datetime.now(timezone.utc)
        try:
            config = config_from_json(first.config)
            contents = [store.local_path(i.content_path) for i in group]
            if config.method == "fast":
                config, styles = _fast_inputs(store, config, first)
            else:
                styles = [store.local_path(p) for p in first.style_paths]
                config = config.with_(style_weights=first.style_weights)
            with slot():
                results = transfer_batch(contents, styles, config, cache=cache)
            errors: list[str | None] = [None] * len(group)
        except Exception as exc:  # noqa: BLE001 - recorded as data, the batch carries on
            log.warning("transfer failed for %d item(s): %s", len(group), exc)
            results = [None] * len(group)
            errors = [f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}"] * len(group)
        finished = datetime.now(timezone.utc)
        for item, result, error in zip(group, results, errors, strict=True):
            run_id = uuid.uuid4().hex
            row: dict[str, Any] = {
                "run_id": run_id,
                "pair_id": item.pair_id,
                "content_id": item.content_id,
                "style_ids": list(item.style_ids),
                "method": json.loads(item.config).get("method"),
                "feature_model": json.loads(item.config).get("feature_model"),
                "config": item.config,
                "config_hash": item.config_hash,
                "started_at": started,
                "finished_at": finished,
                "host": host,
                "stylebench_version": __version__,
            }
            if result is None:
                row.update(status="failed", error=error)
            else:
                output = None
                if result.status in ("ok", "diverged") and result.image is not None:
                    output = store.write_bytes(f"outputs/{run_id}.png", _png(result.image))
                row.update(
                    status=result.status,
                    error=result.error,
                    device=result.device,
                    height=result.height,
                    width=result.width,
                    steps=result.steps,
                    output_path=output,
                    **{f"seconds_{k}": result.seconds.get(k) for k in PHASES},
                    **{f"loss_{k}": result.losses.get(k) for k in LOSSES},
                    **{f"quality_{k}": result.quality.get(k) for k in QUALITY},
                )
                curves.extend(
                    {"run_id": run_id, **{k: p.get(k) for k in CURVE_COLUMNS}} for p in result.curve
                )
            runs.append(row)
            setattr(outcome, row["status"], getattr(outcome, row["status"]) + 1)
            outcome.run_ids.append(run_id)
            if on_item is not None:
                on_item(item, row["status"])
    # Curves first, runs last: a run is recorded only once everything it refers to exists.
    store.append("loss_curves", curves)
    store.append("runs", runs)
    outcome.seconds = time.perf_counter() - started_batch
    return outcome
