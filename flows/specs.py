"""The YAML files users write: a dataset spec and an experiment spec, validated at the boundary."""

from __future__ import annotations

import dataclasses
import itertools
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from stylebench.vocabulary import ENGINE_NAMES, ROLES

MAX_SPEC_BYTES = 1024 * 1024  # a spec is written by hand: a megabyte is far beyond any
MAX_SPEC_VALUES = 100_000  # values in a spec with its YAML aliases expanded (a bomb has billions)
MAX_EXTRA_BYTES = 16 * 1024  # one config's method-specific ``extra`` settings, as JSON


Role = Literal[ROLES]  # type: ignore[valid-type]


class SpecError(ValueError):
    """A spec file is missing, unreadable or invalid; the message says where and why."""


class _SpecLoader(yaml.SafeLoader):
    """YAML's safe loader that refuses a key given twice in one mapping (instead of keeping
    the last); keys a merge (``<<: *base``) brings in may be overridden."""

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            seen: set[Any] = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                except TypeError:
                    continue  # unhashable: the constructor reports it
                if duplicate:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        f"found the key {key!r} twice; give each key once",
                        key_node.start_mark,
                    )
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def count_values(data: Any, limit: int = MAX_SPEC_VALUES) -> int:
    """Values in ``data`` with shared parts counted each time they appear (as YAML aliases
    expand); stops counting past ``limit`` (a recursive structure never ends)."""
    count, stack = 0, [data]
    while stack and count <= limit:
        value = stack.pop()
        count += 1
        if isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list | tuple):
            stack.extend(value)
    return count


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class QuerySpec(_Strict):
    query: str
    role: Role
    engine: str = "openverse"
    max: int = Field(50, ge=1, le=10_000)
    min_side: int | None = Field(None, ge=1)
    licenses: list[str] | None = None

    @field_validator("engine")
    @classmethod
    def _known_engine(cls, value: str) -> str:
        if value not in ENGINE_NAMES:
            raise ValueError(f"unknown engine {value!r}; choose one of {', '.join(ENGINE_NAMES)}")
        return value


class ImportSpec(_Strict):
    source: str  # a folder, a file, a URL, or a text file listing them
    role: Role


class DatasetSpec(_Strict):
    """What to collect: search queries per role and local imports."""

    name: str = "dataset"
    queries: list[QuerySpec] = []
    imports: list[ImportSpec] = []


class PairSelection(_Strict):
    strategy: str | None = None  # only pairs made by this strategy
    limit: int | None = Field(None, ge=1)  # at most this many pairs (oldest first)


class ExperimentSpec(_Strict):
    """Methods times a grid of settings, over the pending pairs, in batches."""

    name: str
    methods: list[str] = Field(min_length=1)
    settings: dict[str, Any] = {}  # fixed TransferConfig fields for every run
    grid: dict[str, list[Any]] = {}  # one run per combination of these values
    batch_size: int = Field(4, ge=1, le=1024)
    pairs: PairSelection = PairSelection()

    @field_validator("settings", "grid")
    @classmethod
    def _sizes(cls, value: dict[str, Any], info: Any) -> dict[str, Any]:
        if "size" in value:
            sizes = value["size"] if info.field_name == "grid" else [value["size"]]
            for size in sizes if isinstance(sizes, list) else [sizes]:
                check_size(size, f"{info.field_name}.size")
        if "extra" in value:
            extras = value["extra"] if info.field_name == "grid" else [value["extra"]]
            for extra in extras if isinstance(extras, list) else [extras]:
                check_extra(extra, f"{info.field_name}.extra")
        return value


def check_extra(extra: Any, option: str) -> dict[str, Any]:
    """``extra`` if it is a JSON object of at most MAX_EXTRA_BYTES; a ValueError naming
    ``option`` otherwise."""
    if not isinstance(extra, dict):
        raise ValueError(f"{option} must be a mapping of method settings, got {extra!r:.80}")
    if count_values(extra) > MAX_SPEC_VALUES:
        raise ValueError(f"{option} holds more than {MAX_SPEC_VALUES:,} values")
    try:
        size = len(json.dumps(extra))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{option} must hold JSON values only: {exc}") from None
    if size > MAX_EXTRA_BYTES:
        raise ValueError(
            f"{option} is {size:,} bytes as JSON, more than {MAX_EXTRA_BYTES:,}: method "
            "settings are a few values; give data as files"
        )
    return extra


def check_size(size: Any, option: str) -> int:
    """``size`` if it is a whole number of pixels in range; a ValueError naming ``option``."""
    from styletransfer.config import MAX_SIZE, MIN_SIZE

    if isinstance(size, bool) or not isinstance(size, int) or not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(
            f"{option} must be a whole number of pixels from {MIN_SIZE} to {MAX_SIZE} "
            f"(the output's longest side), got {size!r}"
        )
    return size


def read_yaml(path: Path) -> Any:
    """The YAML document in ``path``: UTF-8, at most MAX_SPEC_BYTES, no key twice in a
    mapping, at most MAX_SPEC_VALUES values once aliases are expanded. Every SpecError
    names the file."""
    if not path.is_file():
        raise SpecError(f"{path}: no such file")
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_SPEC_BYTES + 1)
    except OSError as exc:
        raise SpecError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    if len(data) > MAX_SPEC_BYTES:
        raise SpecError(f"{path}: more than {MAX_SPEC_BYTES:,} bytes; a spec is a short text file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(
            f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "save it as UTF-8"
        ) from None
    try:
        raw = yaml.load(text, Loader=_SpecLoader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML: {exc}") from None
    except RecursionError:
        raise SpecError(f"{path}: nested too deeply") from None
    _check_values(raw, str(path))
    return raw


def _check_values(raw: Any, where: str) -> None:
    if count_values(raw) > MAX_SPEC_VALUES:
        raise SpecError(
            f"{where}: more than {MAX_SPEC_VALUES:,} values once its YAML aliases (*name) are "
            "expanded; write the values out or split the spec"
        )


def load_spec(source: str | Path | dict[str, Any], model: type[BaseModel]) -> Any:
    """Read and validate a YAML file (or an already parsed mapping) as ``model``."""
    where = "spec"
    if isinstance(source, dict):
        raw = source
        _check_values(raw, where)
    else:
        path = Path(source)
        where = str(path)
        raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: expected a mapping at the top level")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()
        )
        raise SpecError(f"{where}: {problems}") from None


def expand_configs(spec: ExperimentSpec, source: str | Path | None = None) -> list[Any]:
    """Every TransferConfig of the experiment: methods x the grid's combinations, validated.

    ``source``: the file the spec came from, named in errors.
    """
    from styletransfer import TransferConfig

    where = f"{source}: experiment {spec.name!r}" if source else f"experiment {spec.name!r}"
    fields = {f.name for f in dataclasses.fields(TransferConfig)}
    unknown = sorted((set(spec.settings) | set(spec.grid) | {"method"}) - fields)
    if unknown:
        raise SpecError(
            f"{where}: unknown setting(s) {', '.join(unknown)}; "
            f"valid settings: {', '.join(sorted(fields))}"
        )
    if "method" in spec.settings or "method" in spec.grid:
        raise SpecError(f"{where}: give methods in 'methods', not in settings/grid")
    keys = sorted(spec.grid)
    configs = []
    for method in spec.methods:
        for values in itertools.product(*(spec.grid[k] for k in keys)):
            kwargs = {**spec.settings, **dict(zip(keys, values, strict=True)), "method": method}
            if isinstance(kwargs.get("extra"), dict):
                kwargs["extra"] = _extra_for(method, kwargs["extra"], spec.methods)
            for key, value in kwargs.items():
                if isinstance(value, list):
                    kwargs[key] = tuple(value)
            try:
                config = TransferConfig(**kwargs)
                config.validate()
            except (TypeError, ValueError) as exc:
                raise SpecError(f"{where}, method {method}: {exc}") from None
            configs.append(config)
    return configs


def _extra_for(method: str, extra: dict[str, Any], methods: list[str]) -> dict[str, Any]:
    """The part of an experiment's ``extra`` that is ``method``'s: each method of a mixed
    experiment gets the options it declares. A key that no method of the experiment declares
    is left in, so that the config's validation refuses it with the valid options named."""
    from styletransfer.registry import option_owners

    kept = {}
    for key, value in extra.items():
        owners = option_owners(key)
        if method in owners or not set(owners) & set(methods):
            kept[key] = value
    return kept
