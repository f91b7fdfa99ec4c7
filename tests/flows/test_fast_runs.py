"""Fast runs through the batch runner: the model found in the data directory, losses measured."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from flows.batch import plan, run_batch
from flows.catalog import pair_catalog
from styletransfer import TransferConfig
from styletransfer.fast.config import TrainConfig
from styletransfer.fast.model import ModelMeta, StyleInfo, dataset_fingerprint, save_model
from styletransfer.fast.network import NetworkSpec, TransformerNet


def _model(directory: Path, style_ids: list[str]) -> None:
    torch.manual_seed(0)
    spec = NetworkSpec(num_styles=len(style_ids), base_channels=8, residual_blocks=1)
    training = TrainConfig(
        steps=1,
        content_layers=("relu4_2",),
        style_layers=("relu1_1", "relu2_1"),
        base_channels=8,
        residual_blocks=1,
    )
    meta = ModelMeta(
        name=directory.name,
        network=spec,
        styles=tuple(StyleInfo(f"s{i}", s) for i, s in enumerate(style_ids)),
        training=training,
        steps=1,
        dataset_fingerprint=dataset_fingerprint(["c"]),
        dataset_size=1,
    )
    save_model(directory, TransformerNet(spec), meta)


def test_fast_runs_record_losses_and_only_their_settings(small_catalog):
    store = small_catalog
    pair_catalog(store, "all")
    pairs = store.read("pairs").to_pylist()
    style_ids = sorted({s for p in pairs for s in p["style_ids"]})
    _model(Path(store.loc.join("models", "duo")), style_ids)
    config = TransferConfig(method="fast", model="duo", size=32, device="cpu")
    items = plan(store, [config])
    assert len(items) == len(pairs) == 6
    outcome = run_batch(store, items)
    assert outcome.ok == 6, store.read("runs").to_pylist()
    for row in store.read("runs").to_pylist():
        assert row["config_hash"] == config.config_hash()  # the planning identity
        recorded = json.loads(row["config"])
        assert "steps" not in recorded and "optimizer" not in recorded
        assert "models_dir" not in recorded["extra"]
        pair = next(p for p in pairs if p["pair_id"] == row["pair_id"])
        (style,) = pair["style_ids"]
        assert recorded["style_weights"] == [1.0 if s == style else 0.0 for s in style_ids]
        assert row["loss_total"] > 0 and math.isfinite(row["loss_total"])
        assert row["loss_content"] > 0 and row["loss_style"] > 0
        assert row["loss_total"] == row["loss_content"] + row["loss_style"] + row["loss_tv"]
