"""TransferConfig: defaults, validation messages, a stable hash without the device."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

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


# config_hash() values recorded before the codec and the registry existed: runs planned then
# must still be recognised as done.
PINNED_HASHES = [
    (TransferConfig(), "05db4242d61f6d17865ae43f90bccb21f27fbe188afe5280a3c318cf960d6683"),
    (
        TransferConfig(method="dpst", size=128, steps=300, two_stage=True, style_weights=(1, 3)),
        "4073f9a3871bee096b709064019924331ceb3a92df720275ca68ec928251d37b",
    ),
    (
        TransferConfig(method="photo-fast", size=512, extra={"grid": 32}),
        "a6f45266b2fac6f510d5dba4326f7daf429793e95cda188c324f08ce0657fb49",
    ),
    (
        TransferConfig(method="fast", model="duo", size=256, style_weights=(0.5, 0.5)),
        "4a5c64016c45879e940d0362ab9d9b06792c1b2e9aaa7a0bf17e9adcddcb7c4e",
    ),
    (
        TransferConfig(optimizer="adam", lr=0.1, levels=2, style_layers="relu1_1,relu2_1"),
        "e27ce6aa5e30d020e3c1bdb8fcf0c42572eccb3e38c21ae32459c7859358c32e",
    ),
]


@pytest.mark.parametrize(("config", "digest"), PINNED_HASHES)
def test_hashes_of_existing_configs_are_unchanged(config, digest):
    assert config.config_hash() == digest


@pytest.mark.parametrize(("config", "digest"), PINNED_HASHES)
def test_json_round_trip_keeps_the_settings_and_the_hash(config, digest):
    text = config.to_json()
    back = TransferConfig.from_json(text)
    assert back.to_json() == text
    assert back.resolved() == config.resolved()
    assert back.config_hash() == digest
    assert json.loads(text) == config.settings()


def test_a_fast_config_holds_only_the_settings_that_apply():
    fast = TransferConfig(method="fast", model="duo", size=256, style_weights=(0.5, 0.5))
    settings = fast.settings()
    assert set(settings) == {
        "method",
        "model",
        "size",
        "style_weights",
        "preserve_color",
        "mixed_precision",
        "upscale",
        "device",
        "extra",
    }
    assert "steps" not in fast.to_json() and "lbfgs" not in fast.to_json()
    # settings that do not apply neither change the hash nor survive resolution
    assert fast.with_(steps=7, optimizer="adam", seed=3).config_hash() == fast.config_hash()
    assert fast.with_(steps=7).resolved() == fast.resolved()
    assert fast.with_(size=128).config_hash() != fast.config_hash()
    # the optimising methods keep every setting
    assert set(TransferConfig(method="gatys").settings()) == {
        f.name for f in dataclasses.fields(TransferConfig)
    }


def test_from_json_reads_the_older_full_records():
    old = json.dumps(TransferConfig(method="fast", model="duo").to_dict())
    assert TransferConfig.from_json(old).config_hash() == (
        TransferConfig(method="fast", model="duo").config_hash()
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "must be a JSON object"),
        ("[1, 2]", "must be a JSON object, got list"),
        ('{"stpes": 3}', r"unknown transfer setting\(s\) stpes; the settings are: .*steps"),
        ('{"steps": "many"}', "steps must be an integer"),
        ('{"size": 12.5}', "size must be an integer"),
        ('{"preserve_color": 1}', "preserve_color must be true or false"),
        ('{"style_weights": [1, "a"]}', "style_weights must be a list of numbers"),
        ('{"extra": [1]}', "extra must be a JSON object"),
        ("null", "must be a JSON object, got NoneType"),
        ('{"lr": NaN}', "lr must be a finite non-negative number"),
        ('{"content_layers": 5}', "content_layers must be a list of layer names"),
        ('{"style_weights": []}', "positive sum"),
        ('{"method": "nope"}', r"the methods are: dpst, fast, gatys, photo-fast"),
        ('{"optimizer": "sgd"}', "lbfgs, adam"),
        ('{"size": 4}', "16 to 4096"),
        ('{"extra": {"models_dir": "/m"}}', r"models_dir is a location.*Runtime"),
    ],
)
def test_from_json_names_the_problem(text, message, probe):
    with pytest.raises(ValueError, match=message) as caught:
        TransferConfig.from_json(text)
    probe.record(f"TransferConfig.from_json({text})", rejected=True, reason=str(caught.value))


def test_importing_the_config_loads_no_method():
    code = (
        "import sys, styletransfer.config\n"
        "loaded = [m for m in sys.modules if m.startswith(('styletransfer.methods', "
        "'styletransfer.fast'))]\n"
        "assert not loaded, loaded\n"
        "styletransfer.config.TransferConfig(method='dpst').validate()\n"
        "print(sorted(m for m in sys.modules if m.startswith('styletransfer.methods')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=_env()
    )
    assert out.stdout.strip() == "[]"


def _env():
    import os

    root = str(Path(__file__).resolve().parents[2])
    return {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
