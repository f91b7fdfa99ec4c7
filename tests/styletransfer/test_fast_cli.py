"""``stylebench train-fast``: a catalog or a folder in, a resumable model under models/ out."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from storage import Store
from stylebench.cli.main import app
from tests.styletransfer.tiny import TINY_TRAINING, noise_png, photo_folder

runner = CliRunner()
# The real vgg19 loss network (bundled weights), on 32 px crops with a slim transformer.
TINY = ["--steps", "2", "--checkpoint-every", "1", *TINY_TRAINING]


def _invoke(data_dir, *args):
    result = runner.invoke(app, ["--data-dir", str(data_dir), "-q", "train-fast", *args])
    return result, result.output + (result.stderr if result.stderr_bytes else "")


def test_train_on_a_folder_then_resume_with_more_steps(tmp_path):
    folder, style = photo_folder(tmp_path)
    data = tmp_path / "data"
    result, out = _invoke(data, "--style", str(style), "--content-dir", str(folder), *TINY)
    assert result.exit_code == 0, out
    meta = json.loads((data / "models" / "wave" / "model.json").read_text())
    assert meta["steps"] == 2 and meta["styles"][0]["label"] == "wave"
    assert meta["style_layers"] == ["relu1_1", "relu2_1"] and meta["feature_model"] == "vgg19"
    assert meta["dataset_size"] == 3 and meta["feature_weights"].startswith("bundled:")
    more = [a if a != "2" else "3" for a in TINY]
    result, out = _invoke(data, "--style", str(style), "--content-dir", str(folder), *more)
    assert result.exit_code == 0, out
    assert "resumed from step 2" in out
    assert json.loads((data / "models" / "wave" / "model.json").read_text())["steps"] == 3
    result, out = _invoke(
        data, "--style", str(style), "--content-dir", str(folder), *more, "--style-weight", "3"
    )
    assert result.exit_code == 1 and "different training setup" in out and "--restart" in out


def test_train_on_the_accepted_catalog_images_by_style_id(tmp_path):
    store = Store(tmp_path / "data")
    now = datetime.now(timezone.utc)
    rows, ids = [], {}
    for i, role in enumerate(["content", "content", "content", "style"]):
        stored = store.put_image(noise_png(tmp_path / f"{i}.png", i).read_bytes(), "png")
        ids[i] = stored.image_id
        rows.append(
            {
                "image_id": stored.image_id,
                "path": stored.path,
                "role": role,
                "fetched_at": now,
                "batch_id": "b",
            }
        )
    store.append("images", rows)
    store.decide([ids[0], ids[1], ids[3]], "accepted", None)
    store.decide([ids[2]], "rejected", "blurry")
    result, out = _invoke(tmp_path / "data", "--style", ids[3][:10], "--name", "cat", *TINY)
    assert result.exit_code == 0, out
    meta = json.loads((tmp_path / "data" / "models" / "cat" / "model.json").read_text())
    assert meta["dataset_size"] == 2  # the rejected content image is left out
    from styletransfer.fast.model import dataset_fingerprint

    assert meta["dataset_fingerprint"] == dataset_fingerprint([ids[0], ids[1]])


def test_clear_errors_for_missing_inputs(tmp_path):
    result, out = _invoke(tmp_path / "data", "--style", "nothing-here.png", *TINY)
    assert result.exit_code == 1 and "neither an existing file nor an image id" in out
    style = noise_png(tmp_path / "s.png", 1)
    result, out = _invoke(tmp_path / "data", "--style", str(style), *TINY)
    assert result.exit_code == 1 and "no accepted content images" in out


def test_transfer_command_runs_a_trained_model_by_path_or_name(tmp_path, monkeypatch):
    from tests.styletransfer.test_fast_model import _saved

    data = tmp_path / "data"
    _saved(data / "models", "duo")
    content = noise_png(tmp_path / "c.png", 3)
    base = [
        "--data-dir",
        str(data),
        "-q",
        "transfer",
        str(content),
        "--method",
        "fast",
        "--size",
        "32",
        "--device",
        "cpu",
    ]
    result = runner.invoke(
        app,
        [
            *base,
            "-o",
            str(tmp_path / "a.png"),
            "--model",
            str(data / "models" / "duo"),
            "--style-weights",
            "1,0",
        ],
    )
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "a.png").size == (32, 27)
    monkeypatch.delenv("STYLEBENCH_DATA", raising=False)  # --data-dir alone finds models/duo
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(
        app,
        [
            *base,
            "-o",
            str(tmp_path / "b.png"),
            "--model",
            "duo",
            "--style-weights",
            "0,1",
            "--metrics",
            str(tmp_path / "m.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["method"] == "fast" and metrics["status"] == "ok"
    a = np.asarray(Image.open(tmp_path / "a.png"), dtype=float)
    b = np.asarray(Image.open(tmp_path / "b.png"), dtype=float)
    assert np.abs(a - b).mean() > 1.0  # the two styles of the model differ
