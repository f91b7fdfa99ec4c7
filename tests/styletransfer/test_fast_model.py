"""Saving and loading fast models: bit-identical outputs, metadata, clear errors on damage."""

from __future__ import annotations

import json

import pytest
import torch

from styletransfer.fast.config import TrainConfig
from styletransfer.fast.infer import stylize_tensor
from styletransfer.fast.model import (
    CorruptModel,
    ModelMeta,
    ModelNotFound,
    StyleInfo,
    dataset_fingerprint,
    load_model,
    save_model,
)
from styletransfer.fast.network import NetworkSpec, TransformerNet


def _saved(tmp_path, name="m", num_styles=2):
    torch.manual_seed(0)
    spec = NetworkSpec(num_styles=num_styles, base_channels=8, residual_blocks=2)
    net = TransformerNet(spec)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1 * torch.randn_like(p))
    config = TrainConfig(
        steps=7,
        feature_model="vgg19",
        content_layers=("relu4_2",),
        style_layers=("relu1_1", "relu2_1"),
        style_layer_weights=(0.5, 2.0),
        base_channels=8,
        residual_blocks=2,
    )
    meta = ModelMeta(
        name=name,
        network=spec,
        styles=tuple(StyleInfo(f"style{i}", f"{i:064x}") for i in range(num_styles)),
        training=config,
        steps=7,
        dataset_fingerprint=dataset_fingerprint(["b", "a"]),
        dataset_size=2,
        final_losses={"total": 1.5},
    )
    save_model(tmp_path / name, net, meta)
    return net.eval(), tmp_path / name


def test_save_then_load_gives_bit_identical_outputs_and_the_metadata(tmp_path):
    net, path = _saved(tmp_path)
    model = load_model(path)
    x = torch.rand(3, 3, 33, 45)
    for kw in ({"style": 0}, {"style": 1}, {"weights": [0.4, 0.6]}):
        assert torch.equal(stylize_tensor(net, x, **kw), stylize_tensor(model.net, x, **kw))
    meta = json.loads((path / "model.json").read_text())
    assert meta["styles"][1] == {"label": "style1", "sha256": f"{1:064x}"}
    assert meta["feature_model"] == "vgg19" and meta["content_layers"] == ["relu4_2"]
    assert meta["layer_weights"] == {"relu1_1": 0.5, "relu2_1": 2.0}
    assert meta["steps"] == 7 and meta["dataset_fingerprint"] == dataset_fingerprint(["a", "b"])
    assert model.meta.training.style_layer_weights == (0.5, 2.0)
    assert not model.net.training and not any(p.requires_grad for p in model.net.parameters())


def test_models_are_found_by_name_and_a_missing_one_lists_the_available(tmp_path):
    _saved(tmp_path, "mosaic")
    assert load_model("mosaic", models_dir=tmp_path).path == tmp_path / "mosaic"
    assert load_model(tmp_path / "mosaic" / "model.json").meta.name == "mosaic"
    with pytest.raises(ModelNotFound, match=r"'udnie'.*models available: mosaic.*train-fast"):
        load_model("udnie", models_dir=tmp_path)


def test_flipped_bits_in_the_weights_are_detected(tmp_path):
    _, path = _saved(tmp_path)
    blob = bytearray((path / "model.safetensors").read_bytes())
    blob[len(blob) // 2] ^= 0x01
    (path / "model.safetensors").write_bytes(bytes(blob))
    with pytest.raises(CorruptModel, match="corrupt: sha256"):
        load_model(path)


def test_a_truncated_weights_file_with_a_matching_checksum_is_not_a_safetensors_file(tmp_path):
    _, path = _saved(tmp_path)
    blob = (path / "model.safetensors").read_bytes()[:100]
    (path / "model.safetensors").write_bytes(blob)
    meta = json.loads((path / "model.json").read_text())
    import hashlib

    meta["weights_sha256"] = hashlib.sha256(blob).hexdigest()
    (path / "model.json").write_text(json.dumps(meta))
    with pytest.raises(CorruptModel, match="not a valid safetensors file"):
        load_model(path)


def test_weights_that_do_not_fit_the_described_network_are_refused(tmp_path):
    _, path = _saved(tmp_path)
    meta = json.loads((path / "model.json").read_text())
    meta["network"]["num_styles"] = 3
    meta["styles"].append({"label": "x", "sha256": "0" * 64})
    (path / "model.json").write_text(json.dumps(meta))
    with pytest.raises(CorruptModel, match=r"do not fit.*wrong shape.*gamma \(2, 8\) != \(3, 8\)"):
        load_model(path)


def test_foreign_or_invalid_metadata_is_refused(tmp_path):
    _, path = _saved(tmp_path)
    (path / "model.json").write_text(json.dumps({"format": "pickle"}))
    with pytest.raises(CorruptModel, match="not a stylebench fast-model file"):
        load_model(path)
    (path / "model.json").write_text(json.dumps({"format": "stylebench-fast/1", "name": "m"}))
    with pytest.raises(CorruptModel, match="invalid"):
        load_model(path)
