"""Catalog-facing steps shared by the flows and the CLI: pairing accepted images, recording pairs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone

import numpy as np
from PIL import Image

from flows.pairing import Pair, colour_embedding, make_pairs
from storage import Store


def accepted(store: Store, role: str) -> list[dict]:
    """Accepted images of ``role``: image_id and path, oldest first."""
    return store.query(
        "SELECT image_id, path FROM catalog WHERE role = ? AND status = 'accepted' "
        "ORDER BY fetched_at, image_id",
        [role],
    ).to_pylist()


def embeddings(store: Store, rows: Sequence[dict]) -> dict[str, np.ndarray]:
    """Colour embeddings of images, read from a 64 px thumbnail of each."""
    out = {}
    for row in rows:
        with Image.open(store.local_path(row["path"])) as im:
            im = im.convert("RGB")
            im.thumbnail((64, 64))
            out[row["image_id"]] = colour_embedding(np.asarray(im))
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
        [r["image_id"] for r in contents],
        [r["image_id"] for r in styles],
        k=styles_per_pair,
        seed=seed,
        weights=weights,
        embeddings=emb,
    )
    known = {r["pair_id"] for r in store.query("SELECT DISTINCT pair_id FROM pairs").to_pylist()}
    now = datetime.now(timezone.utc)
    new = [
        {
            "pair_id": p.pair_id,
            "content_id": p.content_id,
            "style_ids": list(p.style_ids),
            "style_weights": list(p.style_weights),
            "strategy": p.strategy,
            "created_at": now,
        }
        for p in pairs
        if p.pair_id not in known
    ]
    store.append("pairs", new)
    return pairs, len(new)
