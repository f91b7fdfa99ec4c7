"""Search engines: each module is a pure ``parse(bytes)`` plus a thin ``search`` fetch step.

Pages are fetched with requests through ``scraper.download.Client`` rather than icrawler's
feeders and parsers: those have no base-URL parameter (mirrors, tests), follow redirects
unchecked, log and return nothing on a block instead of raising, and its Google and Bing
parsers are broken or jpg-only. icrawler 0.6.10 still supplies Baidu's ``objURL`` decoding.
"""

from __future__ import annotations

from types import ModuleType

from scraper.download import Client
from scraper.engines import (
    artic,
    baidu,
    bing,
    cleveland,
    duckduckgo,
    flickr,
    google,
    met,
    openverse,
    wikimedia,
)
from scraper.engines.base import LICENSES, Result, Results, validate_licenses

ENGINES: dict[str, ModuleType] = {
    m.NAME: m
    for m in (google, bing, duckduckgo, baidu, flickr, openverse, wikimedia, met, artic, cleveland)
}


def engine_module(name: str) -> ModuleType:
    """The engine called ``name``, or a ValueError listing the engines."""
    try:
        return ENGINES[name.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown engine {name!r}; choose from: {', '.join(ENGINES)}") from None


def search(
    engine: str, client: Client, query: str, max_n: int, licenses: tuple[str, ...] = ()
) -> Results:
    """Up to ``max_n`` ranked results, or a typed EngineError (never an empty success
    when the engine was blocked). ``dropped`` counts, by reason, what the parsers left out."""
    if not query.strip():
        raise ValueError("the query is empty; give the words to search for")
    return engine_module(engine).search(client, query, max_n, validate_licenses(licenses))


__all__ = ["ENGINES", "LICENSES", "Result", "Results", "engine_module", "search"]
