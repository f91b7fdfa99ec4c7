"""Each method's own options, given as ``TransferConfig(extra={...})``: the one place they and
their defaults are described (the registry knows each method's; ``validate()`` checks them)."""

from __future__ import annotations

from dataclasses import dataclass

from styletransfer.fields import Options, setting


@dataclass(frozen=True)
class GatysOptions(Options):
    """Gatys et al. take no options beyond TransferConfig's fields: any ``extra`` is refused."""

    METHOD = "gatys"


@dataclass(frozen=True)
class AutoMaskOptions(Options):
    """How a method that takes masks finds segments when none are given (dpst): by matching
    the photos' VGG19 features (``styletransfer.correspond``, whose ``MatchOptions`` take these
    defaults)."""

    METHOD = "dpst"

    auto_masks: int = setting(
        1, "int", "1: find segments when no masks are given; 0: one global style", choices=(0, 1)
    )
    segments: int = setting(
        3, "int", "segments of the style (1: one global segment)", low=1, high=16
    )
    match_size: int = setting(
        320, "int", "longest side of the copies the network sees", low=64, unit="pixels"
    )
    height_prior: float = setting(
        1.0, "number", "weight of the height in the picture against the features", low=0
    )


@dataclass(frozen=True)
class PhotoFastOptions(Options):
    """photo-fast's options. The closed-form defaults were chosen on the 12 pairs of the DPST
    paper (bench/bench_photo.py).

    Refinement (``refine`` 1): ``steps`` of the config is the most optimiser steps of the grid
    fit, ``refine_seconds`` its time budget; it stops early once the loss improved by less
    than ``tolerance`` (relative) over the last ``patience`` steps.
    """

    METHOD = "photo-fast"

    work_size: int = setting(
        320,
        "int",
        "longest side of the copies the colour transfer and the affine fit run on",
        low=32,
        unit="pixels",
    )
    segments: int = setting(
        3, "int", "automatic segments without masks (1: the whole picture)", low=1, high=16
    )
    semantic: int = setting(
        1,
        "int",
        "1: segments from the VGG19 correspondence (styletransfer.correspond); 0: colour clusters",
        choices=(0, 1),
    )
    match_size: int = setting(
        320, "int", "longest side of the copies the correspondence matches", low=64, unit="pixels"
    )
    height_prior: float = setting(
        1.0, "number", "weight of the height in the picture in the correspondence", low=0
    )
    position_weight: float = setting(
        0.5, "number", "colour clusters: weight of the pixel position against colour", low=0
    )
    passes: int = setting(6, "int", "sliced matches after the Gaussian colour map", low=0)
    radius: int = setting(
        4, "int", "window radius of the guided filter at work_size (larger: smoother)", low=1
    )
    eps: float = setting(
        1e-4, "number", "ridge of the guided filter (larger: smoother maps)", low=0, above=True
    )
    contrast_floor: float = setting(
        0.5,
        "number",
        "the least share of a segment's lightness spread kept (colour.transfer_points)",
        low=0,
        high=1,
    )
    refine: int = setting(
        0, "int", "1: refine with the VGG-loss bilateral-grid fit (seconds)", choices=(0, 1)
    )
    refine_seconds: float = setting(
        20.0, "number", "time budget of the refinement, set-up included", low=0, above=True
    )
    fit_size: int = setting(
        192, "int", "longest side of the images the grid is fitted on", low=32, unit="pixels"
    )
    grid: int = setting(32, "int", "grid cells along the longer side", low=2)
    bins: int = setting(8, "int", "grid cells along the luma axis", low=2)
    smoothness: float = setting(30.0, "number", "weight of the grid's roughness", low=0)
    tolerance: float = setting(
        1e-2, "number", "least relative improvement over patience steps to go on", low=0
    )
    patience: int = setting(10, "int", "steps over which the improvement is judged", low=1)


@dataclass(frozen=True)
class FastOptions(Options):
    """A feed-forward run's options: its styles, layers and weights came with the model."""

    METHOD = "fast"

    batch_size: int = setting(8, "int", "images per forward pass", low=1)
