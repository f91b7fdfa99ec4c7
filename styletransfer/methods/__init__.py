"""The method registry: name -> function, plus each method's default hyper-parameters."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

# A method takes a styletransfer.engine.MethodInput and returns one MethodOutput per content.
MethodFn = Callable[..., Any]

METHODS: dict[str, MethodFn] = {}
_DEFAULTS: dict[str, dict[str, Any]] = {}


def register_method(
    name: str,
    fn: MethodFn,
    defaults: Mapping[str, Any] | None = None,
    *,
    uses_layers: bool = True,
) -> None:
    """Make ``fn`` available as ``TransferConfig(method=name)``.

    ``defaults`` fills TransferConfig fields left at ``None`` (weights, layers, two_stage...);
    ``uses_layers=False`` skips layer checks for methods whose networks fix their own.
    """
    from styletransfer import config

    METHODS[name] = fn
    _DEFAULTS[name] = dict(defaults or {})
    if not uses_layers:
        config._LAYERLESS_METHODS.add(name)


def method_defaults(name: str) -> dict[str, Any]:
    """The documented defaults of method ``name`` (a ValueError lists the methods if unknown)."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; the methods are: {', '.join(sorted(METHODS))}")
    return dict(_DEFAULTS[name])


def get_method(name: str) -> MethodFn:
    """The function of method ``name`` (a ValueError lists the methods if unknown)."""
    method_defaults(name)
    return METHODS[name]


# The built-in methods register themselves on import.
from styletransfer import fast as _fast  # noqa: E402,F401
from styletransfer.methods import dpst as _dpst  # noqa: E402,F401
from styletransfer.methods import gatys as _gatys  # noqa: E402,F401
from styletransfer.methods import photo_fast as _photo_fast  # noqa: E402,F401
