"""TransferConfig: the typed, frozen, validated settings of one run; Runtime: where it runs."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from styletransfer.registry import method_spec

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
_INTS = ("size", "steps", "levels", "seed")
_WEIGHTS = ("content_weight", "style_weight", "tv_weight", "photoreal_weight", "lr", "matting_eps")
_WEIGHT_LISTS = ("content_layer_weights", "style_layer_weights", "style_weights")
# Keys of ``extra`` that name a place rather than a setting: they belong in a Runtime.
_RUNTIME_KEYS = {"models_dir": "Runtime(models_dir=...)"}


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


def _floats(values: Sequence[float] | None) -> tuple[float, ...] | None:
    return None if values is None else tuple(float(v) for v in values)


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

    method: str = "gatys"
    feature_model: str = "vgg19"
    weights: str | None = (
        None  # None: the network's default (vgg19: bundled), a path, "torchvision"
    )
    content_layers: tuple[str, ...] | None = None
    style_layers: tuple[str, ...] | None = None
    content_layer_weights: tuple[float, ...] | None = None  # default: 1 each
    style_layer_weights: tuple[float, ...] | None = None  # default: the method's, else 1/n each
    content_weight: float | None = None
    style_weight: float | None = None
    tv_weight: float | None = None
    photoreal_weight: float | None = None
    style_weights: tuple[float, ...] | None = None  # blend of several styles; default equal
    size: int = 256  # longest side of the output, pixels (smaller images keep their size)
    upscale: bool = False  # enlarge images smaller than ``size`` to it
    steps: int = 500
    optimizer: str = "lbfgs"
    lr: float | None = None  # Adam only
    init: str = "content"
    seed: int = 0
    preserve_color: bool = False  # luminance-only transfer
    mixed_precision: bool = True  # bf16 autocast where the hardware has it
    two_stage: bool | None = None  # dpst: Gatys first, then the photorealism stage
    levels: int = 1  # gatys, dpst: coarse-to-fine from 1/2^(levels-1) of the size (multires)
    matting_eps: float = 1e-7
    model: str | None = None  # feed-forward methods: the trained network's name
    device: str = "auto"
    extra: tuple[tuple[str, Any], ...] = field(default=())  # method-specific settings

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "content_layers", _strs(self.content_layers))
        set_(self, "style_layers", _strs(self.style_layers))
        for name in _WEIGHT_LISTS:
            _check_numbers(name, getattr(self, name))
            set_(self, name, _floats(getattr(self, name)))
        if isinstance(self.extra, dict):
            set_(self, "extra", tuple(sorted(self.extra.items())))

    # -- derived values -------------------------------------------------------------------
    def resolved(self) -> TransferConfig:
        """A copy with every ``None`` replaced by the method's or network's default."""
        cfg = self._resolved()
        spec = method_spec(self.method)
        if spec.settings is None:
            return cfg
        # Settings that do not apply to the method take its defaults, so they neither enter
        # its records nor tell two identical runs apart.
        base = TransferConfig(method=self.method)._resolved()
        changes = {
            f.name: getattr(base, f.name)
            for f in dataclasses.fields(self)
            if f.name not in spec.settings and f.name not in _NOT_HASHED
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

        _check_types(self)
        spec = method_spec(self.method)
        if self.feature_model not in FEATURE_MODELS:
            raise ValueError(
                f"unknown feature model {self.feature_model!r}; the feature models are: "
                f"{', '.join(FEATURE_MODELS)}"
            )
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(
                f"unknown optimizer {self.optimizer!r}; use one of: {', '.join(OPTIMIZERS)}"
            )
        if self.init not in INITS:
            raise ValueError(f"unknown init {self.init!r}; use one of: {', '.join(INITS)}")
        if not _DEVICE_PATTERN.match(self.device):
            raise ValueError(f"unknown device {self.device!r}; use auto, cpu, mps, cuda or cuda:N")
        if not MIN_SIZE <= self.size <= MAX_SIZE:
            raise ValueError(
                f"size must be {MIN_SIZE} to {MAX_SIZE} pixels (the output's longest side), "
                f"got {self.size}"
            )
        if not 1 <= self.levels <= 4:
            raise ValueError(f"levels must be 1 (off) to 4, got {self.levels}")
        if self.steps < 0:
            raise ValueError(f"steps must be >= 0, got {self.steps}")
        if self.matting_eps <= 0:
            raise ValueError(f"matting_eps must be > 0, got {self.matting_eps}")
        for name in ("content_weight", "style_weight", "tv_weight", "photoreal_weight", "lr"):
            value = getattr(self, name)
            if value is not None and (value < 0 or not math.isfinite(value)):
                raise ValueError(f"{name} must be a finite non-negative number, got {value}")
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
        applies = method_spec(self.method).settings
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
        for key, value in data.items():
            if key == "extra":
                if not isinstance(value, dict):
                    raise ValueError(f"extra must be a JSON object, got {value!r}")
                continue
            kind = _FIELD_KINDS.get(key)
            if kind is not None and not _is_kind(value, kind):
                raise ValueError(f"{key} must be {_KIND_NAMES[kind]}, got {value!r}")
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


# The JSON kind each field takes (None allowed where the field's default is None).
_FIELD_KINDS: dict[str, str] = {
    **dict.fromkeys(("method", "feature_model", "optimizer", "init", "device"), "str"),
    **dict.fromkeys(("weights", "model"), "str?"),
    **dict.fromkeys(("content_layers", "style_layers"), "strs?"),
    **dict.fromkeys(("content_layer_weights", "style_layer_weights", "style_weights"), "numbers?"),
    **dict.fromkeys(
        ("content_weight", "style_weight", "tv_weight", "photoreal_weight", "lr"), "number?"
    ),
    **dict.fromkeys(("size", "steps", "seed", "levels"), "int"),
    "matting_eps": "number",
    **dict.fromkeys(("preserve_color", "mixed_precision", "upscale"), "bool"),
    "two_stage": "bool?",
}
_KIND_NAMES = {
    "str": "a string",
    "str?": "a string or null",
    "strs?": "a list of layer names or null",
    "numbers?": "a list of numbers or null",
    "number?": "a number or null",
    "number": "a number",
    "int": "an integer",
    "bool": "true or false",
    "bool?": "true, false or null",
}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_kind(value: Any, kind: str) -> bool:
    if kind.endswith("?"):
        if value is None:
            return True
        kind = kind[:-1]
    if kind == "str":
        return isinstance(value, str)
    if kind == "strs":
        return isinstance(value, (str, list)) and all(
            isinstance(v, str) for v in ([value] if isinstance(value, str) else value)
        )
    if kind == "numbers":
        return isinstance(value, list) and all(_is_number(v) for v in value)
    if kind == "number":
        return _is_number(value)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, bool)


def _check_numbers(name: str, values: Any) -> None:
    """A list of weights must hold finite numbers (a NaN weight makes every run diverge)."""
    if values is None:
        return
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise ValueError(f"{name} must be a list of numbers, got {values!r}")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"{name} must hold finite numbers, got {list(values)!r}")


def _check_types(cfg: TransferConfig) -> None:
    """Whole numbers where counts are expected, numbers where weights are: before any run."""
    for name in ("method", "feature_model", "optimizer", "init", "device"):
        if not isinstance(getattr(cfg, name), str):
            raise ValueError(f"{name} must be a name, got {getattr(cfg, name)!r}")
    for name in _INTS:
        value = getattr(cfg, name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be a whole number, got {value!r}")
    for name in _WEIGHTS:
        value = getattr(cfg, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ValueError(f"{name} must be a number, got {value!r}")
    if not isinstance(cfg.upscale, bool):
        raise ValueError(f"upscale must be true or false, got {cfg.upscale!r}")
