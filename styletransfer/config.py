"""TransferConfig: the typed, frozen, validated settings of one run; Runtime: where it runs."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from styletransfer.fields import check, described, problem, setting
from styletransfer.registry import APPLICABLE, method_options, method_spec

OPTIMIZERS = ("lbfgs", "adam")
INITS = ("content", "noise")
# Fields that say where a run happens, not what it computes: left out of config_hash().
_NOT_HASHED = ("device",)
# Fields added later, left out of config_hash() at these values so older hashes still match.
_HASHED_UNLESS_DEFAULT = {"levels": 1, "upscale": False}
_DEVICE_PATTERN = re.compile(r"(auto|cpu|mps|cuda(:\d+)?)\Z")
MIN_SIZE = 16
# The longest output side: a DPST matting Laplacian at 4096 px already needs tens of GiB.
MAX_SIZE = 4096
# Keys of ``extra`` that name a place rather than a setting: they belong in a Runtime.
_RUNTIME_KEYS = {"models_dir": "Runtime(models_dir=...)"}
# Which methods a setting applies to (``Setting.methods``; None: every method).
_OPTIMISING = ("gatys", "dpst", "photo-fast")  # photo-fast: with its refine option
_DPST = ("dpst",)
_COARSE_TO_FINE = ("gatys", "dpst")
_FEED_FORWARD = ("fast",)


def _unset(
    kind: str, help: str, methods: tuple[str, ...] | None = _OPTIMISING, **described: Any
) -> Any:
    """A setting whose None means the method's or the network's default (see ``resolved()``)."""
    return setting(None, kind, help, optional=True, methods=methods, **described)


def _loss_weight(term: str, methods: tuple[str, ...] = _OPTIMISING) -> Any:
    """The weight of a loss term: >= 0, the method's when None."""
    return _unset("number", f"{term} weight (default: the method's)", methods, low=0)


@dataclass(frozen=True)
class Runtime:
    """Where a run finds what it needs, outside its settings (and so outside config_hash()).

    ``models_dir`` holds trained feed-forward models as ``<models_dir>/<name>/model.json``
    (the data directory's ``models/``); the caller passes it, the library never guesses it.
    """

    models_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.models_dir is not None:
            object.__setattr__(self, "models_dir", Path(self.models_dir))


def _floats(name: str, values: Sequence[float] | None) -> tuple[float, ...] | None:
    """A list of weights as floats; it must hold finite numbers (a NaN weight makes every run
    diverge)."""
    if values is None:
        return None
    message = problem(name, values, described(TransferConfig)[name])
    if message is not None:
        raise ValueError(message)
    return tuple(float(v) for v in values)


def _strs(values: Sequence[str] | str | None) -> tuple[str, ...] | None:
    if values is None:
        return None
    if isinstance(values, str):
        values = [v for v in re.split(r"[,\s]+", values) if v]
    return tuple(values)


@dataclass(frozen=True)
class TransferConfig:
    """Settings of one transfer. ``None`` means the method's documented default.

    Loss weights multiply per-layer weighted means: content = mean squared feature difference,
    style = mean squared difference of Gram matrices normalised by C*H*W, tv = mean squared
    neighbour difference, photoreal = sum_c x_c^T L x_c with the image in [0, 1].
    """

    method: str = setting(
        "gatys", "str", "The method: gatys, dpst, photo-fast, fast or a registered one"
    )
    feature_model: str = setting(
        "vgg19", "str", "The loss network: vgg19, vgg16 or resnet101", methods=_OPTIMISING
    )
    weights: str | None = _unset(
        "str",
        "The network's weights: a local file or 'torchvision' (default: vgg19's bundled Caffe "
        "weights; torchvision's cached file otherwise)",
    )
    content_layers: tuple[str, ...] | None = _unset(
        "names", "Content layers, e.g. relu4_2 (default: the network's)"
    )
    style_layers: tuple[str, ...] | None = _unset(
        "names", "Style layers, e.g. relu1_1,relu2_1 (default: the network's)"
    )
    content_layer_weights: tuple[float, ...] | None = _unset(
        "numbers", "One weight per content layer (default: 1 each)"
    )
    style_layer_weights: tuple[float, ...] | None = _unset(
        "numbers", "One weight per style layer (default: the method's, else 1/n each)"
    )
    content_weight: float | None = _loss_weight("Content loss")
    style_weight: float | None = _loss_weight("Style loss")
    tv_weight: float | None = _loss_weight("Total-variation")
    photoreal_weight: float | None = _loss_weight("Matting-Laplacian", _DPST)
    style_weights: tuple[float, ...] | None = _unset(
        "numbers",
        "Blend weight per style image: 0.7 0.3, 0.7,0.3 or repeated (default: equal)",
        None,
    )
    size: int = setting(
        256,
        "int",
        "Longest side of the output in pixels; a smaller image keeps its own size unless upscale",
        low=MIN_SIZE,
        high=MAX_SIZE,
        unit="pixels",
    )
    upscale: bool = setting(False, "bool", "Enlarge images smaller than size to it")
    steps: int = setting(500, "int", "Optimiser steps", low=0, methods=_OPTIMISING)
    optimizer: str = setting(
        "lbfgs",
        "str",
        "The optimiser: lbfgs (strong Wolfe line search) or adam",
        choices=OPTIMIZERS,
        methods=_OPTIMISING,
    )
    lr: float | None = _unset("number", "Adam's learning rate (default: 0.02)", low=0)
    init: str = setting(
        "content",
        "str",
        "Start from the content or from noise",
        choices=INITS,
        methods=_OPTIMISING,
    )
    seed: int = setting(0, "int", "Random seed", methods=_OPTIMISING)
    preserve_color: bool = setting(
        False, "bool", "Transfer luminance only; keep the content's colours"
    )
    mixed_precision: bool = setting(
        True,
        "bool",
        "Mixed precision: bf16 autocast where the hardware has it (CUDA, CPUs with bf16 units)",
    )
    two_stage: bool | None = _unset(
        "bool",
        "Luan et al.'s two-stage schedule: Gatys first, then the photorealism term "
        "(default: one stage)",
        _DPST,
    )
    levels: int = setting(
        1,
        "int",
        "Coarse-to-fine levels; 3 optimises at 1/4 and 1/2 of the size first (1: off)",
        low=1,
        high=4,
        rule="1 (off) to 4",
        methods=_COARSE_TO_FINE,
    )
    matting_eps: float = setting(
        1e-7, "number", "Epsilon of the matting Laplacian", low=0, above=True, methods=_DPST
    )
    model: str | None = _unset(
        "str", "The trained network's name or path (fast needs one)", _FEED_FORWARD
    )
    device: str = setting("auto", "str", "The device: auto, cpu, cuda, cuda:N or mps")
    extra: tuple[tuple[str, Any], ...] = setting(
        (), "options", "The method's own options (styletransfer.options)"
    )

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "content_layers", _strs(self.content_layers))
        set_(self, "style_layers", _strs(self.style_layers))
        for name, spec in described(self).items():
            if spec.kind == "numbers":
                set_(self, name, _floats(name, getattr(self, name)))
        if isinstance(self.extra, dict):
            set_(self, "extra", tuple(sorted(self.extra.items())))

    # -- derived values -------------------------------------------------------------------
    def resolved(self) -> TransferConfig:
        """A copy with every ``None`` replaced by the method's or network's default."""
        cfg = self._resolved()
        recorded = recorded_settings(self.method)
        if recorded is None:
            return cfg
        # Settings that do not apply to the method take its defaults, so they neither enter
        # its records nor tell two identical runs apart.
        base = TransferConfig(method=self.method)._resolved()
        changes = {
            f.name: getattr(base, f.name)
            for f in dataclasses.fields(self)
            if f.name not in recorded and f.name not in _NOT_HASHED
        }
        return dataclasses.replace(cfg, **changes)

    def _resolved(self) -> TransferConfig:
        from styletransfer.features import default_layers

        changes: dict[str, Any] = {}
        defaults = method_spec(self.method).default_values()
        fields = {f.name for f in dataclasses.fields(self)}
        for name, value in defaults.items():
            if name in fields and getattr(self, name) is None:
                changes[name] = value
        if self.content_layers is None or self.style_layers is None:
            layers = default_layers(self.feature_model)
            if self.content_layers is None:
                changes["content_layers"] = layers.content
            if self.style_layers is None:
                changes["style_layers"] = layers.style
        cfg = dataclasses.replace(self, **changes)
        more: dict[str, Any] = {}
        if cfg.content_layer_weights is None:
            more["content_layer_weights"] = (1.0,) * len(cfg.content_layers or ())
        if cfg.style_layer_weights is None:
            n = len(cfg.style_layers or ())
            each = defaults.get("style_layer_weight", 1.0 / n if n else 1.0)
            more["style_layer_weights"] = (float(each),) * n
        for name in ("content_weight", "style_weight", "tv_weight", "photoreal_weight"):
            if getattr(cfg, name) is None:
                more[name] = 0.0
        if cfg.two_stage is None:
            more["two_stage"] = False
        if cfg.lr is None:
            more["lr"] = 0.02
        return dataclasses.replace(cfg, **more)

    def blend(self, n_styles: int) -> tuple[float, ...]:
        """The style blend weights for ``n_styles`` styles, normalised to sum to 1."""
        weights = self.style_weights or (1.0,) * n_styles
        if len(weights) != n_styles:
            raise ValueError(
                f"{len(weights)} style weight(s) for {n_styles} style image(s): give one per style"
            )
        total = sum(weights)
        return tuple(w / total for w in weights)

    # -- validation -----------------------------------------------------------------------
    def validate(self) -> TransferConfig:
        """Raise ValueError naming the problem (and the valid options); return self."""
        from styletransfer.features import FEATURE_MODELS, check_layers

        check(self)
        spec = method_spec(self.method)
        if self.feature_model not in FEATURE_MODELS:
            raise ValueError(
                f"unknown feature model {self.feature_model!r}; the feature models are: "
                f"{', '.join(FEATURE_MODELS)}"
            )
        if not _DEVICE_PATTERN.match(self.device):
            raise ValueError(f"unknown device {self.device!r}; use auto, cpu, mps, cuda or cuda:N")
        if self.style_weights is not None:
            if any(w < 0 for w in self.style_weights) or sum(self.style_weights) <= 0:
                raise ValueError(
                    f"style weights must be >= 0 with a positive sum, got {list(self.style_weights)}"
                )
        for key, where in _RUNTIME_KEYS.items():
            if key in dict(self.extra):
                raise ValueError(
                    f"{key} is a location, not a setting: leave it out of extra and pass "
                    f"runtime={where} to transfer()"
                )
        method_options(self.method, self.extra)
        cfg = self.resolved()
        for kind in ("content", "style"):
            layers = getattr(cfg, f"{kind}_layers")
            weights = getattr(cfg, f"{kind}_layer_weights")
            if not spec.uses_layers:
                continue
            check_layers(cfg.feature_model, layers)
            if len(weights) != len(layers):
                raise ValueError(
                    f"{len(weights)} {kind} layer weight(s) for {len(layers)} {kind} layer(s) "
                    f"({', '.join(layers)}): give one weight per layer"
                )
            if any(w < 0 for w in weights):
                raise ValueError(f"{kind} layer weights must be >= 0, got {list(weights)}")
        return self

    # -- identity -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The resolved settings as plain JSON-able values."""
        out = dataclasses.asdict(self.resolved())
        for key, value in out.items():
            if isinstance(value, tuple):
                out[key] = list(value)
        out["extra"] = {k: v for k, v in self.extra}
        return out

    def settings(self) -> dict[str, Any]:
        """The resolved settings that apply to the method, as plain JSON-able values.

        Every field for the optimising methods; for a method that declares its own (``fast``:
        the model, its style blend, size, colour, precision, device) only those.
        """
        applies = recorded_settings(self.method)
        return {k: v for k, v in self.to_dict().items() if applies is None or k in applies}

    def to_json(self) -> str:
        """Canonical JSON of ``settings()``: what a work item carries and ``runs.config`` holds."""
        return json.dumps(self.settings(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> TransferConfig:
        """Parse and validate a config written by ``to_json`` (or ``to_dict``).

        Fields left out take their defaults. Raises ValueError naming the problem: text that is
        not a JSON object, unknown fields (the valid ones listed), values of the wrong kind or
        out of range (the valid options listed).
        """
        try:
            data = json.loads(text)
        except (TypeError, json.JSONDecodeError) as exc:
            raise ValueError(f"a transfer config must be a JSON object: {exc}") from None
        if not isinstance(data, dict):
            raise ValueError(f"a transfer config must be a JSON object, got {type(data).__name__}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise ValueError(
                f"unknown transfer setting(s) {', '.join(unknown)}; the settings are: "
                f"{', '.join(sorted(fields))}"
            )
        settings = described(cls)
        for key, value in data.items():
            if key == "extra":
                if not isinstance(value, dict):
                    raise ValueError(f"extra must be a JSON object, got {value!r}")
                continue
            message = problem(key, value, settings[key])
            if message is not None:
                raise ValueError(message)
        try:
            return cls.from_dict(data).validate()
        except TypeError as exc:
            raise ValueError(str(exc)) from None

    def config_hash(self) -> str:
        """sha256 of the canonical JSON of the resolved settings, the device left out."""
        payload = {
            k: v
            for k, v in self.to_dict().items()
            if k not in _NOT_HASHED
            and not (k in _HASHED_UNLESS_DEFAULT and v == _HASHED_UNLESS_DEFAULT[k])
        }
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def with_(self, **changes: Any) -> TransferConfig:
        """A copy with ``changes`` applied (unknown names raise a TypeError listing the fields)."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise TypeError(
                f"unknown TransferConfig field(s): {', '.join(unknown)}; the fields are: "
                f"{', '.join(sorted(names))}"
            )
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TransferConfig:
        """Inverse of ``to_dict`` (unknown keys raise a TypeError listing the fields)."""
        data = dict(data)
        if isinstance(data.get("extra"), dict):
            data["extra"] = tuple(sorted(data["extra"].items()))
        return cls().with_(**data)


def recorded_settings(method: str) -> frozenset[str] | None:
    """The TransferConfig fields a method records (``None``: all of them): its spec's
    ``settings``, or with ``APPLICABLE`` the fields whose description names it or no method."""
    settings = method_spec(method).settings
    if settings != APPLICABLE:
        return settings
    return frozenset(
        name
        for name, spec in described(TransferConfig).items()
        if spec.methods is None or method in spec.methods
    )
