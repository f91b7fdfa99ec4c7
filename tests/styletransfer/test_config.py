"""TransferConfig: defaults, validation messages, a stable hash without the device."""

from __future__ import annotations

import pytest

from styletransfer import TransferConfig


def test_defaults_resolve_from_the_method_and_network():
    cfg = TransferConfig(method="dpst").resolved()
    assert cfg.content_layers == ("relu4_2",)
    assert len(cfg.style_layer_weights) == len(cfg.style_layers) == 5
    assert cfg.photoreal_weight > 0 and cfg.style_weight > 0
    assert TransferConfig().resolved().photoreal_weight == 0.0


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"method": "nope"}, r"the methods are: dpst, .*gatys"),
        ({"feature_model": "vgg11"}, "vgg19, vgg16, resnet101"),
        ({"optimizer": "sgd"}, "lbfgs, adam"),
        ({"init": "zeros"}, "content, noise"),
        ({"style_layers": ("relu1_1", "bogus")}, "valid layers are"),
        ({"style_layer_weights": (1.0,)}, "one weight per layer"),
        ({"content_weight": -1.0}, "non-negative"),
        ({"style_weights": (0.0, 0.0)}, "positive sum"),
        ({"device": "tpu"}, "auto, cpu"),
        ({"size": 4}, "16 to 4096"),
        ({"size": 100000}, "16 to 4096"),
        ({"size": 256.5}, "whole number"),
        ({"size": "256"}, "whole number"),
        ({"style_weights": (1.0, float("nan"))}, "finite"),
        ({"style_weight": float("inf")}, "finite"),
        ({"device": "cpu\n"}, "auto, cpu"),
    ],
)
def test_validate_names_the_problem(changes, message):
    with pytest.raises(ValueError, match=message):
        TransferConfig(**changes).validate()


def test_hash_is_stable_ignores_device_and_sees_settings():
    a = TransferConfig(size=128, style_layers="relu1_1,relu2_1")
    b = TransferConfig(size=128, style_layers=["relu1_1", "relu2_1"], device="cpu")
    assert a.config_hash() == b.config_hash()
    assert len(a.config_hash()) == 64
    assert a.config_hash() != a.with_(steps=a.steps + 1).config_hash()
    # an explicit default is the same setting as an implicit one
    assert TransferConfig().config_hash() == TransferConfig(content_weight=5.0).config_hash()
    assert TransferConfig.from_dict(a.to_dict()).config_hash() == a.config_hash()


def test_with_rejects_unknown_fields_and_config_is_frozen():
    cfg = TransferConfig()
    with pytest.raises(TypeError, match="steps"):
        cfg.with_(stpes=3)
    with pytest.raises(AttributeError):
        cfg.steps = 3  # type: ignore[misc]


def test_blend_normalises_and_checks_counts():
    assert TransferConfig(style_weights=(3, 1)).blend(2) == (0.75, 0.25)
    assert TransferConfig().blend(4) == (0.25,) * 4
    with pytest.raises(ValueError, match="one per style"):
        TransferConfig(style_weights=(1, 1)).blend(3)
