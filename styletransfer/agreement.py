"""Loss matrices of different feature networks compared: normalised values and rank agreement."""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

K = TypeVar("K", bound=Hashable)

# Fewer common image pairs than this and no rank statistic is computed.
MIN_PAIRS = 3


@dataclass(frozen=True)
class RankAgreement:
    """How alike two networks order the same image pairs by a loss.

    ``spearman`` (rho) and ``kendall`` (tau-b) are 1 for the same order, -1 for the reverse,
    NaN when there are fewer than ``MIN_PAIRS`` common pairs or one side is constant;
    ``p_value`` is Spearman's two-sided test of no association; ``pairs`` counts the image
    pairs both networks measured.
    """

    spearman: float
    kendall: float
    p_value: float
    pairs: int

    @property
    def defined(self) -> bool:
        return math.isfinite(self.spearman)


def pair_values(cells: Iterable[tuple[str, str, float | None]]) -> dict[tuple[str, str], float]:
    """One value per unordered pair of distinct images, keyed ``(a, b)`` with ``a < b``.

    ``cells`` are ``(image_a, image_b, loss)``; the diagonal, nulls and non-finite values are
    left out, and a pair recorded both ways (or twice) takes the mean of its values.
    """
    sums: dict[tuple[str, str], list[float]] = defaultdict(list)
    for a, b, value in cells:
        if a == b or value is None or not math.isfinite(value):
            continue
        sums[(min(a, b), max(a, b))].append(float(value))
    return {key: sum(vs) / len(vs) for key, vs in sums.items()}


def median_scale(values: Mapping[K, float]) -> float:
    """The median of ``values`` (a network's off-diagonal losses): its normaliser; NaN if none."""
    finite = [v for v in values.values() if math.isfinite(v)]
    return float(np.median(finite)) if finite else math.nan


def normalised(values: Mapping[K, float]) -> dict[K, float]:
    """Each value divided by the median of ``values``; NaN everywhere if that median is 0 or none.

    Two networks' losses differ in scale by orders of magnitude; divided by their own median
    off-diagonal loss, 1 means "a typical pair under this network" under either.
    """
    scale = median_scale(values)
    if not math.isfinite(scale) or scale == 0:
        return {k: math.nan for k in values}
    return {k: v / scale for k, v in values.items()}


def rank_agreement(a: Mapping[K, float], b: Mapping[K, float]) -> RankAgreement:
    """Spearman's rho and Kendall's tau between two networks' losses over their common keys."""
    from scipy import stats

    keys = [k for k in a if k in b and math.isfinite(a[k]) and math.isfinite(b[k])]
    n = len(keys)
    if n < MIN_PAIRS:
        return RankAgreement(math.nan, math.nan, math.nan, n)
    x = np.array([a[k] for k in keys], dtype=np.float64)
    y = np.array([b[k] for k in keys], dtype=np.float64)
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return RankAgreement(math.nan, math.nan, math.nan, n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # small samples: scipy warns, the values stand
        rho, p_value = stats.spearmanr(x, y)
        tau = stats.kendalltau(x, y).statistic
    return RankAgreement(float(rho), float(tau), float(p_value), n)


def interpret(
    agreement: RankAgreement, loss: str, model_a: str, model_b: str, scale_ratio: float
) -> str:
    """One sentence on whether ``loss`` under ``model_a`` and ``model_b`` can be compared.

    ``scale_ratio``: ``model_a``'s median off-diagonal loss over ``model_b``'s.
    """
    n = agreement.pairs
    if not agreement.defined:
        return (
            f"{n} image pair(s) measured by both, too few (or too uniform) to compare how "
            f"{model_a} and {model_b} order them."
        )
    rho = agreement.spearman
    scale = (
        f"raw values differ in scale ({model_a}'s typical {loss} loss is "
        f"{_times(scale_ratio)} {model_b}'s), so compare them only after normalising"
        if math.isfinite(scale_ratio) and scale_ratio > 0
        else "raw values differ in scale"
    )
    if rho >= 0.8:
        verdict = (
            f"{model_a} and {model_b} order the {n} image pairs by {loss} loss almost alike: "
            f"rankings carry over between the networks, but {scale}"
        )
    elif rho >= 0.5:
        verdict = (
            f"{model_a} and {model_b} broadly agree on which of the {n} image pairs are close in "
            f"{loss} but swap many neighbours: compare coarse rankings only"
        )
    elif rho > 0:
        verdict = (
            f"{model_a} and {model_b} agree only weakly on the {n} image pairs' {loss} losses: "
            "a loss under one says little about the other"
        )
    else:
        verdict = (
            f"{model_a} and {model_b} do not agree on the {n} image pairs' {loss} losses: "
            "they measure different things; do not compare them"
        )
    if agreement.p_value > 0.05:
        verdict += f" (with {n} pairs this could be chance)"
    return verdict + "."


def _times(ratio: float) -> str:
    """``ratio`` as "2,500 times" or "1/40 of", for a sentence."""
    if ratio < 1:
        inverse = 1 / ratio
        return f"1/{inverse:,.0f} of" if inverse >= 100 else f"1/{inverse:.3g} of"
    return f"{ratio:,.0f} times" if ratio >= 100 else f"{ratio:.3g} times"
