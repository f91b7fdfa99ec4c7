"""Settings described once: each field's kind, bounds, help and methods; checks derived from them.

A config is a frozen dataclass whose fields are made by ``setting(...)``: the ``Setting`` in
each field's metadata is all there is to know about it. ``check`` validates an instance,
``problem`` judges one raw value (a JSON value, an option), ``decode`` builds an options
dataclass from ``extra`` items, ``parse`` reads an option given as text.
Imports nothing of the package: ``--help`` and ``styletransfer.config`` stay light.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

# What each kind of value is, in words (messages say "<name> must be <this>").
KINDS = {
    "int": "an integer (a whole number)",
    "number": "a number",
    "bool": "true or false",
    "str": "a string",
    "names": "a list of layer names",
    "numbers": "a list of numbers",
    "options": "a mapping of the method's options",
}


@dataclass(frozen=True)
class Setting:
    """What a setting is: its kind, the values it takes, what it does, where it applies.

    ``kind`` is one of ``KINDS``. Numbers and whole numbers lie from ``low`` to ``high``
    (``low`` excluded with ``above``; numbers are always finite); ``choices`` lists the only
    values; ``optional``: ``None`` is allowed (it means the method's or network's default).
    ``unit`` is named in messages, ``rule`` replaces the words the bounds would give.
    ``methods`` names the methods the setting applies to (``None``: every method).
    """

    kind: str
    help: str = ""
    low: float | None = None
    high: float | None = None
    above: bool = False
    choices: tuple[Any, ...] | None = None
    optional: bool = False
    unit: str = ""
    rule: str | None = None
    methods: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown kind {self.kind!r}; the kinds are: {', '.join(KINDS)}")

    def values(self) -> str:
        """The values the setting takes, in words: "16 to 4096 pixels", "0 or 1", ">= 32"."""
        if self.rule is not None:
            return self.rule
        unit = f" {self.unit}" if self.unit else ""
        if self.choices is not None:
            words = [str(c) for c in self.choices]
            if all(isinstance(c, int) for c in self.choices) and len(words) == 2:
                return f"{words[0]} or {words[1]}"
            return f"one of: {', '.join(words)}"
        if self.low is not None and self.high is not None:
            return f"{_number(self.low)} to {_number(self.high)}{unit}"
        if self.low == 0 and self.kind == "number":
            return "a finite positive number" if self.above else "a finite non-negative number"
        if self.low == 1 and self.kind == "int" and not self.above:
            return "a positive integer"
        if self.low is not None:
            return f"{'>' if self.above else '>='} {_number(self.low)}{unit}"
        return "a finite number" if self.kind == "number" else KINDS[self.kind]


def setting(default: Any, kind: str, help: str = "", **described: Any) -> Any:
    """A dataclass field with ``default``, described by ``Setting(kind, help, **described)``."""
    return dataclasses.field(
        default=default, metadata={"setting": Setting(kind, help, **described)}
    )


def described(cls: Any) -> dict[str, Setting]:
    """The described fields of a dataclass (or instance), in their order: name -> Setting."""
    return {
        f.name: f.metadata["setting"] for f in dataclasses.fields(cls) if "setting" in f.metadata
    }


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_kind(value: Any, kind: str) -> bool:
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return _is_number(value)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "str":
        return isinstance(value, str)
    if kind == "names":
        items = [value] if isinstance(value, str) else value
        return isinstance(items, (list, tuple)) and all(isinstance(v, str) for v in items)
    if kind == "numbers":
        return isinstance(value, (list, tuple)) and all(_is_number(v) for v in value)
    return isinstance(value, (dict, tuple, list))  # options: a mapping or its sorted items


def _within(value: Any, spec: Setting) -> bool:
    if spec.choices is not None:
        return value in spec.choices
    if spec.kind == "numbers":
        return all(math.isfinite(v) for v in value)
    if spec.kind not in ("int", "number"):
        return True
    if spec.kind == "number" and not math.isfinite(value):
        return False
    if spec.low is not None and (value <= spec.low if spec.above else value < spec.low):
        return False
    return spec.high is None or value <= spec.high


def problem(name: str, value: Any, spec: Setting) -> str | None:
    """What is wrong with ``value`` for the setting ``name``, or None when it fits."""
    if value is None and spec.optional:
        return None
    if not _is_kind(value, spec.kind):
        orr = " or null" if spec.optional else ""
        return f"{name} must be {KINDS[spec.kind]}{orr}, got {value!r}"
    if not _within(value, spec):
        if spec.kind == "numbers":
            return f"{name} must hold finite numbers, got {list(value)!r}"
        return f"{name} must be {spec.values()}, got {value!r}"
    return None


def check(obj: Any, owner: str = "") -> Any:
    """Raise a ValueError naming the first described field of ``obj`` that does not fit its
    description (prefixed by ``owner``, e.g. the method); return ``obj``."""
    for name, spec in described(obj).items():
        message = problem(name, getattr(obj, name), spec)
        if message is not None:
            raise ValueError(f"{owner} {message}" if owner else message)
    return obj


def parse(text: str, spec: Setting) -> Any:
    """A value given as text (``--option KEY=VALUE``) as the setting's kind: "8" -> 8."""
    if spec.kind == "int":
        try:
            return int(text)
        except ValueError:
            return text
    if spec.kind == "number":
        try:
            return float(text)
        except ValueError:
            return text
    if spec.kind == "bool":
        return {"true": True, "false": False}.get(text.lower(), text)
    return text


def _whole(value: Any, spec: Setting) -> Any:
    """``value`` as the setting's kind where it says the same ("8", 8.0, True -> 8, 8, 1)."""
    if isinstance(value, str):
        return parse(value.strip(), spec)
    if spec.kind == "int" and isinstance(value, bool):
        return int(value)
    if spec.kind == "int" and isinstance(value, float) and value.is_integer():
        return int(value)
    if spec.kind == "number" and _is_number(value):
        return float(value)
    return value


def decode(cls: Any, items: Iterable[tuple[str, Any]] | dict[str, Any], owner: str) -> Any:
    """An instance of the options dataclass ``cls`` from ``extra`` items, checked.

    Raises a ValueError naming ``owner`` (the method) and the problem: an unknown option (the
    valid ones listed) or a value that does not fit its description.
    """
    values = dict(items)
    specs = described(cls)
    unknown = sorted(set(values) - set(specs))
    if unknown:
        valid = ", ".join(specs) if specs else f"none: {owner} takes no options"
        raise ValueError(
            f"unknown {owner} option(s) {', '.join(unknown)}; the options are: {valid}"
        )
    return check(cls(**{k: _whole(v, specs[k]) for k, v in values.items()}), owner)


class Options:
    """Base of a method's options: a frozen dataclass of ``setting`` fields, given as
    ``TransferConfig(extra={...})``; ``METHOD`` names the method in messages."""

    METHOD: ClassVar[str] = ""

    @classmethod
    def from_extra(cls, extra: Iterable[tuple[str, Any]] | dict[str, Any], method: str = ""):
        """The options in ``extra``, checked (a ValueError names the method and the options)."""
        return decode(cls, extra, method or cls.METHOD)
