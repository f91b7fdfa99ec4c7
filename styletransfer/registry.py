"""The method registry: each method's defaults, needs and entry points, built-ins listed explicitly.

Nothing here imports a method's implementation: ``MethodSpec.run`` and ``MethodSpec.prepare``
name a ``module:function`` that is imported when first used, so ``styletransfer.config`` can
resolve and validate settings without loading any method.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from styletransfer.fields import decode, described
from styletransfer.options import AutoMaskOptions, FastOptions, GatysOptions, PhotoFastOptions

# A method takes a styletransfer.engine.MethodInput and returns one MethodOutput per content.
MethodFn = Callable[..., Any]
# A prepare hook maps a pair's styles to a method's inputs (see ``prepare_inputs``).
PrepareFn = Callable[..., Any]


# -- each method's documented defaults --------------------------------------------------------
@dataclass(frozen=True)
class GatysDefaults:
    """Gatys, Ecker and Bethge (2016), "Image Style Transfer Using Convolutional Neural Networks".

    Layers from the paper (content conv4_2 -> relu4_2 here; style relu1_1..relu5_1, each layer
    weight 1), content/style weights 5 and 100 from jcjohnson's neural-style, whose loss
    normalisation (Gram / C*H*W, mean squared error, Caffe 0-255 features) these losses share.
    No total variation, as in the paper.
    """

    content_weight: float = 5.0
    style_weight: float = 100.0
    style_layer_weight: float = 1.0  # each style layer
    tv_weight: float = 0.0
    photoreal_weight: float = 0.0


@dataclass(frozen=True)
class DpstDefaults:
    """Luan, Paris, Shechtman and Bala (2017), "Deep Photo Style Transfer".

    From deep-photo-styletransfer: content weight 5, style weight 100 (each style layer weight
    1), lambda = 1e4, matting epsilon 1e-7, 3x3 windows. The original adds lambda * L x (with x
    in [0, 1]) to the gradient with respect to the 0-255 image; with the image in [0, 1] here
    that equals a loss of 128 * lambda * x^T L x, hence photoreal_weight 1.28e6. Its tv weight
    (1e-3 on 0-255 pixels) is left at 0: the Laplacian term already smooths. two_stage runs the
    first half of the steps without the photorealism term (their neuralstyle_seg stage), then
    the rest with it from that result.
    """

    content_weight: float = 5.0
    style_weight: float = 100.0
    style_layer_weight: float = 1.0  # each style layer
    tv_weight: float = 0.0
    photoreal_weight: float = 1.28e6
    two_stage: bool = False


@dataclass(frozen=True)
class PhotoFastDefaults:
    """photo-fast's optional refinement: loss weights and layers as gatys (Gatys et al. 2016
    via jcjohnson's neural-style: style 100, each style layer 1), content 15 rather than 5 to
    keep more of the photo's structure (see ``styletransfer.options.PhotoFastOptions``);
    the grid itself (Chen et al. 2016, bilateral guided upsampling) replaces the photorealism
    term. The default mode is closed-form and uses none of them.
    """

    content_weight: float = 15.0
    style_weight: float = 100.0
    style_layer_weight: float = 1.0  # each style layer
    tv_weight: float = 0.0
    photoreal_weight: float = 0.0


@dataclass(frozen=True)
class FastDefaults:
    """Johnson, Alahi and Fei-Fei (2016), "Perceptual Losses for Real-Time Style Transfer".

    A fast run has no hyper-parameters of its own: its styles, loss network, layers and loss
    weights were fixed when the model was trained (``styletransfer.fast.TrainConfig``, recorded
    in the model's model.json), and the losses it records are measured under them.
    """


# ``MethodSpec.settings`` for a method that records only the TransferConfig fields that apply to
# it: those whose description (``styletransfer.config``) names it or no method.
APPLICABLE = "applicable"


# -- the registry ------------------------------------------------------------------------------
@dataclass(frozen=True)
class MethodSpec:
    """One method: what it runs, its defaults, and what it needs from a config and a pair.

    ``run`` and ``prepare`` are callables or ``"module:function"`` names imported on first
    use. ``settings`` names the TransferConfig fields the method records (``None``: all;
    ``APPLICABLE``: those whose description names it or no method); the others are left at
    their defaults, out of its records. ``options`` is the dataclass of its own options
    (``styletransfer.fields.Options``), given as ``TransferConfig.extra`` and checked by
    ``validate()``; ``None``: ``extra`` is the method's to read, unchecked. ``prepare(config,
    styles, runtime)`` turns a pair's styles (``PairStyle`` items) into the method's
    ``(config, style images)``; without one the pair's weights become
    ``config.style_weights``. ``takes_masks`` False: the method has no use for segmentation
    masks (they are refused).
    """

    name: str
    run: str | MethodFn
    defaults: Any = None  # a frozen dataclass instance; its fields fill TransferConfig's None
    uses_layers: bool = True  # False: the network fixes its own layers (no layer checks)
    needs_styles: bool = True  # False: runs without style images
    settings: frozenset[str] | str | None = None
    prepare: str | PrepareFn | None = None
    takes_masks: bool = True
    options: type | None = None

    def default_values(self) -> dict[str, Any]:
        """The defaults as a plain dict of TransferConfig field values."""
        if self.defaults is None:
            return {}
        if isinstance(self.defaults, Mapping):
            return dict(self.defaults)
        return dataclasses.asdict(self.defaults)

    def function(self) -> MethodFn:
        """The method's function (imported now if named by ``module:function``)."""
        return _load(self.run)

    def prepare_function(self) -> PrepareFn | None:
        """The prepare hook, or ``None`` when the method has none."""
        return None if self.prepare is None else _load(self.prepare)


def _load(target: str | Callable[..., Any]) -> Callable[..., Any]:
    if callable(target):
        return target
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


BUILTIN_METHODS: tuple[MethodSpec, ...] = (
    MethodSpec("gatys", "styletransfer.methods.gatys:gatys", GatysDefaults(), options=GatysOptions),
    MethodSpec("dpst", "styletransfer.methods.dpst:dpst", DpstDefaults(), options=AutoMaskOptions),
    MethodSpec(
        "photo-fast",
        "styletransfer.methods.photo_fast:photo_fast",
        PhotoFastDefaults(),
        options=PhotoFastOptions,
    ),
    MethodSpec(
        "fast",
        "styletransfer.fast.infer:fast_method",
        FastDefaults(),
        uses_layers=False,
        needs_styles=False,
        settings=APPLICABLE,
        prepare="styletransfer.fast.infer:prepare_fast",
        takes_masks=False,
        options=FastOptions,
    ),
)

METHODS: dict[str, MethodSpec] = {spec.name: spec for spec in BUILTIN_METHODS}


def register_method(
    name: str,
    fn: MethodFn,
    defaults: Any = None,
    *,
    uses_layers: bool = True,
    needs_styles: bool | None = None,
    settings: Sequence[str] | None = None,
    prepare: PrepareFn | None = None,
    takes_masks: bool = True,
    options: type | None = None,
) -> MethodSpec:
    """Make ``fn`` available as ``TransferConfig(method=name)`` (a method from outside the package).

    ``defaults`` (a frozen dataclass or a mapping) fills TransferConfig fields left at ``None``;
    ``uses_layers=False`` skips layer checks for methods whose networks fix their own;
    ``needs_styles`` defaults to ``uses_layers``; ``takes_masks=False`` refuses segmentation masks;
    ``options`` (a ``styletransfer.fields.Options`` dataclass) checks ``extra``.
    """
    spec = MethodSpec(
        name,
        fn,
        defaults,
        uses_layers=uses_layers,
        needs_styles=uses_layers if needs_styles is None else needs_styles,
        settings=None if settings is None else frozenset({"method", *settings}),
        prepare=prepare,
        takes_masks=takes_masks,
        options=options,
    )
    METHODS[name] = spec
    return spec


def method_spec(name: str) -> MethodSpec:
    """The spec of method ``name`` (a ValueError lists the methods if unknown)."""
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(
            f"unknown method {name!r}; the methods are: {', '.join(sorted(METHODS))}"
        ) from None


def method_defaults(name: str) -> dict[str, Any]:
    """The documented defaults of method ``name`` (a ValueError lists the methods if unknown)."""
    return method_spec(name).default_values()


def get_method(name: str) -> MethodFn:
    """The function of method ``name`` (a ValueError lists the methods if unknown)."""
    return method_spec(name).function()


def option_owners(key: str) -> list[str]:
    """The methods that have an option ``key``."""
    return sorted(
        spec.name
        for spec in METHODS.values()
        if spec.options is not None and key in described(spec.options)
    )


def method_options(method: str, extra: Any = ()) -> Any:
    """The options of ``method`` in ``extra`` (items or a mapping), checked; ``None`` where the
    method declares none. A ValueError names the method, the problem and the valid options,
    and which methods have an option it does not."""
    spec = method_spec(method)
    if spec.options is None:
        return None
    values = dict(extra)
    try:
        return decode(spec.options, values, method)
    except ValueError as exc:
        elsewhere = [
            f"{key} is an option of {', '.join(owners)}"
            for key in sorted(set(values) - set(described(spec.options)))
            if (owners := option_owners(key))
        ]
        if not elsewhere:
            raise
        raise ValueError(f"{exc} ({'; '.join(elsewhere)})") from None
