"""The experiment files in examples/ are valid and ask the questions they say they ask."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.demo import demo_runs
from flows.specs import ExperimentSpec, expand_configs, load_spec

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
FIVE = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


def _spec(name: str) -> ExperimentSpec:
    return load_spec(EXAMPLES / name, ExperimentSpec)


EXPERIMENTS = sorted(p.name for p in EXAMPLES.glob("*.yaml") if p.name != "dataset.yaml")


@pytest.mark.parametrize("path", EXPERIMENTS)
def test_every_experiment_file_expands(path):
    assert expand_configs(_spec(path))


def test_the_examples_include_the_layer_sets_and_the_methods_comparison():
    assert {"gatys-layers.yaml", "gatys-layer-weights.yaml", "methods.yaml"} <= set(EXPERIMENTS)


def test_gatys_layer_sets_make_one_experiment_of_five_settings():
    equal, weighted = _spec("gatys-layers.yaml"), _spec("gatys-layer-weights.yaml")
    assert equal.name == weighted.name  # recorded as one experiment, reported on one page
    configs = expand_configs(equal) + expand_configs(weighted)
    assert len({c.config_hash() for c in configs}) == 5
    layers = {tuple(c.style_layers) for c in configs}
    assert layers == {FIVE, FIVE[:3], FIVE[2:]}
    weights = {c.resolved().style_layer_weights for c in configs if c.style_layers == FIVE}
    assert len(weights) == 3  # equal, fine first, coarse first


def test_the_demo_runs_the_methods_comparison():
    spec = _spec("methods.yaml")
    demo = {m for run in demo_runs(128, 50) for m in run.methods}
    assert set(spec.methods) <= demo and spec.pairs.strategy == "similar"
    assert len(spec.grid["size"]) == 2
