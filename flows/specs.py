"""The YAML files users write: a dataset spec and an experiment spec, validated at the boundary."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

ENGINES = (
    "google",
    "bing",
    "duckduckgo",
    "baidu",
    "flickr",
    "openverse",
    "wikimedia",
    "met",
    "artic",
    "cleveland",
)


class SpecError(ValueError):
    """A spec file is missing, unreadable or invalid; the message says where and why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class QuerySpec(_Strict):
    query: str
    role: Literal["content", "style"]
    engine: str = "openverse"
    max: int = Field(50, ge=1, le=10_000)
    min_side: int | None = Field(None, ge=1)
    licenses: list[str] | None = None

    @field_validator("engine")
    @classmethod
    def _known_engine(cls, value: str) -> str:
        if value not in ENGINES:
            raise ValueError(f"unknown engine {value!r}; choose one of {', '.join(ENGINES)}")
        return value


class ImportSpec(_Strict):
    source: str  # a folder, a file, a URL, or a text file listing them
    role: Literal["content", "style"]


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
        return value


def check_size(size: Any, option: str) -> int:
    """``size`` if it is a whole number of pixels in range; a ValueError naming ``option``."""
    from styletransfer.config import MAX_SIZE, MIN_SIZE

    if isinstance(size, bool) or not isinstance(size, int) or not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(
            f"{option} must be a whole number of pixels from {MIN_SIZE} to {MAX_SIZE} "
            f"(the output's longest side), got {size!r}"
        )
    return size


def load_spec(source: str | Path | dict[str, Any], model: type[BaseModel]) -> Any:
    """Read and validate a YAML file (or an already parsed mapping) as ``model``."""
    where = "spec"
    if isinstance(source, dict):
        raw = source
    else:
        path = Path(source)
        where = str(path)
        if not path.is_file():
            raise SpecError(f"{path}: no such file")
        try:
            raw = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise SpecError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: expected a mapping at the top level")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()
        )
        raise SpecError(f"{where}: {problems}") from None


def expand_configs(spec: ExperimentSpec) -> list[Any]:
    """Every TransferConfig of the experiment: methods x the grid's combinations, validated."""
    from styletransfer import TransferConfig

    fields = {f.name for f in dataclasses.fields(TransferConfig)}
    unknown = sorted((set(spec.settings) | set(spec.grid) | {"method"}) - fields)
    if unknown:
        raise SpecError(
            f"experiment {spec.name!r}: unknown setting(s) {', '.join(unknown)}; "
            f"valid settings: {', '.join(sorted(fields))}"
        )
    if "method" in spec.settings or "method" in spec.grid:
        raise SpecError(
            f"experiment {spec.name!r}: give methods in 'methods', not in settings/grid"
        )
    keys = sorted(spec.grid)
    configs = []
    for method in spec.methods:
        for values in itertools.product(*(spec.grid[k] for k in keys)):
            kwargs = {**spec.settings, **dict(zip(keys, values, strict=True)), "method": method}
            for key, value in kwargs.items():
                if isinstance(value, list):
                    kwargs[key] = tuple(value)
            try:
                config = TransferConfig(**kwargs)
                config.validate()
            except (TypeError, ValueError) as exc:
                raise SpecError(f"experiment {spec.name!r}, method {method}: {exc}") from None
            configs.append(config)
    return configs
