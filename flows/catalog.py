"""Catalog-facing steps shared by the flows and the CLI: pairing, scrape summaries, loss matrices."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import asdict, is_dataclass
from typing import Any

import numpy as np
from PIL import Image

from flows.pairing import Pair, colour_embedding, make_pairs
from storage import CatalogImage, MatrixCell, PairRecord, Store


def accepted(store: Store, role: str) -> list[CatalogImage]:
    """Accepted images of ``role``, oldest first."""
    return store.catalog.accepted(role)


def embeddings(store: Store, images: Sequence[CatalogImage]) -> dict[str, np.ndarray]:
    """Colour embeddings of images, read from a 64 px thumbnail of each."""
    out = {}
    for image in images:
        with Image.open(store.local_path(image.path or "")) as im:
            im = im.convert("RGB")
            im.thumbnail((64, 64))
            out[image.image_id] = colour_embedding(np.asarray(im))
    return out


def pair_catalog(
    store: Store,
    strategy: str = "all",
    *,
    styles_per_pair: int = 1,
    seed: int = 0,
    weights: Sequence[float] | None = None,
) -> tuple[list[Pair], int]:
    """Pair accepted content with accepted styles and record the pairs not yet recorded.

    Returns (all pairs of this strategy, how many were new).
    """
    contents, styles = accepted(store, "content"), accepted(store, "style")
    emb = embeddings(store, [*contents, *styles]) if strategy == "similar" else None
    pairs = make_pairs(
        strategy,
        [i.image_id for i in contents],
        [i.image_id for i in styles],
        k=styles_per_pair,
        seed=seed,
        weights=weights,
        embeddings=emb,
    )
    new = store.catalog.record_pairs(
        [
            PairRecord(
                p.pair_id, p.content_id, tuple(p.style_ids), tuple(p.style_weights), p.strategy
            )
            for p in pairs
        ]
    )
    return pairs, new


def summary_dict(summary: Any) -> dict[str, Any]:
    """A scrape summary as plain values."""
    data = asdict(summary) if is_dataclass(summary) else dict(summary)
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in data.items()}


def summary_counts(summary: dict[str, Any]) -> dict[str, Any]:
    """Found, downloaded, accepted and rejected of a scrape summary."""
    keys = ("found", "downloaded", "accepted", "rejected")
    out = {k: summary.get(k) for k in keys if k in summary}
    if "rejected" not in out and "rejected_by_reason" in summary:
        out["rejected"] = sum(summary["rejected_by_reason"].values())
    return out


def loss_matrices(
    store: Store,
    feature_models: Sequence[str],
    *,
    role: str | None = None,
    size: int = 256,
    experiment_id: str | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    """Content and style loss between accepted images under each network, recorded."""
    from styletransfer.lossmatrix import loss_matrix as compute

    images = store.catalog.accepted(role, limit=limit, order="role")
    paths = [str(store.local_path(i.path or "")) for i in images]
    experiment_id = experiment_id or uuid.uuid4().hex[:12]
    summary = []
    for model in feature_models:
        matrix = compute(paths, model, size=size)
        cells = [MatrixCell(**row) for row in matrix.rows(experiment_id)]
        summary.append({"feature_model": model, **store.matrices.record(cells)})
    return {"experiment_id": experiment_id, "models": summary}
