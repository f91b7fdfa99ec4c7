"""Openverse's image API (openly licensed works, no key needed for light use).

Anonymous clients may make 20 requests a minute and 200 a day, and page no deeper than 240
results: requests go through a budget kept across processes (``scraper.engines.quota``), and
a query asking for more than 240 results gets 240, with a warning saying so.
"""

from __future__ import annotations

import logging

from scraper.download import Client
from scraper.engines.base import (
    EngineInfo,
    Result,
    Results,
    as_int,
    base_url,
    collect,
    fetch,
    json_list,
    keep_licensed,
    results_with,
)
from scraper.engines.quota import RequestBudget

log = logging.getLogger(__name__)

NAME = "openverse"
DEFAULT_URL = "https://api.openverse.org"
INFO = EngineInfo(NAME, "Openverse API (anonymous: 20/min, 200/day, 240 deep)")
PAGE_SIZE = 20  # the anonymous maximum
MAX_DEPTH = 240  # results an anonymous client may page through
LIMITS = ((20, 60.0), (200, 86400.0))  # anonymous: 20 a minute, 200 a day
BUDGET = RequestBudget(NAME, LIMITS)


def license_name(code: str | None, version: str | None) -> str | None:
    if not code:
        return None
    code = code.lower()
    if code == "cc0":
        return f"CC0 {version or '1.0'}"
    if code == "pdm":
        return f"Public Domain Mark {version or '1.0'}"
    return f"CC {code.upper()} {version}".strip() if version else f"CC {code.upper()}"


def _result(item: dict) -> Result:
    return Result(
        image_url=item["url"],
        page_url=item.get("foreign_landing_url"),
        title=item.get("title"),
        license=license_name(item.get("license"), item.get("license_version")),
        license_url=item.get("license_url"),
        creator=item.get("creator"),
        width=as_int(item.get("width")),
        height=as_int(item.get("height")),
        thumbnail_url=item.get("thumbnail"),
    )


def parse(body: bytes) -> Results:
    _, items = json_list(NAME, body, "results")
    return results_with(NAME, items, "url", _result)


def search(client: Client, query: str, max_n: int, licenses: tuple[str, ...] = ()) -> Results:
    root = base_url(NAME, DEFAULT_URL)
    if max_n > MAX_DEPTH:
        log.warning(
            "openverse: anonymous clients page no deeper than %d results; asked for %d, "
            "getting at most %d",
            MAX_DEPTH,
            max_n,
            MAX_DEPTH,
        )

    def page(offset: int, count: int) -> Results:
        if offset >= MAX_DEPTH:
            return Results()
        params: dict[str, str | int] = {"q": query, "page": offset // count + 1, "page_size": count}
        if licenses:
            params["license"] = ",".join(licenses)
        BUDGET.acquire()
        return keep_licensed(
            parse(fetch(client, NAME, f"{root}/v1/images/", params).body), licenses
        )

    return collect(NAME, min(max_n, MAX_DEPTH), page, PAGE_SIZE)
