"""The transformer network: shapes, conditional instance norm, style selection and blending."""

from __future__ import annotations

import pytest
import torch

from styletransfer.fast.infer import stylize, stylize_tensor, to_tensor
from styletransfer.fast.network import (
    ConditionalInstanceNorm2d,
    NetworkSpec,
    TransformerNet,
    style_weight_matrix,
)


def _two_style_net(seed: int = 0) -> TransformerNet:
    torch.manual_seed(seed)
    net = TransformerNet(NetworkSpec(num_styles=2, base_channels=8, residual_blocks=2))
    with torch.no_grad():  # make the two styles' scales and shifts differ
        for module in net.modules():
            if isinstance(module, ConditionalInstanceNorm2d):
                module.gamma.add_(0.5 * torch.randn_like(module.gamma))
                module.beta.add_(0.5 * torch.randn_like(module.beta))
    return net.eval()


def test_output_is_an_image_of_the_input_size_for_odd_sizes():
    net = TransformerNet(NetworkSpec(base_channels=8, residual_blocks=1)).eval()
    for h, w in [(32, 32), (37, 50), (17, 19)]:
        out = net(torch.rand(2, 3, h, w))
        assert out.shape == (2, 3, h, w)
        assert out.min() >= 0 and out.max() <= 1


def test_weights_one_zero_equal_selecting_style_zero_and_a_one_style_net():
    net = _two_style_net()
    x = torch.rand(3, 3, 40, 48)
    with torch.no_grad():
        blended = net(x, weights=[1.0, 0.0])
        selected = net(x, style=0)
        other = net(x, style=1)
        # the same network with only style 0's scales and shifts
        single = TransformerNet(NetworkSpec(num_styles=1, base_channels=8, residual_blocks=2))
        state = {
            k: (v[:1] if k.endswith((".gamma", ".beta")) else v)
            for k, v in net.state_dict().items()
        }
        single.load_state_dict(state)
        alone = single.eval()(x)
    assert torch.equal(blended, selected)
    assert torch.allclose(blended, alone, atol=1e-6)
    assert (blended - other).abs().max() > 1e-3


def test_blend_interpolates_the_norm_parameters():
    norm = ConditionalInstanceNorm2d(4, 2)
    with torch.no_grad():
        norm.gamma.copy_(torch.tensor([[1.0] * 4, [3.0] * 4]))
        norm.beta.copy_(torch.tensor([[0.0] * 4, [2.0] * 4]))
    x = torch.randn(1, 4, 5, 5)
    half = norm(x, torch.tensor([[0.5, 0.5]]))
    normed = torch.nn.functional.instance_norm(x)
    assert torch.allclose(half, normed * 2.0 + 1.0, atol=1e-6)


def test_per_sample_weights_match_one_sample_at_a_time():
    net = _two_style_net(1)
    x = torch.rand(2, 3, 24, 24)
    with torch.no_grad():
        both = net(x, weights=torch.tensor([[1.0, 0.0], [0.25, 0.75]]))
        first = net(x[:1], style=0)
        second = net(x[1:], weights=[0.25, 0.75])
    assert torch.allclose(both[:1], first, atol=1e-6)
    assert torch.allclose(both[1:], second, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"style": 2}, "out of range"),
        ({"weights": [1.0, 0.0, 0.0]}, "2 entries"),
        ({"style": 0, "weights": [1.0, 0.0]}, "not both"),
        ({}, "holds 2 styles"),
        ({"weights": [float("nan"), 1.0]}, "finite"),
    ],
)
def test_bad_style_selection_is_refused_with_a_clear_message(kwargs, message):
    with pytest.raises(ValueError, match=message):
        style_weight_matrix(2, 1, **kwargs)


def test_spec_validation_lists_the_problem():
    with pytest.raises(ValueError, match="num_styles"):
        NetworkSpec(num_styles=0)
    with pytest.raises(ValueError, match="unknown network field"):
        NetworkSpec.from_dict({"num_styles": 1, "width": 3})


def test_batched_inference_equals_one_by_one_and_tracks_no_gradient():
    net = _two_style_net(2)
    x = torch.rand(5, 3, 20, 28)
    out = stylize_tensor(net, x, weights=[0.3, 0.7], batch_size=2)
    assert not out.requires_grad
    with torch.no_grad():
        singles = torch.cat([net(x[i : i + 1], weights=[0.3, 0.7]) for i in range(5)])
    assert torch.allclose(out, singles, atol=1e-5)


def test_stylize_keeps_order_across_image_sizes():
    from PIL import Image

    net = _two_style_net(3)
    rng = torch.Generator().manual_seed(0)
    images = [
        Image.fromarray((torch.rand(h, w, 3, generator=rng) * 255).byte().numpy())
        for h, w in [(20, 30), (16, 16), (20, 30)]
    ]
    results = stylize(net, images, style=1, batch_size=4)
    assert [r.size for r in results] == [(30, 20), (16, 16), (30, 20)]
    alone = stylize(net, [images[2]], style=1)[0]
    diff = to_tensor(alone) - to_tensor(results[2])  # batching may move a value by one level
    assert diff.abs().max() <= 1.5 / 255
    assert to_tensor(images[0], size=15).shape == (3, 10, 15)
