"""Prefect 3 flows and tasks: thin wiring over scraper, styletransfer and storage.

Tasks take the data directory (a string) and small plain values, build what
they need inside, and return small dicts: nothing Prefect would have to hash
or pickle beyond that. Retries sit only on tasks that do network I/O.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from flows.batch import BatchOutcome, WorkItem, make_batches, plan, run_batch, without_done
from flows.catalog import pair_catalog
from flows.specs import DatasetSpec, ExperimentSpec, expand_configs, load_spec
from storage import Store

SLOT_LIMIT = 1  # one batch at a time on one accelerator


# ---------------------------------------------------------------- helpers ---
def accelerator_slot_name() -> str:
    """The concurrency limit that guards this machine's accelerator (one per GPU)."""
    import torch

    host = socket.gethostname()
    if torch.cuda.is_available():
        device = (os.environ.get("CUDA_VISIBLE_DEVICES") or "0").split(",")[0]
        return f"stylebench-gpu-{host}-{device}"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return f"stylebench-mps-{host}"
    return f"stylebench-cpu-{host}"


def ensure_limit(name: str, limit: int = SLOT_LIMIT) -> None:
    """Create the global concurrency limit ``name`` unless it exists (strict slots need it)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            try:
                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=name, limit=limit)
                )
            except ObjectAlreadyExists:
                pass


@contextmanager
def accelerator_slot() -> Iterator[None]:
    """Hold this machine's accelerator slot (strict: a missing limit is an error)."""
    from prefect.concurrency.sync import concurrency

    name = accelerator_slot_name()
    ensure_limit(name)
    with concurrency(name, occupy=1, strict=True):
        yield


def _summary_artifacts(key: str, title: str, rows: list[dict[str, Any]], notes: str = "") -> None:
    if rows:
        create_table_artifact(table=rows, key=key, description=title)
    lines = [f"# {title}", ""]
    if rows:
        cols = list(rows[0])
        lines += ["| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols)]
        lines += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]
    else:
        lines.append("Nothing to do.")
    if notes:
        lines += ["", notes]
    create_markdown_artifact(markdown="\n".join(lines), key=f"{key}-report", description=title)


# ------------------------------------------------------------ dataset ---
@task(retries=3, retry_delay_seconds=[5, 30, 120], cache_policy=NO_CACHE)
def scrape_query(data_dir: str | None, query: dict[str, Any]) -> dict[str, Any]:
    """One search query into the catalog (network I/O: retried)."""
    from scraper import scrape

    q = dict(query)
    summary = scrape(
        Store(data_dir),
        q.pop("query"),
        q.pop("role"),
        q.pop("engine"),
        q.pop("max"),
        **{k: v for k, v in q.items() if v is not None},
    )
    return summary_dict(summary)


@task(cache_policy=NO_CACHE)
def import_source(data_dir: str | None, source: str, role: str) -> dict[str, Any]:
    """A folder, file or URL list into the catalog."""
    from scraper import import_sources

    return summary_dict(import_sources(Store(data_dir), [source], role))


def summary_dict(summary: Any) -> dict[str, Any]:
    """A scrape summary as plain values."""
    from dataclasses import asdict, is_dataclass

    data = asdict(summary) if is_dataclass(summary) else dict(summary)
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in data.items()}


@flow(name="build-dataset", log_prints=True)
def build_dataset(spec: str | dict[str, Any], data_dir: str | None = None) -> list[dict[str, Any]]:
    """Scrape every query and import every source of a dataset spec, then curate."""
    dataset: DatasetSpec = load_spec(spec, DatasetSpec)
    results = []
    for q in dataset.queries:
        summary = scrape_query(data_dir, q.model_dump())
        results.append({"source": f"{q.engine}: {q.query}", "role": q.role, **_counts(summary)})
    for imp in dataset.imports:
        summary = import_source(data_dir, imp.source, imp.role)
        results.append({"source": imp.source, "role": imp.role, **_counts(summary)})
    _summary_artifacts("build-dataset", f"Dataset {dataset.name}", results)
    return results


def _counts(summary: dict[str, Any]) -> dict[str, Any]:
    keys = ("found", "downloaded", "accepted", "rejected")
    out = {k: summary.get(k) for k in keys if k in summary}
    if "rejected" not in out and "rejected_by_reason" in summary:
        out["rejected"] = sum(summary["rejected_by_reason"].values())
    return out


# -------------------------------------------------------------- pairing ---
@flow(name="pair-images", log_prints=True)
def pair_images(
    strategy: str = "all",
    styles_per_pair: int = 1,
    seed: int = 0,
    style_weights: list[float] | None = None,
    data_dir: str | None = None,
) -> dict[str, Any]:
    """Pair accepted content images with accepted styles; record the new pairs."""
    pairs, new = pair_catalog(
        Store(data_dir), strategy, styles_per_pair=styles_per_pair, seed=seed, weights=style_weights
    )
    result = {"strategy": strategy, "pairs": len(pairs), "new": new}
    _summary_artifacts("pair-images", "Pairs", [result])
    return result


# ------------------------------------------------------------ stylising ---
@task(cache_policy=NO_CACHE)
def stylize_items(data_dir: str | None, items: list[dict[str, Any]]) -> dict[str, Any]:
    """Run one batch; only the transfer itself holds the accelerator slot."""
    logger = get_run_logger()
    store = Store(data_dir)
    work = [WorkItem.from_dict(i) for i in items]
    pending = without_done(store, work)
    if len(pending) < len(work):
        logger.info(
            "%d item(s) were recorded ok meanwhile; skipping them", len(work) - len(pending)
        )
    outcome = run_batch(
        store,
        pending,
        accelerator_slot=accelerator_slot,
        on_item=lambda item, status: logger.info(
            "%s %s: %s", item.pair_id, item.config_hash[:8], status
        ),
    )
    return {
        "ok": outcome.ok,
        "failed": outcome.failed,
        "diverged": outcome.diverged,
        "seconds": round(outcome.seconds, 2),
    }


@flow(name="stylize-batch", log_prints=True)
def stylize_batch(items: list[dict[str, Any]], data_dir: str | None = None) -> dict[str, Any]:
    """One batch of (pair, config) work items, recorded atomically."""
    return stylize_items(data_dir, items)


@flow(name="stylize-nightly", log_prints=True)
def stylize_nightly(
    experiment: str | dict[str, Any],
    data_dir: str | None = None,
    distribute: bool = False,
    gpus: list[str] | None = None,
    batch_deployment: str = "stylize-batch/stylize-batch",
    wait_timeout_s: float = 24 * 3600,
    poll_seconds: float = 2.0,
) -> dict[str, Any]:
    """Every pending (pair, config) of an experiment, in batches; skips what is recorded ``ok``.

    With ``distribute`` each batch becomes a run of ``batch_deployment``, so every
    worker of the pool takes a share; with ``gpus`` the batches go round-robin to the
    work queues ``gpu-<id>`` with ``CUDA_VISIBLE_DEVICES=<id>`` in their job variables.
    Without ``distribute`` the batches run here, one after another.
    """
    logger = get_run_logger()
    spec: ExperimentSpec = load_spec(experiment, ExperimentSpec)
    store = Store(data_dir)
    configs = expand_configs(spec)
    items = plan(store, configs, strategy=spec.pairs.strategy, limit=spec.pairs.limit)
    batches = make_batches(items, spec.batch_size)
    logger.info(
        "%d pending item(s) in %d batch(es) for %d config(s)",
        len(items),
        len(batches),
        len(configs),
    )
    total = BatchOutcome()
    if distribute and batches:
        _run_distributed(
            batches, data_dir, batch_deployment, gpus or [], wait_timeout_s, poll_seconds
        )
    else:
        for batch in batches:
            result = stylize_items(data_dir, [i.to_dict() for i in batch])
            total.ok += result["ok"]
            total.failed += result["failed"]
            total.diverged += result["diverged"]
    remaining = plan(store, configs, strategy=spec.pairs.strategy, limit=spec.pairs.limit)
    by_method = store.query(
        "SELECT method, status, count(*) AS runs, round(avg(seconds_total), 2) AS mean_seconds "
        "FROM runs WHERE list_contains(?, config_hash) GROUP BY 1, 2 ORDER BY 1, 2",
        [[c.config_hash() for c in configs]],
    ).to_pylist()
    _summary_artifacts(
        "stylize-nightly",
        f"Experiment {spec.name}",
        by_method,
        notes=f"{len(items)} item(s) planned in {len(batches)} batch(es); {len(remaining)} still pending.",
    )
    counts = {
        s: sum(r["runs"] for r in by_method if r["status"] == s)
        for s in ("ok", "failed", "diverged")
    }
    if not distribute:
        counts = {"ok": total.ok, "failed": total.failed, "diverged": total.diverged}
    return {"planned": len(items), "batches": len(batches), "pending": len(remaining), **counts}


def cancel_unstarted_runs(deployment: str) -> int:
    """Cancel the scheduled or pending runs of ``deployment``: their items are planned afresh."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.states import Cancelled

    with get_client(sync_client=True) as client:
        target = client.read_deployment_by_name(deployment)
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[target.id])),
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(
                    type=FlowRunFilterStateType(any_=[StateType.SCHEDULED, StateType.PENDING])
                )
            ),
        )
        for run in runs:
            client.set_flow_run_state(
                run.id, Cancelled(message="superseded by a new plan"), force=True
            )
    return len(runs)


def _run_distributed(
    batches: list[list[WorkItem]],
    data_dir: str | None,
    deployment: str,
    gpus: list[str],
    wait_timeout_s: float,
    poll_seconds: float,
) -> None:
    """Submit one deployment run per batch, then wait until all have finished (or time out)."""
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    logger = get_run_logger()
    stale = cancel_unstarted_runs(deployment)
    if stale:
        logger.info("cancelled %d batch run(s) of an earlier night that never started", stale)
    ids = []
    for n, batch in enumerate(batches):
        routing: dict[str, Any] = {}
        if gpus:
            gpu = str(gpus[n % len(gpus)])
            routing = {
                "work_queue_name": f"gpu-{gpu}",
                "job_variables": {"env": {"CUDA_VISIBLE_DEVICES": gpu}},
            }
        run = run_deployment(
            deployment,
            parameters={"items": [i.to_dict() for i in batch], "data_dir": data_dir},
            timeout=0,
            flow_run_name=f"batch-{n + 1}-of-{len(batches)}",
            **routing,
        )
        ids.append(run.id)
    logger.info("submitted %d batch run(s) to %s", len(ids), deployment)
    deadline = time.monotonic() + wait_timeout_s
    with get_client(sync_client=True) as client:
        while True:
            states = [client.read_flow_run(i).state for i in ids]
            if all(s is not None and s.is_final() for s in states):
                break
            if time.monotonic() > deadline:
                logger.warning(
                    "stopped waiting after %.0f s; a rerun finishes what is left", wait_timeout_s
                )
                return
            time.sleep(poll_seconds)
    failed = [i for i, s in zip(ids, states, strict=True) if not s.is_completed()]
    if failed:
        logger.warning("%d batch run(s) did not complete; rerun to finish their items", len(failed))


# ---------------------------------------------------------- loss matrix ---
@flow(name="loss-matrix", log_prints=True)
def loss_matrix(
    feature_models: list[str] | None = None,
    role: str | None = None,
    size: int = 256,
    experiment_id: str | None = None,
    limit: int = 50,
    data_dir: str | None = None,
) -> dict[str, Any]:
    """Content and style loss between every pair of accepted images, once per feature network."""
    import uuid

    from styletransfer.lossmatrix import loss_matrix as compute

    store = Store(data_dir)
    rows = store.query(
        "SELECT image_id, path FROM catalog WHERE status = 'accepted' AND (? IS NULL OR role = ?) "
        "ORDER BY role, image_id LIMIT ?",
        [role, role, int(limit)],
    ).to_pylist()
    paths = [str(store.local_path(r["path"])) for r in rows]
    experiment_id = experiment_id or uuid.uuid4().hex[:12]
    summary = []
    for model in feature_models or ["vgg19"]:
        matrix = compute(paths, model, size=size)
        store.append("loss_matrix", matrix.rows(experiment_id))
        summary.append(
            {
                "feature_model": model,
                "images": len(paths),
                "mean_style_loss": round(_mean_offdiag(matrix.style), 6),
                "mean_content_loss": round(_mean_offdiag(matrix.content), 6),
            }
        )
    _summary_artifacts("loss-matrix", f"Loss matrix {experiment_id}", summary)
    return {"experiment_id": experiment_id, "models": summary}


def _mean_offdiag(matrix: tuple[tuple[float, ...], ...]) -> float:
    n = len(matrix)
    values = [matrix[i][j] for i in range(n) for j in range(n) if i != j]
    return sum(values) / len(values) if values else 0.0


# ------------------------------------------------------------ train fast ---
@flow(name="train-fast", log_prints=True)
def train_fast(
    styles: list[str],
    name: str,
    steps: int = 40_000,
    batch_size: int = 4,
    size: int = 256,
    feature_model: str = "vgg19",
    checkpoint_every: int = 500,
    device: str = "auto",
    data_dir: str | None = None,
) -> dict[str, Any]:
    """Train a feed-forward network on the accepted content images (resumes from checkpoints)."""
    from flows.training import content_images, resolve_styles, train_on_catalog
    from styletransfer.fast import TrainConfig

    logger = get_run_logger()
    store = Store(data_dir)
    config = TrainConfig(
        steps=steps,
        batch_size=batch_size,
        size=size,
        feature_model=feature_model,
        checkpoint_every=checkpoint_every,
    )
    every = max(1, steps // 20)

    def on_step(info: Any) -> None:
        if info.step % every == 0 or info.step == steps:
            logger.info("step %d/%d loss %.4g", info.step, steps, info.losses["total"])

    result = train_on_catalog(
        store,
        resolve_styles(store, styles),
        content_images(store),
        name,
        config,
        device=device,
        on_step=on_step,
    )
    summary = {
        "model": name,
        "steps": result.meta.steps,
        "seconds": round(result.seconds, 1),
        **{f"loss_{k}": round(v, 6) for k, v in result.meta.final_losses.items()},
    }
    _summary_artifacts("train-fast", f"Fast model {name}", [summary])
    return summary
