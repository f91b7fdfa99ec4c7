"""The ``fast`` method through the engine's transfer(): model resolution, blends, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import styletransfer.fast  # noqa: F401  (registers the method)
from styletransfer import TransferConfig, transfer, transfer_batch
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
        _config(model="duo", style_weights=(1.0, 0.0), extra={"models_dir": str(tmp_path)}),
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


def test_fast_errors_say_what_to_do(tmp_path, content):
    _saved(tmp_path, "duo")
    with pytest.raises(ValueError, match="needs a trained model"):
        transfer(content, [], _config())
    with pytest.raises(ModelNotFound, match="models available: duo"):
        transfer(content, [], _config(model="nope", extra={"models_dir": str(tmp_path)}))
    with pytest.raises(ValueError, match="one weight per style of the model"):
        transfer(content, [], _config(model=str(tmp_path / "duo"), style_weights=(1.0,)))
    with pytest.raises(ValueError, match="takes its styles from the model"):
        transfer(content, [content], _config(model=str(tmp_path / "duo"), style_weights=(1.0,)))


def test_models_are_found_under_the_data_directory(tmp_path, content, monkeypatch):
    _saved(tmp_path / "models", "duo")
    monkeypatch.setenv("STYLEBENCH_DATA", str(tmp_path))
    result = transfer(content, [], _config(model="duo", style_weights=(0.2, 0.8)))
    assert result.status == "ok"
    assert torch.is_tensor(to_tensor(result.image))
