"""Bing Images through its ``/images/async`` HTML fragment: each ``a.iusc[m]`` holds JSON."""

from __future__ import annotations

import json
from html.parser import HTMLParser

from scraper.download import Client
from scraper.engines.base import Result, base_url, collect, fetch, refuse_licenses
from scraper.errors import Captcha, LayoutChanged

NAME = "bing"
DEFAULT_URL = "https://www.bing.com"
PAGE_SIZE = 35


class _IuscParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.metadata: list[str] = []
        self.tags = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags += 1
        if tag != "a":
            return
        values = dict(attrs)
        if "iusc" in (values.get("class") or "").split() and values.get("m"):
            self.metadata.append(values["m"] or "")


def parse(body: bytes) -> list[Result]:
    """Results of one async page; [] past the last page; LayoutChanged if unrecognisable."""
    text = body.decode("utf-8", "replace")
    parser = _IuscParser()
    parser.feed(text)
    if not parser.metadata:
        lowered = text.lower()
        if "captcha" in lowered or "/challenge" in lowered:
            raise Captcha(NAME, "Bing answered with a challenge page; slow down or try later")
        if parser.tags == 0:  # an empty fragment: no (more) results
            return []
        raise LayoutChanged(NAME, "no a.iusc[m] elements in a non-empty page")
    results = []
    for raw in parser.metadata:
        try:
            meta = json.loads(raw)
        except json.JSONDecodeError:
            raise LayoutChanged(NAME, f"a.iusc[m] is not JSON: {raw[:60]!r}") from None
        if not isinstance(meta, dict) or not meta.get("murl"):
            raise LayoutChanged(NAME, "a.iusc[m] JSON has no murl")
        results.append(
            Result(
                image_url=meta["murl"],
                page_url=meta.get("purl"),
                title=meta.get("t"),
                thumbnail_url=meta.get("turl"),
            )
        )
    return results


def search(client: Client, query: str, max_n: int, licenses: tuple[str, ...] = ()) -> list[Result]:
    refuse_licenses(NAME, licenses)
    root = base_url(NAME, DEFAULT_URL)

    def page(offset: int, count: int) -> list[Result]:
        params = {"q": query, "first": offset + 1, "count": count, "mmasync": 1}
        return parse(fetch(client, NAME, f"{root}/images/async", params).body)

    return collect(NAME, max_n, page, PAGE_SIZE)
