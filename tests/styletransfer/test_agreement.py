"""Rank agreement and normalisation of loss matrices under different feature networks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from styletransfer.agreement import (
    RankAgreement,
    interpret,
    normalised,
    pair_values,
    rank_agreement,
)

IMAGES = "abcdef"


def _matrix(values: dict[tuple[str, str], float]) -> list[tuple[str, str, float]]:
    """Cells of a full square matrix, both directions and a zero diagonal."""
    cells = [(i, i, 0.0) for i in IMAGES]
    for (a, b), v in values.items():
        cells += [(a, b, v), (b, a, v)]
    return cells


def _pairs(seed: int = 0) -> dict[tuple[str, str], float]:
    rng = np.random.default_rng(seed)
    return {
        (a, b): float(rng.uniform(1, 100)) for i, a in enumerate(IMAGES) for b in IMAGES[i + 1 :]
    }


def test_identical_matrices_agree_fully_and_reversed_ranks_fully_disagree():
    base = pair_values(_matrix(_pairs()))
    same = rank_agreement(base, dict(base))
    assert same.spearman == pytest.approx(1.0) and same.kendall == pytest.approx(1.0)
    assert same.pairs == 15  # 6 images: 15 unordered pairs, the diagonal left out
    reversed_ = rank_agreement(base, {k: 1.0 / v for k, v in base.items()})
    assert reversed_.spearman == pytest.approx(-1.0) and reversed_.kendall == pytest.approx(-1.0)


def test_agreement_is_about_order_not_scale():
    # a network whose losses are a monotone function of another's, 1e5 times larger
    base = pair_values(_matrix(_pairs(1)))
    scaled = {k: 1e5 * v**3 for k, v in base.items()}
    assert rank_agreement(base, scaled).spearman == pytest.approx(1.0)
    # ...and normalised by their medians, the two are of one scale
    assert np.median(list(normalised(scaled).values())) == pytest.approx(1.0)
    assert np.median(list(normalised(base).values())) == pytest.approx(1.0)


def test_unrelated_matrices_agree_weakly_with_a_large_p_value():
    a, b = pair_values(_matrix(_pairs(2))), pair_values(_matrix(_pairs(3)))
    got = rank_agreement(a, b)
    assert -0.6 < got.spearman < 0.6 and got.p_value > 0.05


def test_pair_values_average_both_directions_and_skip_the_diagonal_and_gaps():
    cells = [("a", "b", 2.0), ("b", "a", 4.0), ("a", "a", 0.0), ("a", "c", None)]
    cells += [("b", "c", math.nan), ("c", "b", 5.0)]
    assert pair_values(cells) == {("a", "b"): 3.0, ("b", "c"): 5.0}


def test_too_few_or_constant_pairs_give_no_statistic():
    two = {("a", "b"): 1.0, ("a", "c"): 2.0}
    few = rank_agreement(two, two)
    assert math.isnan(few.spearman) and math.isnan(few.kendall) and few.pairs == 2
    flat = {k: 1.0 for k in _pairs()}
    got = rank_agreement(flat, _pairs())
    assert not got.defined and got.pairs == 15
    assert "too few" in interpret(got, "style", "vgg19", "vgg16", 10.0)
    assert all(math.isnan(v) for v in normalised({("a", "b"): 0.0, ("a", "c"): 0.0}).values())


def test_only_pairs_both_networks_measured_count():
    a = {("a", "b"): 1.0, ("a", "c"): 2.0, ("b", "c"): 3.0, ("c", "d"): 4.0}
    b = {("a", "b"): 10.0, ("a", "c"): 20.0, ("b", "c"): 30.0, ("x", "y"): 1.0}
    assert rank_agreement(a, b).pairs == 3


def test_the_sentence_says_what_the_statistic_means():
    strong = RankAgreement(0.95, 0.85, 0.001, 45)
    text = interpret(strong, "style", "vgg19", "resnet101", 2500.0)
    assert "almost alike" in text and "2,500 times" in text and "normalising" in text
    assert "45 image pairs" in text and "chance" not in text
    assert "1/100 of" in interpret(strong, "style", "a", "b", 0.01)
    against = interpret(RankAgreement(-0.4, -0.3, 0.2, 10), "content", "a", "b", 0.01)
    assert "do not agree" in against and "could be chance" in against
