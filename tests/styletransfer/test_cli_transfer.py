"""`stylebench transfer` and `stylebench loss-matrix` through the real command line."""

from __future__ import annotations

import json

import torch
from PIL import Image
from typer.testing import CliRunner

from storage import Store
from stylebench.cli.main import app

runner = CliRunner()


def _save(images: dict[str, Image.Image], folder) -> list[str]:
    paths = []
    for name, image in images.items():
        path = folder / f"{name}.png"
        image.resize((48, 48)).save(path)
        paths.append(str(path))
    return paths


def test_transfer_writes_the_image_and_metrics(tmp_path, astronaut, coffee):
    content, style = _save({"content": astronaut, "style": coffee}, tmp_path)
    out, metrics = tmp_path / "out" / "result.png", tmp_path / "m.json"
    result = runner.invoke(
        app,
        [
            "-q",
            "transfer",
            content,
            style,
            "-o",
            str(out),
            "--size",
            "32",
            "--steps",
            "3",
            "--metrics",
            str(metrics),
            "--style-layers",
            "relu1_1,relu2_1",
        ],
    )
    assert result.exit_code == 0, result.output
    assert Image.open(out).size == (32, 32)
    record = json.loads(metrics.read_text())
    assert record["status"] == "ok" and record["method"] == "gatys"
    assert record["config"]["style_layers"] == ["relu1_1", "relu2_1"]
    assert len(record["curve"]) == 4 and record["seconds"]["total"] > 0
    coarse = runner.invoke(
        app,
        [
            "-q",
            "transfer",
            content,
            style,
            "-o",
            str(out),
            "--size",
            "32",
            "--steps",
            "7",
            "--levels",
            "2",
            "--metrics",
            str(metrics),
        ],
    )
    assert coarse.exit_code == 0, coarse.output
    assert json.loads(metrics.read_text())["config"]["levels"] == 2


def test_transfer_reports_bad_settings_clearly(tmp_path, astronaut, coffee, monkeypatch):
    content, style = _save({"content": astronaut, "style": coffee}, tmp_path)
    out = str(tmp_path / "o.png")
    bad = runner.invoke(app, ["transfer", content, style, "-o", out, "--method", "magic"])
    assert bad.exit_code == 1 and "dpst" in bad.output and "gatys" in bad.output
    layers = runner.invoke(app, ["transfer", content, style, "-o", out, "--style-layers", "x1"])
    assert layers.exit_code == 1 and "valid layers are" in layers.output
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    missing = runner.invoke(
        app, ["transfer", content, style, "-o", out, "-f", "vgg16", "--size", "32", "--steps", "1"]
    )
    assert missing.exit_code == 1 and "--weights" in missing.output


def test_loss_matrix_writes_rows_and_a_heatmap(tmp_path, astronaut, coffee, chelsea):
    paths = _save({"a": astronaut, "b": coffee, "c": chelsea}, tmp_path)
    data_dir, heatmap = str(tmp_path / "data"), tmp_path / "heat.png"
    result = runner.invoke(
        app,
        [
            "-q",
            "--data-dir",
            data_dir,
            "loss-matrix",
            *paths,
            "--feature-model",
            "vgg19",
            "--size",
            "32",
            "-o",
            str(heatmap),
            "--experiment-id",
            "exp1",
        ],
    )
    assert result.exit_code == 0, result.output
    assert Image.open(heatmap).size[0] > 100
    rows = Store(data_dir).read("loss_matrix").to_pylist()
    assert len(rows) == 9 and {r["experiment_id"] for r in rows} == {"exp1"}
    diagonal = [r for r in rows if r["image_a"] == r["image_b"]]
    assert all(r["content_loss"] == 0 and r["style_loss"] == 0 for r in diagonal)
    off = [r for r in rows if r["image_a"] != r["image_b"]]
    assert all(r["style_loss"] > 0 for r in off)
    pair = {(r["image_a"], r["image_b"]): r["style_loss"] for r in off}
    assert all(abs(v - pair[(b, a)]) <= 1e-6 * v for (a, b), v in pair.items())


def test_photo_fast_refine_and_the_quality_block_of_metrics(tmp_path, astronaut, coffee):
    content, style = _save({"content": astronaut, "style": coffee}, tmp_path)
    out, metrics = tmp_path / "pf.png", tmp_path / "pf.json"
    args = ["-q", "transfer", content, style, "-o", str(out), "--size", "48"]
    result = runner.invoke(
        app,
        [*args, "--method", "photo-fast", "--refine", "--steps", "2", "--metrics", str(metrics)],
    )
    assert result.exit_code == 0, result.output
    record = json.loads(metrics.read_text())
    assert record["config"]["extra"] == {"refine": 1}
    assert set(record["quality"]) == {"ssim", "colour_distance", "affine_residual"}
    assert 0 < record["quality"]["ssim"] <= 1 and record["quality"]["colour_distance"] > 0
    assert 1 <= len(record["curve"]) <= 3
    refused = runner.invoke(app, [*args, "--method", "gatys", "--refine"])
    assert refused.exit_code != 0 and "--refine is a photo-fast option" in refused.output
