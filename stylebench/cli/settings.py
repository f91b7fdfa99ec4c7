"""Command-line options made from a config's field descriptions (``styletransfer.fields``).

``config_options(TransferConfig)`` gives a command one option per described field: ``--size``
for ``size``, its help and the values it takes from the description, its default stated from
the field's. Left out, an option is not passed and the field keeps the config's default, so
the command line and the library have one default each. ``given`` turns what was passed into
field values, lists read by the one list parser.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import typer

from stylebench.cli.common import split_values
from styletransfer.fields import described

F = TypeVar("F", bound=Callable[..., Any])
# The Python type an option of each kind of setting takes (lists: the values as given).
_ANNOTATIONS = {"int": int, "number": float, "bool": bool, "str": str}
_LISTS = ("names", "numbers")


def option_name(field: str) -> str:
    """``--style-layers`` for the field ``style_layers``."""
    return "--" + field.replace("_", "-")


def _help(spec: Any, default: Any, over_a_file: bool = False) -> str:
    text = spec.help if spec.methods is None else f"{spec.help}; for {', '.join(spec.methods)}"
    if spec.low is not None and spec.high is not None and spec.rule is None:
        text += f" ({spec.values()})"
    if isinstance(default, bool):
        return text + (" [default: on]." if default else ".")
    if default is None or default == ():
        return text + "."  # the help says the default in words
    if over_a_file:  # the default applies only where no file gives the setting
        return f"{text} (default: {default})."
    return f"{text} [default: {default}]."


def _parameter(
    name: str, spec: Any, default: Any, flags: Sequence[str], over_a_file: bool
) -> inspect.Parameter:
    decls = list(flags) or [option_name(name)]
    if spec.kind == "bool" and "/" not in decls[0] and (default is None or default is True):
        decls[0] = f"{decls[0]}/--no-{decls[0].removeprefix('--')}"
    info = typer.Option(
        default if spec.kind == "bool" else None,
        *decls,
        help=_help(spec, default, over_a_file),
        show_default=False,
    )
    annotation = list[str] if spec.kind in _LISTS else _ANNOTATIONS[spec.kind]
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=info, annotation=annotation
    )


def config_options(
    cls: Any,
    *,
    only: Sequence[str] | None = None,
    leave_out: Sequence[str] = (),
    flags: Mapping[str, Sequence[str]] | None = None,
    over_a_file: bool = False,
) -> Callable[[F], F]:
    """A decorator giving a command, after its own parameters, one option per described field
    of ``cls`` (``only`` those, or all but ``leave_out``; options of kind ``options`` are the
    command's own business). ``flags`` gives a field other names (``-m`` beside ``--method``,
    ``--two-stage/--one-stage``). ``over_a_file``: the options apply over a file's settings,
    so their defaults are stated as such. The command takes them as ``**settings``."""
    defaults = {f.name: f.default for f in dataclasses.fields(cls)}
    specs = {
        name: spec
        for name, spec in described(cls).items()
        if (only is None or name in only) and name not in leave_out and spec.kind != "options"
    }

    def decorate(command: F) -> F:
        signature = inspect.signature(command)
        own = [p for p in signature.parameters.values() if p.kind != p.VAR_KEYWORD]
        made = [
            _parameter(name, spec, defaults[name], (flags or {}).get(name, ()), over_a_file)
            for name, spec in specs.items()
        ]
        command.__signature__ = signature.replace(parameters=[*own, *made])  # type: ignore[attr-defined]
        command.__annotations__ = {
            **command.__annotations__,
            **{p.name: p.annotation for p in made},
        }
        return command

    return decorate


def variadic_forms(cls: Any) -> dict[str, str]:
    """The list options of ``cls``'s fields for ``variadic_command``: ``--x a b`` too."""
    kinds = {"names": "words", "numbers": "numbers"}
    return {
        option_name(name): kinds[spec.kind]
        for name, spec in described(cls).items()
        if spec.kind in kinds
    }


def given(cls: Any, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The field values of the options that were passed (lists read by the one list parser)."""
    out: dict[str, Any] = {}
    for name, spec in described(cls).items():
        value = settings.get(name)
        if value is None:
            continue
        if spec.kind in _LISTS:
            value = split_values(value, option_name(name), numbers=spec.kind == "numbers")
            if value is None:
                continue
        out[name] = value
    return out
