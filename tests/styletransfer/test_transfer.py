"""transfer() and transfer_batch() with the bundled VGG19 on small images."""

from __future__ import annotations

import json
from datetime import datetime

import numpy as np
import pytest
import torch
from PIL import Image

from styletransfer import (
    METHODS,
    SegmentationMasks,
    TransferCache,
    TransferConfig,
    WeightsUnavailable,
    register_method,
    transfer,
    transfer_batch,
)
from styletransfer.engine import MethodOutput
from styletransfer.images import rgb_to_yiq, to_tensor

SMALL = TransferConfig(size=32, steps=4)


def _rises(curve, after=50, tolerance=0.01):
    best, worst = float("inf"), 0.0
    for row in curve:
        best = min(best, row["loss_total"])
        if row["step"] > after:
            worst = max(worst, row["loss_total"] / best - 1)
    return worst


def test_result_and_metrics_follow_the_design(astronaut, coffee, cache):
    result = transfer(astronaut, coffee, SMALL, cache=cache)
    assert result.status == "ok" and result.error is None
    assert result.image.mode == "RGB" and result.image.size == (32, 32)
    assert (result.height, result.width, result.steps) == (32, 32, 4)
    assert result.config == SMALL.resolved()  # the effective config that ran
    metrics = result.metrics()
    assert metrics["config"] == json.loads(result.config.to_json())
    assert list(metrics) == [
        "status",
        "method",
        "feature_model",
        "config",
        "device",
        "seconds",
        "losses",
        "curve",
        "quality",  # added after DESIGN.md's keys: ssim, colour_distance, affine_residual
        "mask_source",  # added after DESIGN.md's keys: given | auto | none
        "started_at",  # added after DESIGN.md's keys: the call's span, ISO 8601 UTC
        "finished_at",
    ]
    assert set(metrics["quality"]) == {"ssim", "colour_distance", "affine_residual"}
    assert all(0 <= metrics["quality"][k] <= 1 for k in ("ssim", "affine_residual"))
    # DESIGN.md's total, prepare, optimize, laplacian, then every phase, the wall time and wait
    seconds = metrics["seconds"]
    assert set(seconds) == {"total", "prepare", "optimize", "laplacian"} | {
        "load",
        "score",
        "wall",
        "wait",
    }
    own = ("load", "prepare", "laplacian", "optimize")
    assert seconds["total"] == pytest.approx(sum(seconds[k] for k in own))
    assert seconds["score"] > 0 and seconds["load"] > 0
    # One call: its phases are what the caller waited for.
    assert seconds["total"] + seconds["score"] == pytest.approx(seconds["wall"], rel=0.05)
    started = datetime.fromisoformat(metrics["started_at"])
    finished = datetime.fromisoformat(metrics["finished_at"])
    assert (finished - started).total_seconds() == pytest.approx(seconds["wall"], abs=0.01)
    assert set(metrics["losses"]) == {"total", "content", "style", "tv", "photoreal"}
    assert [row["step"] for row in metrics["curve"]] == [0, 1, 2, 3, 4]
    assert set(metrics["curve"][0]) == {
        "step",
        "elapsed_s",
        "loss_total",
        "loss_content",
        "loss_style",
        "loss_tv",
        "loss_photoreal",
    }
    assert metrics["losses"]["photoreal"] == 0.0
    assert metrics["losses"]["total"] < metrics["curve"][0]["loss_total"]
    assert metrics["config"]["steps"] == 4


def test_style_targets_encoder_and_laplacian_are_computed_once(astronaut, coffee):
    cache = TransferCache()
    cfg = TransferConfig(method="dpst", size=32, steps=2)
    first = transfer(astronaut, coffee, cfg, cache=cache)
    second = transfer(astronaut, coffee, cfg.with_(steps=3, content_weight=1.0), cache=cache)
    assert first.status == second.status == "ok"
    assert cache.misses["style"] == cache.misses["laplacian"] == 1
    # the loss network, and the VGG19 the mask-free matching reads: each loaded once
    assert cache.misses["encoder"] == 2 and cache.misses["match"] == 1
    assert cache.hits["style"] >= 1 and cache.hits["laplacian"] >= 1 and cache.hits["match"] >= 1
    assert first.seconds["laplacian"] > 0 and second.losses["photoreal"] > 0


def test_batches_share_styles_and_keep_sizes(astronaut, coffee, chelsea, cache):
    flipped = astronaut.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    results = transfer_batch([astronaut, chelsea, flipped], coffee, SMALL, cache=cache)
    assert [r.image.size for r in results] == [(32, 32), (32, 21), (32, 32)]
    assert all(r.status == "ok" for r in results)
    # each image has its own objective: the batch matches each image run alone closely
    alone = transfer(flipped, coffee, SMALL, cache=cache)
    assert results[2].curve[0]["loss_total"] == pytest.approx(
        alone.curve[0]["loss_total"], rel=1e-4
    )
    assert results[0].losses["content"] != results[2].losses["content"]


def test_seeded_noise_init_is_deterministic(astronaut, coffee, cache):
    cfg = SMALL.with_(init="noise", seed=7)
    a = np.asarray(transfer(astronaut, coffee, cfg, cache=cache).image)
    b = np.asarray(transfer(astronaut, coffee, cfg, cache=cache).image)
    c = np.asarray(transfer(astronaut, coffee, cfg.with_(seed=8), cache=cache).image)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_style_blend_weights(astronaut, coffee, chelsea, cache):
    cfg = SMALL.with_(steps=0)
    single = transfer(astronaut, coffee, cfg, cache=cache)
    blended = transfer(
        astronaut, [coffee, chelsea], cfg.with_(style_weights=(1.0, 0.0)), cache=cache
    )
    assert blended.losses["style"] == pytest.approx(single.losses["style"], rel=1e-5)
    even = transfer(astronaut, [coffee, chelsea], cfg, cache=cache)
    assert even.losses["style"] != pytest.approx(single.losses["style"], rel=1e-3)
    with pytest.raises(ValueError, match="one per style"):
        transfer(astronaut, [coffee, chelsea], cfg.with_(style_weights=(1.0,)), cache=cache)


def test_one_colour_masks_equal_no_masks_and_two_colours_run(astronaut, coffee, cache):
    cfg = TransferConfig(method="dpst", size=32, steps=0)
    plain = transfer(astronaut, coffee, cfg.with_(extra={"auto_masks": 0}), cache=cache)
    white = Image.new("RGB", (40, 40), "white")  # astronaut is square, coffee 600 x 400
    wide = Image.new("RGB", (60, 40), "white")
    masked = transfer(astronaut, coffee, cfg, masks=SegmentationMasks(white, [wide]), cache=cache)
    assert masked.losses["style"] == pytest.approx(plain.losses["style"], rel=1e-4)
    halves = Image.new("RGB", (40, 40), "red")
    halves.paste((0, 0, 255), (0, 20, 40, 40))
    wide_halves = halves.resize((60, 40), Image.Resampling.NEAREST)
    two = transfer(
        astronaut, coffee, cfg.with_(steps=2), masks=(halves, [wide_halves]), cache=cache
    )
    assert two.status == "ok" and two.losses["style"] != pytest.approx(plain.losses["style"])
    with pytest.raises(ValueError, match="share no label colour"):
        transfer(astronaut, coffee, cfg, masks=(white, [wide_halves]), cache=cache)
    with pytest.raises(ValueError, match="style mask 1 does not fit style image 1: it is 40x40"):
        transfer(astronaut, coffee, cfg, masks=(white, [white]), cache=cache)


def test_preserve_color_keeps_the_content_chrominance(astronaut, coffee, cache):
    result = transfer(astronaut, coffee, SMALL.with_(preserve_color=True, steps=6), cache=cache)
    content = to_tensor(astronaut.resize((32, 32), Image.Resampling.LANCZOS))
    out = to_tensor(result.image)
    chroma_error = (rgb_to_yiq(out)[:, 1:] - rgb_to_yiq(content)[:, 1:]).abs().mean()
    luma_change = (rgb_to_yiq(out)[:, :1] - rgb_to_yiq(content)[:, :1]).abs().mean()
    assert float(chroma_error) < 0.02 < float(luma_change)


def test_methods_come_from_the_registry(astronaut, coffee, cache):
    with pytest.raises(ValueError, match=r"the methods are: dpst, .*gatys"):
        transfer(astronaut, coffee, TransferConfig(method="nope"))

    def identity(inp):
        return [MethodOutput(image=c[None]) for c in inp.contents]

    def broken(inp):
        raise RuntimeError("out of memory")

    register_method("identity-test", identity, uses_layers=False)
    register_method("broken-test", broken)
    try:
        same = transfer(astronaut, [], TransferConfig(method="identity-test", size=32))
        assert np.array_equal(
            np.asarray(same.image), np.asarray(astronaut.resize((32, 32), Image.Resampling.LANCZOS))
        )
        failed = transfer(astronaut, coffee, TransferConfig(method="broken-test", size=32))
        assert failed.status == "failed" and "out of memory" in failed.error
    finally:
        METHODS.pop("identity-test")
        METHODS.pop("broken-test")


def test_missing_weights_raise(astronaut, coffee, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(WeightsUnavailable, match="--weights"):
        transfer(astronaut, coffee, SMALL.with_(feature_model="vgg16"), cache=TransferCache())


@pytest.mark.slow
def test_gatys_lowers_the_style_loss_tenfold_at_128px(astronaut, coffee, cache):
    result = transfer(astronaut, coffee, TransferConfig(size=128, steps=60), cache=cache)
    assert result.status == "ok"
    assert result.losses["style"] * 10 <= result.curve[0]["loss_style"]
    pixels = np.asarray(result.image)
    assert result.image.size == (128, 128) and pixels.std() > 10
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 1000


@pytest.mark.slow
@pytest.mark.parametrize("method", ["gatys", "dpst"])
def test_2000_steps_at_64px_never_diverge(method, astronaut, coffee, cache):
    result = transfer(
        astronaut, coffee, TransferConfig(method=method, size=64, steps=2000), cache=cache
    )
    assert result.status == "ok", result.error
    totals = [row["loss_total"] for row in result.curve]
    assert all(np.isfinite(totals))
    assert _rises(result.curve) <= 0.01
    assert result.losses["total"] < totals[0] / 5


def test_cpu_batches_are_chunked_by_pixels(astronaut, coffee, cache, monkeypatch):
    import importlib

    module = importlib.import_module("styletransfer.run")

    sizes: list[int] = []
    run_group = module._run_group

    def spy(method, contents, *args, **kwargs):
        sizes.append(len(contents))
        return run_group(method, contents, *args, **kwargs)

    monkeypatch.setattr(module, "_run_group", spy)
    monkeypatch.setattr(module, "CPU_BATCH_PIXELS", 2 * 32 * 32)
    results = transfer_batch([astronaut] * 3, coffee, SMALL.with_(device="cpu"), cache=cache)
    assert [r.status for r in results] == ["ok"] * 3
    assert sizes == [2, 1]
    sizes.clear()
    transfer_batch([astronaut] * 3, coffee, SMALL.with_(device="cpu"), cache=cache, max_batch=1)
    assert sizes == [1, 1, 1]


def test_mask_source_says_where_the_segments_came_from(astronaut, coffee, cache):
    plain = transfer(astronaut, coffee, SMALL.with_(steps=0), cache=cache)
    assert plain.mask_source == "none" and plain.metrics()["mask_source"] == "none"
    white, wide = Image.new("RGB", (40, 40), "white"), Image.new("RGB", (60, 40), "white")
    given = transfer(astronaut, coffee, SMALL.with_(steps=0), masks=(white, [wide]), cache=cache)
    assert given.mask_source == "given"
    photo = transfer(astronaut, coffee, TransferConfig(method="photo-fast", size=32), cache=cache)
    assert photo.mask_source == "auto"
