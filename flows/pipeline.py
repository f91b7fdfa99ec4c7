"""Prefect 3 flows and tasks: thin wiring over scraper, styletransfer and storage.

Tasks take the data directory (a string) and small plain values, build what
they need inside, and return small dicts: nothing Prefect would have to hash
or pickle beyond that. Retries sit only on tasks that do network I/O. The
bodies call plain functions (``flows.batch``, ``flows.catalog``, ``flows.training``)
that the CLI calls too; Prefect-client plumbing is in ``flows.prefect_client``.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows import prefect_client as pc
from flows.batch import WorkItem, finish_experiment, plan_experiment, stylize_claimed
from flows.catalog import loss_matrices, pair_catalog, summary_counts, summary_dict
from flows.specs import DatasetSpec, ExperimentSpec, load_spec
from storage import Store


@task(
    retries=3,
    retry_delay_seconds=[5, 30, 120],
    retry_condition_fn=pc.retry_unless_storage_fault,
    cache_policy=NO_CACHE,
)
def scrape_query(data_dir: str | None, query: dict[str, Any]) -> dict[str, Any]:
    """One search query into the catalog (network I/O: retried)."""
    from scraper import scrape

    q = {k: v for k, v in query.items() if v is not None}
    args = (q.pop("query"), q.pop("role"), q.pop("engine"), q.pop("max"))
    return summary_dict(scrape(Store(data_dir), *args, **q))


@task(cache_policy=NO_CACHE)
def import_source(data_dir: str | None, source: str, role: str) -> dict[str, Any]:
    """A folder, file or URL list into the catalog."""
    from scraper import import_sources

    return summary_dict(import_sources(Store(data_dir), [source], role))


@flow(name="build-dataset", log_prints=True)
def build_dataset(spec: str | dict[str, Any], data_dir: str | None = None) -> list[dict[str, Any]]:
    """Scrape every query and import every source of a dataset spec, then curate."""
    dataset: DatasetSpec = load_spec(spec, DatasetSpec)
    results = []
    for q in dataset.queries:
        counts = summary_counts(scrape_query(data_dir, q.model_dump()))
        results.append({"source": f"{q.engine}: {q.query}", "role": q.role, **counts})
    for imp in dataset.imports:
        counts = summary_counts(import_source(data_dir, imp.source, imp.role))
        results.append({"source": imp.source, "role": imp.role, **counts})
    pc.summary_artifacts("build-dataset", f"Dataset {dataset.name}", results)
    return results


@flow(name="import-pairs", log_prints=True)
def import_pairs(folder: str, data_dir: str | None = None, dry_run: bool = False) -> dict[str, Any]:
    """A paired dataset (photos and their segmentation masks) into the catalog and ``pairs``."""
    from flows.paired import import_pairs as run_import

    result = run_import(Store(data_dir), folder, dry_run=dry_run)
    print(result.render())
    keys = ("found", "new", "known", "with_masks", "images_new", "masks_new")
    row = {"folder": result.folder, **{k: getattr(result, k) for k in keys}}
    row["refused"] = len(result.refused)
    pc.summary_artifacts("import-pairs", "Paired dataset", [row], "\n".join(result.refused))
    return asdict(result)


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
    pc.summary_artifacts("pair-images", "Pairs", [result])
    return result


@task(cache_policy=NO_CACHE)
def stylize_items(data_dir: str | None, items: list[dict[str, Any]]) -> dict[str, Any]:
    """Claim and run one batch; only the transfer itself holds the accelerator slot."""
    logger = get_run_logger()
    outcome = stylize_claimed(
        Store(data_dir),
        [WorkItem.from_dict(i) for i in items],
        accelerator_slot=pc.accelerator_slot,
        on_item=lambda item, status: logger.info(
            "%s %s: %s", item.pair_id, item.config_hash[:8], status
        ),
    )
    counts = {"ok": outcome.ok, "failed": outcome.failed, "diverged": outcome.diverged}
    return {**counts, "seconds": round(outcome.seconds, 2)}


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
    spec: ExperimentSpec = load_spec(experiment, ExperimentSpec)
    store = Store(data_dir)
    night = plan_experiment(store, spec)
    if distribute and night.batches:
        pc.run_distributed(
            night.batch_dicts(),
            data_dir,
            batch_deployment,
            gpus or [],
            wait_timeout_s,
            poll_seconds,
        )
    else:
        for batch in night.batch_dicts():
            stylize_items(data_dir, batch)
    result, by_method = finish_experiment(store, night)
    notes = f"{result['planned']} item(s) planned in {result['batches']} batch(es); "
    pc.summary_artifacts(
        "stylize-nightly",
        f"Experiment {spec.name}",
        by_method,
        notes + f"{result['pending']} still pending.",
    )
    return result


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
    result = loss_matrices(
        Store(data_dir),
        feature_models or ["vgg19"],
        role=role,
        size=size,
        experiment_id=experiment_id,
        limit=limit,
    )
    title = f"Loss matrix {result['experiment_id']}"
    pc.summary_artifacts("loss-matrix", title, result["models"])
    return result


@flow(name="train-fast", log_prints=True)
def train_fast(
    styles: list[str],
    name: str,
    steps: int | None = None,
    batch_size: int | None = None,
    size: int | None = None,
    feature_model: str | None = None,
    checkpoint_every: int | None = None,
    device: str = "auto",
    data_dir: str | None = None,
) -> dict[str, Any]:
    """Train a feed-forward network on the accepted content images (resumes from checkpoints).

    Settings left at None take TrainConfig's defaults (styletransfer.fast.config).
    """
    from flows.training import train_summary

    logger = get_run_logger()
    training = {
        "steps": steps,
        "batch_size": batch_size,
        "size": size,
        "feature_model": feature_model,
        "checkpoint_every": checkpoint_every,
    }
    summary = train_summary(Store(data_dir), styles, name, training, device=device, log=logger.info)
    pc.summary_artifacts("train-fast", f"Fast model {name}", [summary])
    return summary
