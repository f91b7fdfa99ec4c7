"""Pairing strategies: which style images each content image is stylised with (pure functions)."""

from __future__ import annotations

import hashlib
import itertools
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

STRATEGIES = ("all", "random", "similar")


@dataclass(frozen=True)
class Pair:
    """One content image with one or more styles and their blend weights."""

    pair_id: str
    content_id: str
    style_ids: tuple[str, ...]
    style_weights: tuple[float, ...]
    strategy: str


def pair_id_for(
    content_id: str,
    style_ids: Sequence[str],
    weights: Sequence[float],
    mask_ids: Sequence[str] = (),
) -> str:
    """A stable id: the same content, styles, weights (and masks) always make the same pair.

    ``mask_ids`` (the sha256 of the content's mask, then of each style's) make a pair with
    masks another pair than the same images without them, or with other masks.
    """
    key = (
        content_id + "|" + ",".join(f"{s}:{w:.6g}" for s, w in zip(style_ids, weights, strict=True))
    )
    if mask_ids:
        key += "|masks:" + ",".join(mask_ids)
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _make(
    content: str, styles: Sequence[str], weights: Sequence[float] | None, strategy: str
) -> Pair:
    styles = tuple(styles)
    if weights is None:
        weights = tuple(1.0 / len(styles) for _ in styles)
    if len(weights) != len(styles):
        raise ValueError(f"{len(weights)} style weights for {len(styles)} styles")
    total = float(sum(weights))
    if not math.isfinite(total) or total <= 0 or any(not w >= 0 for w in weights):
        raise ValueError(
            f"style weights must be finite, non-negative, with a positive sum, got {list(weights)}"
        )
    norm = tuple(float(w) / total for w in weights)
    return Pair(pair_id_for(content, styles, norm), content, styles, norm, strategy)


def _check(contents: Sequence[str], styles: Sequence[str], k: int) -> None:
    if not contents:
        raise ValueError("no accepted content images to pair: import or accept some first")
    if not styles:
        raise ValueError("no accepted style images to pair: import or accept some first")
    if k < 1:
        raise ValueError(f"styles per pair must be at least 1, got {k}")
    if k > len(styles):
        raise ValueError(f"{k} styles per pair asked for, but only {len(styles)} style image(s)")


def pair_all(
    contents: Sequence[str],
    styles: Sequence[str],
    k: int = 1,
    weights: Sequence[float] | None = None,
) -> list[Pair]:
    """Every content image with every style (k=1) or every set of k styles."""
    _check(contents, styles, k)
    return [
        _make(c, combo, weights, "all")
        for c in contents
        for combo in itertools.combinations(styles, k)
    ]


def pair_random(
    contents: Sequence[str],
    styles: Sequence[str],
    k: int = 1,
    seed: int = 0,
    weights: Sequence[float] | None = None,
) -> list[Pair]:
    """k distinct styles drawn per content image, reproducibly from ``seed``."""
    _check(contents, styles, k)
    rng = random.Random(seed)
    ordered = sorted(styles)
    return [_make(c, rng.sample(ordered, k), weights, "random") for c in sorted(contents)]


def colour_embedding(rgb: np.ndarray, bins: int = 4) -> np.ndarray:
    """A normalised joint RGB histogram (bins**3 values) of an HxWx3 uint8 image."""
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 RGB array, got shape {rgb.shape}")
    q = (rgb.astype(np.int64) * bins) // 256  # [H, W, 3] bin index per channel
    flat = (q[..., 0] * bins + q[..., 1]) * bins + q[..., 2]
    hist = np.bincount(flat.ravel(), minlength=bins**3).astype(np.float64)
    return hist / hist.sum()


def pair_similar(
    contents: Sequence[str],
    styles: Sequence[str],
    embeddings: Mapping[str, np.ndarray],
    k: int = 1,
    weights: Sequence[float] | None = None,
) -> list[Pair]:
    """The k styles nearest to each content image by embedding (Hellinger distance)."""
    _check(contents, styles, k)
    missing = [i for i in [*contents, *styles] if i not in embeddings]
    if missing:
        raise ValueError(f"no embedding for {len(missing)} image(s), e.g. {missing[0]}")
    style_ids = sorted(styles)
    s = np.sqrt(np.stack([embeddings[i] for i in style_ids]))  # [S, D]
    pairs = []
    for c in sorted(contents):
        d = np.linalg.norm(s - np.sqrt(embeddings[c])[None, :], axis=1)  # [S]
        nearest = [style_ids[j] for j in np.argsort(d, kind="stable")[:k]]
        pairs.append(_make(c, nearest, weights, "similar"))
    return pairs


def make_pairs(
    strategy: str,
    contents: Sequence[str],
    styles: Sequence[str],
    *,
    k: int = 1,
    seed: int = 0,
    weights: Sequence[float] | None = None,
    embeddings: Mapping[str, np.ndarray] | None = None,
) -> list[Pair]:
    """Dispatch on ``strategy`` (one of STRATEGIES)."""
    if strategy == "all":
        return pair_all(contents, styles, k, weights)
    if strategy == "random":
        return pair_random(contents, styles, k, seed, weights)
    if strategy == "similar":
        if embeddings is None:
            raise ValueError("the similar strategy needs image embeddings")
        return pair_similar(contents, styles, embeddings, k, weights)
    raise ValueError(
        f"unknown pairing strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}"
    )
