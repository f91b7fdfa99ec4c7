"""Bing Images through its ``/images/async`` HTML fragment: each ``a.iusc[m]`` holds JSON.

The link's ``href`` carries the original's size (``expw``/``exph``); the same parser reads
the full ``/images/search`` page, which holds the same elements.
"""

from __future__ import annotations

import json
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

from scraper.download import Client
from scraper.engines.base import (
    EngineInfo,
    Result,
    Results,
    as_int,
    base_url,
    collect,
    fetch,
    refuse_licenses,
)
from scraper.errors import Captcha, LayoutChanged

NAME = "bing"
DEFAULT_URL = "https://www.bing.com"
INFO = EngineInfo(NAME, "Bing Images /images/async")
PAGE_SIZE = 35


class _IuscParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.metadata: list[tuple[str, str]] = []  # (m, href)
        self.tags = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags += 1
        if tag != "a":
            return
        values = dict(attrs)
        if "iusc" in (values.get("class") or "").split() and values.get("m"):
            self.metadata.append((values["m"] or "", values.get("href") or ""))


def _size(href: str) -> tuple[int | None, int | None]:
    query = parse_qs(urlsplit(href).query)
    return as_int((query.get("expw") or [None])[0]), as_int((query.get("exph") or [None])[0])


def parse(body: bytes) -> Results:
    """Results of one async page; [] past the last page; LayoutChanged if unrecognisable."""
    text = body.decode("utf-8", "replace")
    parser = _IuscParser()
    parser.feed(text)
    if not parser.metadata:
        lowered = text.lower()
        if "captcha" in lowered or "/challenge" in lowered:
            raise Captcha(NAME, "Bing answered with a challenge page; slow down or try later")
        if parser.tags == 0:  # an empty fragment: no (more) results
            return Results()
        raise LayoutChanged(NAME, "no a.iusc[m] elements in a non-empty page")
    results = Results()
    for raw, href in parser.metadata:
        try:
            meta = json.loads(raw)
        except json.JSONDecodeError:
            results.drop("unreadable-metadata")
            continue
        if not isinstance(meta, dict) or not meta.get("murl"):
            results.drop("no-image-url")
            continue
        width, height = _size(href)
        results.append(
            Result(
                image_url=meta["murl"],
                page_url=meta.get("purl"),
                title=meta.get("t"),
                thumbnail_url=meta.get("turl"),
                width=width,
                height=height,
            )
        )
    if not results:
        raise LayoutChanged(NAME, f"no a.iusc[m] holds readable JSON with a murl ({raw[:60]!r})")
    return results


def search(client: Client, query: str, max_n: int, licenses: tuple[str, ...] = ()) -> Results:
    refuse_licenses(NAME, licenses)
    root = base_url(NAME, DEFAULT_URL)

    def page(offset: int, count: int) -> list[Result]:
        params = {"q": query, "first": offset + 1, "count": count, "mmasync": 1}
        return parse(fetch(client, NAME, f"{root}/images/async", params).body)

    return collect(NAME, max_n, page, PAGE_SIZE)
