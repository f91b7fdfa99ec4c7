"""The loss_matrix_agreement view: what styletransfer.agreement computes, in SQL."""

from __future__ import annotations

import numpy as np
import pytest

from storage import Store
from styletransfer.agreement import median_scale, pair_values, rank_agreement

IMAGES = [f"img{i}" for i in range(7)]


def _cells(experiment: str, model: str, values: dict[tuple[str, str], float]) -> list[dict]:
    rows = []
    for a in IMAGES:
        for b in IMAGES:
            v = 0.0 if a == b else values[(min(a, b), max(a, b))]
            rows.append(
                {
                    "experiment_id": experiment,
                    "feature_model": model,
                    "image_a": a,
                    "image_b": b,
                    "content_loss": v * 3,
                    "style_loss": v,
                }
            )
    return rows


def test_the_view_matches_the_pure_function(tmp_path):
    rng = np.random.default_rng(7)
    keys = [(a, b) for i, a in enumerate(IMAGES) for b in IMAGES[i + 1 :]]
    vgg19 = {k: float(rng.uniform(1e5, 1e7)) for k in keys}
    noisy = {k: v / 1e4 * float(rng.uniform(0.5, 2)) for k, v in vgg19.items()}
    noisy[keys[0]] = noisy[keys[1]]  # a tie: both take their mean rank
    store = Store(str(tmp_path / "data"))
    store.append("loss_matrix", _cells("e1", "vgg19", vgg19))
    store.append("loss_matrix", _cells("e1", "vgg16", noisy))
    store.append("loss_matrix", _cells("e1", "vgg16", noisy))  # recorded twice: no double count
    store.append("loss_matrix", _cells("e2", "vgg19", vgg19))  # one network: nothing to compare
    rows = store.query(
        "SELECT * FROM loss_matrix_agreement ORDER BY experiment_id, loss", locked=True
    ).to_pylist()
    assert [(r["experiment_id"], r["loss"], r["model_a"], r["model_b"]) for r in rows] == [
        ("e1", "content", "vgg16", "vgg19"),
        ("e1", "style", "vgg16", "vgg19"),
    ]
    table = store.read("loss_matrix").to_pylist()
    for row in rows:
        by_model = {
            m: pair_values(
                (r["image_a"], r["image_b"], r[f"{row['loss']}_loss"])
                for r in table
                if r["experiment_id"] == "e1" and r["feature_model"] == m
            )
            for m in ("vgg16", "vgg19")
        }
        expected = rank_agreement(by_model["vgg16"], by_model["vgg19"])
        assert row["pairs"] == expected.pairs == 21
        assert row["spearman"] == pytest.approx(expected.spearman, abs=1e-9)
        assert 0.3 < row["spearman"] < 1.0
        assert row["median_a"] == pytest.approx(median_scale(by_model["vgg16"]))
        assert row["median_b"] == pytest.approx(median_scale(by_model["vgg19"]))
