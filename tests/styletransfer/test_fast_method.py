"""The ``fast`` method through the engine's transfer(): model resolution, blends, clear errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from styletransfer import Runtime, TransferConfig, transfer, transfer_batch
from styletransfer.fast.infer import stylize_tensor, to_tensor
from styletransfer.fast.model import ModelNotFound, load_model
from tests.styletransfer.test_fast_model import _saved


@pytest.fixture()
def content(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "content.png"
    Image.fromarray(rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)).save(path)
    return path


def _config(**kw):
    base = dict(method="fast", size=40, device="cpu", mixed_precision=False)
    base.update(kw)
    return TransferConfig(**base)


def test_transfer_with_a_model_name_equals_direct_inference(tmp_path, content):
    _, path = _saved(tmp_path, "duo")
    result = transfer(
        content,
        [],
        _config(model="duo", style_weights=(1.0, 0.0)),
        runtime=Runtime(models_dir=tmp_path),
    )
    assert result.status == "ok" and result.image.size == (40, 30) and result.steps == 0
    expected = stylize_tensor(load_model(path).net, to_tensor(content)[None], style=0)[0]
    got = to_tensor(result.image)
    assert (got - expected).abs().max() <= 1 / 255 + 1e-6
    other = transfer(content, [], _config(model=str(path), style_weights=(0.0, 3.0)))
    assert (to_tensor(other.image) - got).abs().max() > 0.01
    assert result.seconds["optimize"] > 0


def test_a_batch_of_contents_is_stylised_like_each_alone(tmp_path, content):
    _, path = _saved(tmp_path, "duo")
    flipped = tmp_path / "flipped.png"
    Image.open(content).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(flipped)
    cfg = _config(model=str(path), style_weights=(0.5, 0.5))
    both = transfer_batch([content, flipped], [], cfg)
    alone = transfer(flipped, [], cfg)
    diff = to_tensor(both[1].image) - to_tensor(alone.image)
    assert diff.abs().max() <= 1 / 255 + 1e-6
    assert both[1].losses["content"] == pytest.approx(alone.losses["content"], rel=1e-4)
    assert both[0].losses["content"] != pytest.approx(alone.losses["content"], rel=1e-4)


def test_fast_errors_say_what_to_do(tmp_path, content):
    _saved(tmp_path, "duo")
    with pytest.raises(ValueError, match="needs a trained model"):
        transfer(content, [], _config())
    with pytest.raises(ModelNotFound, match="models available: duo"):
        transfer(content, [], _config(model="nope"), runtime=Runtime(models_dir=tmp_path))
    with pytest.raises(ValueError, match="one weight per style of the model"):
        transfer(content, [], _config(model=str(tmp_path / "duo"), style_weights=(1.0,)))
    with pytest.raises(ValueError, match="takes its styles from the model"):
        transfer(content, [content], _config(model=str(tmp_path / "duo"), style_weights=(1.0,)))


def test_models_are_found_only_where_the_caller_says(tmp_path, content, monkeypatch):
    _saved(tmp_path / "models", "duo")
    monkeypatch.setenv("STYLEBENCH_DATA", str(tmp_path))  # the library never reads it
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelNotFound, match=r"Runtime\(models_dir="):
        transfer(content, [], _config(model="duo", style_weights=(0.2, 0.8)))
    result = transfer(
        content,
        [],
        _config(model="duo", style_weights=(0.2, 0.8)),
        runtime=Runtime(models_dir=tmp_path / "models"),
    )
    assert result.status == "ok"
    assert torch.is_tensor(to_tensor(result.image))


def test_a_location_in_extra_is_refused_and_stays_out_of_the_hash(tmp_path):
    with pytest.raises(ValueError, match=r"models_dir is a location.*runtime=Runtime"):
        _config(model="duo", extra={"models_dir": str(tmp_path)}).validate()


def test_a_pairs_styles_become_model_weights_and_measure_the_losses(tmp_path, content):
    from styletransfer import PairStyle, prepare_inputs
    from styletransfer.fast.train import perceptual_losses, style_grams
    from styletransfer.features import load_encoder

    _, path = _saved(tmp_path / "models", "duo")
    runtime = Runtime(models_dir=tmp_path / "models")
    second = f"{1:064x}"  # the model's second style
    config, styles = prepare_inputs(
        _config(model="duo", steps=77), [PairStyle(second, content, 2.0)], runtime
    )
    assert config.style_weights == (0.0, 2.0) and styles == [content]
    with pytest.raises(ValueError, match="was not trained on style image"):
        prepare_inputs(_config(model="duo"), [PairStyle("ab" * 32, content, 1.0)], runtime)

    result = transfer(content, styles, config, runtime=runtime)
    assert result.status == "ok"
    # the record holds what ran: the model's blend, none of the optimiser's settings
    assert result.config.style_weights == (0.0, 2.0)
    assert result.config.to_json() == config.to_json()
    assert "steps" not in json.loads(result.config.to_json())

    model = load_model(path)
    training = model.meta.training
    encoder = load_encoder("vgg19", (*training.content_layers, *training.style_layers))
    x = to_tensor(content)[None]
    output = stylize_tensor(model.net, x, style=1)
    targets = style_grams([x[0, :, :, :]], encoder, training.style_layers, torch.device("cpu"))
    targets = {k: torch.cat([v, v]) for k, v in targets.items()}  # style 1 = this image
    expected = perceptual_losses(output, x, torch.tensor([1]), encoder, targets, training)
    got = result.losses
    assert got["content"] == pytest.approx(
        training.content_weight * float(expected["content"]), rel=1e-3
    )
    assert got["style"] == pytest.approx(training.style_weight * float(expected["style"]), rel=1e-3)
    assert got["total"] == pytest.approx(float(expected["total"]), rel=1e-3)
    assert got["content"] > 0 and got["style"] > 0 and got["photoreal"] == 0.0


def test_without_style_images_the_style_loss_is_not_measured(tmp_path, content):
    _saved(tmp_path, "duo")
    result = transfer(content, [], _config(model=str(tmp_path / "duo"), style_weights=(1, 1)))
    assert result.losses["content"] > 0
    assert math.isnan(result.losses["style"]) and math.isnan(result.losses["total"])
    assert result.metrics()["losses"]["style"] is None  # null in JSON: not measured
    with pytest.raises(ValueError, match="1 style image.* for 2 style"):
        transfer(content, [content], _config(model=str(tmp_path / "duo"), style_weights=(1, 1)))


def test_the_losses_use_the_loss_network_the_model_recorded(tmp_path, content):
    from styletransfer import WeightsUnavailable

    _, path = _saved(tmp_path, "duo")
    meta = json.loads((path / "model.json").read_text())
    meta["feature_weights"] = f"file:{tmp_path / 'gone.pth'}"
    (path / "model.json").write_text(json.dumps(meta))
    with pytest.raises(WeightsUnavailable, match="gone.pth does not exist"):
        transfer(content, [], _config(model=str(path), style_weights=(1, 0)))
