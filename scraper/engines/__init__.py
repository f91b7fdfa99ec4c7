"""Search engines: each module is a pure ``parse(bytes)`` plus a thin ``search`` fetch step.

Pages are fetched with requests through ``scraper.download.Client`` rather than icrawler's
feeders and parsers: those have no base-URL parameter (mirrors, tests), follow redirects
unchecked, log and return nothing on a block instead of raising, and its Google and Bing
parsers are broken or jpg-only. icrawler 0.6.10 still supplies Baidu's ``objURL`` decoding.
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

from scraper.download import Client
from scraper.engines.base import LICENSES, Result, Results, validate_licenses
from stylebench.vocabulary import ENGINE_NAMES, WORKING_ENGINES

# Each engine is the module of its name (stylebench.vocabulary lists them).
ENGINES: dict[str, ModuleType] = {
    name: import_module(f"scraper.engines.{name}") for name in ENGINE_NAMES
}


def engine_module(name: str) -> ModuleType:
    """The engine called ``name``, or a ValueError listing the engines."""
    try:
        return ENGINES[name.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown engine {name!r}; choose from: {', '.join(ENGINES)}") from None


def working_engines() -> str:
    """The engines that answer plain HTTP clients, with what each needs set (for messages)."""
    return ", ".join(
        name + (f" (with {', '.join(ENGINES[name].INFO.keys)})" if ENGINES[name].INFO.keys else "")
        for name in WORKING_ENGINES
    )


def search(
    engine: str, client: Client, query: str, max_n: int, licenses: tuple[str, ...] = ()
) -> Results:
    """Up to ``max_n`` ranked results, or a typed EngineError (never an empty success
    when the engine was blocked). ``dropped`` counts, by reason, what the parsers left out."""
    if not query.strip():
        raise ValueError("the query is empty; give the words to search for")
    return engine_module(engine).search(client, query, max_n, validate_licenses(licenses))


__all__ = [
    "ENGINES",
    "LICENSES",
    "Result",
    "Results",
    "engine_module",
    "search",
    "working_engines",
]
