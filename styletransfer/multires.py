"""Coarse-to-fine optimisation: solve at 1/4 and 1/2 size first, each result the next's start."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from styletransfer.engine import MethodInput, MethodOutput

# The smallest working size of a level: below it VGG's deeper layers have almost no pixels.
MIN_LEVEL_SIZE = 32
# Runs a method on a level's inputs (config.size and config.steps set for that level) starting
# from ``init`` ([B, 3, h, w] at the level's size, or None for the method's own start).
LevelRunner = Callable[[MethodInput, Tensor | None], list[MethodOutput]]


@dataclass(frozen=True)
class Level:
    """One level of a coarse-to-fine schedule."""

    scale: float  # of the full working size
    steps: int


def plan_levels(steps: int, levels: int) -> list[Level]:
    """``levels`` levels at 1/2^k of the size, coarsest first; steps halve at each finer level.

    With 3 levels the steps split 4:2:1 over sizes 1/4, 1/2, 1; the full-size level gets at
    least one step. ``levels=1`` is plain single-size optimisation.
    """
    if levels < 1:
        raise ValueError(f"levels must be >= 1, got {levels}")
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    shares = [2 ** (levels - 1 - k) for k in range(levels)]  # coarsest first
    counts = [steps * s // sum(shares) for s in shares]
    counts[0] += steps - sum(counts)  # rounding leftovers go to the cheapest level
    if steps >= levels and counts[-1] == 0:
        counts[-1], counts[0] = 1, counts[0] - 1
    return [Level(scale=1.0 / 2 ** (levels - 1 - k), steps=n) for k, n in enumerate(counts)]


def resize_to(image: Tensor, size: tuple[int, int]) -> Tensor:
    """[B, C, H, W] -> [B, C, *size], antialiased when shrinking, bilinear when growing."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    shrink = size[0] < image.shape[-2] or size[1] < image.shape[-1]
    return F.interpolate(
        image, size=size, mode="bilinear", align_corners=False, antialias=shrink
    ).clamp(0, 1)


def _scaled(shape: tuple[int, ...], scale: float) -> tuple[int, int]:
    h, w = shape[-2:]
    return max(1, round(h * scale)), max(1, round(w * scale))


def level_input(inp: MethodInput, level: Level) -> MethodInput:
    """``inp`` with contents and styles scaled by ``level.scale`` and the level's steps."""
    size = max(MIN_LEVEL_SIZE, round(inp.config.size * level.scale))
    scale = size / inp.config.size
    config = dataclasses.replace(inp.config, size=size, steps=level.steps)
    if scale >= 1.0:
        return dataclasses.replace(inp, config=config)
    return dataclasses.replace(
        inp,
        config=config,
        contents=resize_to(inp.contents, _scaled(inp.contents.shape, scale)),
        styles=[resize_to(s, _scaled(s.shape, scale)) for s in inp.styles],
    )


def coarse_to_fine(inp: MethodInput, levels: int, run_level: LevelRunner) -> list[MethodOutput]:
    """Run ``run_level`` at each level, upsampling each result as the next level's start.

    Outputs are the finest level's, with curves, steps and seconds of all levels joined (steps
    and elapsed time continue across levels; losses of coarser levels are at their own size).
    A level that does not end ``ok`` ends the schedule with its status.
    """
    plan = plan_levels(inp.config.steps, levels)
    init: Tensor | None = None
    step_offset, time_offset = 0, 0.0
    joined: list[MethodOutput] | None = None
    for level in plan:
        sub = level_input(inp, level)
        if init is not None:
            init = resize_to(init, tuple(sub.contents.shape[-2:]))
        if inp.callback is not None:
            sub = dataclasses.replace(
                sub, callback=_offset_callback(inp.callback, step_offset, time_offset)
            )
        outputs = run_level(sub, init)
        joined = (
            outputs
            if joined is None
            else [
                _join(before, after, step_offset, time_offset)
                for before, after in zip(joined, outputs, strict=True)
            ]
        )
        init = torch.cat([o.image for o in outputs], dim=0)
        step_offset = joined[0].steps
        time_offset = max((row["elapsed_s"] for row in joined[0].curve), default=0.0)
        if any(o.status != "ok" for o in outputs):
            break
    assert joined is not None
    return joined


def _offset_callback(callback, step_offset: int, time_offset: float):
    def shifted(row: dict) -> None:
        callback(
            {**row, "step": row["step"] + step_offset, "elapsed_s": row["elapsed_s"] + time_offset}
        )

    return shifted


def _join(
    before: MethodOutput, after: MethodOutput, step_offset: int, time_offset: float
) -> MethodOutput:
    # The finer level's step-0 row re-evaluates the upsampled start: left out so steps stay unique.
    curve = before.curve + [
        {**row, "step": row["step"] + step_offset, "elapsed_s": row["elapsed_s"] + time_offset}
        for row in after.curve
        if row["step"] > 0
    ]
    seconds = dict(before.seconds)
    for key, value in after.seconds.items():
        seconds[key] = seconds.get(key, 0.0) + value
    return MethodOutput(
        image=after.image,
        status=after.status,
        error=after.error,
        losses=after.losses,
        curve=curve,
        seconds=seconds,
        steps=before.steps + after.steps,
    )
