"""Inputs that used to go wrong quietly: 16-bit greyscale, small images, odd names, full disks."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from flows.training import check_model_name
from stylebench.cli.main import app
from styletransfer import TransferConfig, transfer
from styletransfer.images import open_rgb


def _noise(path, size=(40, 30), seed=0) -> str:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return str(path)


def test_16_bit_greyscale_keeps_its_tones(tmp_path, probe):
    grey = np.full((20, 20), 128 * 257, dtype=np.uint16)  # mid-grey in 16 bits
    grey[:, :10] = 64 * 257
    path = tmp_path / "grey16.png"
    Image.fromarray(grey).save(path)
    assert Image.open(path).mode.startswith("I")
    rgb = np.asarray(open_rgb(path))
    assert rgb.shape == (20, 20, 3)
    assert abs(int(rgb[0, 15, 0]) - 128) <= 1 and abs(int(rgb[0, 5, 0]) - 64) <= 1
    probe.record("transfer: 16-bit greyscale input", rejected=False, reason="scaled to 8 bits")


def test_small_images_are_not_upscaled_unless_asked(tmp_path, cache):
    content, style = _noise(tmp_path / "c.png"), _noise(tmp_path / "s.png", seed=1)
    base = TransferConfig(size=64, steps=1, optimizer="adam", style_layers="relu1_1")
    kept = transfer(content, [style], base, cache=cache)
    assert (kept.width, kept.height) == (40, 30)
    grown = transfer(content, [style], base.with_(upscale=True), cache=cache)
    assert (grown.width, grown.height) == (64, 48)
    assert (
        base.config_hash()
        == TransferConfig(
            size=64, steps=1, optimizer="adam", style_layers="relu1_1", upscale=False
        ).config_hash()
    )
    assert base.config_hash() != base.with_(upscale=True).config_hash()


def test_metrics_are_written_when_the_image_cannot_be(tmp_path, monkeypatch):
    content, style = _noise(tmp_path / "c.png"), _noise(tmp_path / "s.png", seed=1)
    metrics = tmp_path / "m.json"

    def full_disk(self, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", full_disk)
    result = CliRunner().invoke(
        app,
        [
            "-q",
            "transfer",
            content,
            style,
            "-o",
            str(tmp_path / "o.png"),
            "--size",
            "32",
            "--steps",
            "1",
            "--optimizer",
            "adam",
            "--style-layers",
            "relu1_1",
            "--metrics",
            str(metrics),
        ],
    )
    assert result.exit_code == 1 and "No space left" in result.output
    assert "the metrics are in" in result.output and "Traceback" not in result.output
    assert json.loads(metrics.read_text())["status"] == "ok"


@pytest.mark.parametrize("name", ["model\n", "model\nx", "../up", ""])
def test_model_names_are_whole_strings(name):
    with pytest.raises(ValueError, match="model name"):
        check_model_name(name)
    assert check_model_name("starry-night_v2.1") == "starry-night_v2.1"
