"""Tests of the coarse-to-fine schedule: level plans, scaled inputs, hand-over between levels."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

from styletransfer import TransferCache, TransferConfig
from styletransfer.engine import MethodInput, MethodOutput, OptimizeOptions, optimize
from styletransfer.multires import coarse_to_fine, level_input, plan_levels, resize_to


def _input(size: int = 64, steps: int = 14, callback=None) -> MethodInput:
    gen = torch.Generator().manual_seed(0)
    cfg = TransferConfig(method="gatys", size=size, steps=steps).resolved()
    return MethodInput(
        contents=torch.rand(2, 3, size, size // 2, generator=gen),
        content_keys=["a", "b"],
        styles=[torch.rand(1, 3, size, size, generator=gen)],
        style_keys=["s"],
        style_blend=(1.0,),
        config=cfg,
        device=torch.device("cpu"),
        cache=TransferCache(),
        callback=callback,
    )


def test_plan_levels_halves_steps_towards_full_size():
    plan = plan_levels(700, 3)
    assert [lv.scale for lv in plan] == [0.25, 0.5, 1.0]
    assert [lv.steps for lv in plan] == [400, 200, 100]
    assert sum(lv.steps for lv in plan_levels(101, 3)) == 101
    assert plan_levels(3, 3)[-1].steps == 1
    assert plan_levels(50, 1) == [plan_levels(50, 1)[0]] and plan_levels(50, 1)[0].steps == 50
    with pytest.raises(ValueError, match="levels must be >= 1"):
        plan_levels(10, 0)


def test_level_input_scales_contents_styles_and_config():
    inp = _input(size=64)
    sub = level_input(inp, plan_levels(12, 2)[0])
    assert sub.config.size == 32 and sub.config.steps == 8
    assert tuple(sub.contents.shape) == (2, 3, 32, 16)
    assert tuple(sub.styles[0].shape) == (1, 3, 32, 32)
    assert inp.config.size == 64  # the original is untouched
    full = level_input(inp, plan_levels(12, 2)[1])
    assert full.contents is inp.contents and full.config.steps == 4


def _target_runner(calls: list):
    """A real optimisation per level: pull the image towards the (resized) style image."""

    def run(sub: MethodInput, init):
        target = resize_to(sub.styles[0], tuple(sub.contents.shape[-2:]))
        calls.append(
            (
                tuple(sub.contents.shape[-2:]),
                sub.config.steps,
                None if init is None else tuple(init.shape[-2:]),
            )
        )

        def loss(image):
            return {"style": (image - target).pow(2).flatten(1).mean(1)}

        start = sub.contents if init is None else init
        options = OptimizeOptions(
            steps=sub.config.steps, optimizer="adam", lr=0.05, callback=sub.callback
        )
        res = optimize(start, loss, options)
        return [
            MethodOutput(
                image=res.best[i : i + 1],
                status=res.status,
                losses=res.losses[i],
                curve=res.curves[i],
                seconds={"optimize": res.seconds},
                steps=res.steps,
            )
            for i in range(res.best.shape[0])
        ]

    return run


def test_levels_never_go_below_the_minimum_size():
    sub = level_input(_input(size=64), plan_levels(12, 3)[0])
    assert sub.config.size == 32 and tuple(sub.contents.shape[-2:]) == (32, 16)


def test_coarse_to_fine_hands_each_result_to_the_next_level():
    seen = []
    inp = _input(size=128, steps=14, callback=seen.append)
    calls = []
    outputs = coarse_to_fine(inp, 3, _target_runner(calls))
    assert [c[:2] for c in calls] == [((32, 16), 8), ((64, 32), 4), ((128, 64), 2)]
    assert calls[0][2] is None and calls[1][2] == (64, 32) and calls[2][2] == (128, 64)
    assert len(outputs) == 2
    out = outputs[0]
    assert out.image.shape == (1, 3, 128, 64) and out.steps == 14
    steps = [row["step"] for row in out.curve]
    assert steps == list(range(0, 15))  # continuous, no repeated step across levels
    elapsed = [row["elapsed_s"] for row in out.curve]
    assert elapsed == sorted(elapsed)
    assert [row["step"] for row in seen] == list(range(1, 15))
    target = resize_to(inp.styles[0], (128, 64))
    start_error = float((inp.contents[:1] - target).pow(2).mean())
    assert float((out.image - target).pow(2).mean()) < 0.5 * start_error


def test_gatys_and_dpst_run_coarse_to_fine(astronaut, coffee, cache):
    from styletransfer import transfer

    for method in ("gatys", "dpst"):
        cfg = TransferConfig(method=method, size=64, steps=9, levels=2, device="cpu")
        result = transfer(astronaut, coffee, cfg, cache=cache)
        assert result.status == "ok", result.error
        assert result.image.size == (64, 64) and result.steps == 9
        steps = [row["step"] for row in result.curve]
        assert steps == sorted(set(steps)) and steps[-1] == 9
        assert result.losses["style"] < result.curve[0]["loss_style"]
        assert result.losses["photoreal"] > 0 if method == "dpst" else True


def test_levels_keep_old_config_hashes_and_are_checked():
    plain = TransferConfig(method="gatys", size=64)
    # The hash of a level-1 run is the hash of its settings as they were before ``levels`` (and
    # ``upscale``) existed.
    before = {k: v for k, v in plain.to_dict().items() if k not in ("device", "levels", "upscale")}
    text = json.dumps(before, sort_keys=True, separators=(",", ":"), default=str)
    assert plain.config_hash() == hashlib.sha256(text.encode()).hexdigest()
    assert plain.config_hash() != TransferConfig(method="gatys", size=64, levels=2).config_hash()
    with pytest.raises(ValueError, match="levels must be 1"):
        TransferConfig(levels=0).validate()
