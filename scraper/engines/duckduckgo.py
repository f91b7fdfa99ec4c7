"""DuckDuckGo images: a search page carries a ``vqd`` token, then ``i.js`` answers JSON."""

from __future__ import annotations

import re

from scraper.download import Client
from scraper.engines.base import (
    Result,
    base_url,
    collect,
    fetch,
    load_json,
    refuse_licenses,
)
from scraper.errors import Blocked, LayoutChanged

NAME = "duckduckgo"
DEFAULT_URL = "https://duckduckgo.com"
PAGE_SIZE = 100  # i.js pages hold about 100 results

_VQD = re.compile(rb"""vqd\s*[=:]\s*["']?([0-9][0-9-]+)""")


def parse_vqd(body: bytes) -> str:
    """The ``vqd`` token of a search page, or Blocked/LayoutChanged."""
    m = _VQD.search(body)
    if m:
        return m.group(1).decode()
    if b"anomaly" in body.lower() or b"captcha" in body.lower():
        raise Blocked(NAME, "DuckDuckGo flagged the request as an anomaly (bot check)")
    raise LayoutChanged(NAME, "no vqd token in the search page")


def parse(body: bytes) -> list[Result]:
    """The results of one ``i.js`` JSON answer ([] when it has none)."""
    data = load_json(NAME, body)
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise LayoutChanged(NAME, "i.js answer has no 'results' list")
    out = []
    for item in data["results"]:
        if not isinstance(item, dict) or not item.get("image"):
            raise LayoutChanged(NAME, "an i.js result has no 'image'")
        out.append(
            Result(
                image_url=item["image"],
                page_url=item.get("url"),
                title=item.get("title"),
                width=item.get("width"),
                height=item.get("height"),
                thumbnail_url=item.get("thumbnail"),
            )
        )
    return out


def search(client: Client, query: str, max_n: int, licenses: tuple[str, ...] = ()) -> list[Result]:
    refuse_licenses(NAME, licenses)
    root = base_url(NAME, DEFAULT_URL)
    vqd = parse_vqd(
        fetch(client, NAME, f"{root}/", {"q": query, "iax": "images", "ia": "images"}).body
    )

    def page(offset: int, count: int) -> list[Result]:
        params = {
            "l": "us-en",
            "o": "json",
            "q": query,
            "vqd": vqd,
            "f": ",,,,,",
            "p": "1",
            "s": offset,
        }
        return parse(fetch(client, NAME, f"{root}/i.js", params).body)

    return collect(NAME, max_n, page, PAGE_SIZE)
