"""What each engine needs, and a one-query live check of each: the ``stylebench engines`` data."""

from __future__ import annotations

from dataclasses import dataclass

from scraper.download import Client, DownloadConfig
from scraper.engines import ENGINES, search
from scraper.engines.base import EngineInfo
from scraper.errors import (
    Blocked,
    Captcha,
    Consent,
    Discontinued,
    EngineError,
    JsWall,
    LayoutChanged,
    MissingApiKey,
)

CHECK_QUERY = "landscape"
OK, BLOCKED, CHANGED, NO_KEY, CLOSED, EMPTY, ERROR = (
    "ok",
    "blocked",
    "layout changed",
    "no key",
    "closed",
    "empty",
    "error",
)
FAILING = frozenset({BLOCKED, CHANGED, EMPTY, ERROR})


# What each engine searches and needs, as its module states it.
INFO: dict[str, EngineInfo] = {name: module.INFO for name, module in ENGINES.items()}


@dataclass(frozen=True)
class Check:
    """The outcome of one engine's live check."""

    engine: str
    status: str  # one of OK, BLOCKED, CHANGED, NO_KEY, CLOSED, EMPTY, ERROR
    detail: str = ""
    results: int = 0

    @property
    def failed(self) -> bool:
        return self.status in FAILING


def status_of(error: EngineError) -> str:
    """The check status an engine error stands for."""
    if isinstance(error, MissingApiKey):
        return NO_KEY
    if isinstance(error, Discontinued):
        return CLOSED
    if isinstance(error, (Blocked, Captcha, Consent, JsWall)):
        return BLOCKED
    if isinstance(error, LayoutChanged):
        return CHANGED
    return ERROR


def check_config() -> DownloadConfig:
    """Short timeouts and one retry: a canary should answer quickly, never hang on a host."""
    return DownloadConfig(connect_timeout=5, read_timeout=10, total_timeout=20, retries=1)


def check(engine: str, client: Client | None = None, query: str = CHECK_QUERY) -> Check:
    """One small live query (the first page only, no downloads) and what came of it."""
    client = client or Client(check_config())
    module = ENGINES[engine]
    missing = INFO[engine].missing()
    try:
        if hasattr(module, "check_open"):  # a service with a closing date
            module.check_open()
        if missing:  # an optional key too: without it the route left is known to be walled
            return Check(engine, NO_KEY, f"set {', '.join(missing)}")
        results = search(engine, client, query, 1)
    except EngineError as exc:
        return Check(engine, status_of(exc), str(exc).removeprefix(f"{engine}: "))
    except ValueError as exc:  # a malformed setting, e.g. STYLEBENCH_CONTACT
        return Check(engine, ERROR, str(exc))
    if not results:
        return Check(engine, EMPTY, f"no result for {query!r}")
    return Check(engine, OK, results[0].image_url, len(results))
