"""DuckDuckGo images: a search page carries a ``vqd`` token, then ``i.js`` answers JSON.

The token comes in a script (``vqd="4-…"``), a URL (``&vqd=4-…``) or, on
html.duckduckgo.com, a hidden form input. DuckDuckGo's bot check (its "anomaly" page) can
arrive in place of either answer, and is reported as a block wherever it arrives.
"""

from __future__ import annotations

import re

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
    refuse_licenses,
    results_with,
)
from scraper.errors import Blocked, LayoutChanged

NAME = "duckduckgo"
DEFAULT_URL = "https://duckduckgo.com"
INFO = EngineInfo(NAME, "DuckDuckGo images (vqd token, i.js)")
PAGE_SIZE = 100  # i.js pages hold about 100 results

_VQD = re.compile(rb"""vqd\s*[=:]\s*["']?([0-9][0-9-]+)""")
_VQD_INPUT = re.compile(
    rb"""<input\b(?=[^>]*\bname\s*=\s*["']?vqd\b)[^>]*\bvalue\s*=\s*["']?([0-9][0-9-]+)""",
    re.I,
)
# The bot-check page's structure (class names, its script and form), in every language.
_BLOCK_MARKERS = (b"anomaly-modal", b"anomaly.js", b"challenge-form", b"captcha")
BLOCKED = "DuckDuckGo flagged the request as an anomaly (bot check); slow down or try later"


def is_block_page(body: bytes) -> bool:
    lowered = body.lower()
    return any(m in lowered for m in _BLOCK_MARKERS)


def parse_vqd(body: bytes) -> str:
    """The ``vqd`` token of a search page, or Blocked/LayoutChanged."""
    m = _VQD.search(body) or _VQD_INPUT.search(body)
    if m:
        return m.group(1).decode()
    if is_block_page(body) or b"anomaly" in body.lower():
        raise Blocked(NAME, BLOCKED)
    raise LayoutChanged(NAME, "no vqd token in the search page")


def _result(item: dict) -> Result:
    return Result(
        image_url=item["image"],
        page_url=item.get("url"),
        title=item.get("title"),
        width=as_int(item.get("width")),
        height=as_int(item.get("height")),
        thumbnail_url=item.get("thumbnail"),
    )


def parse(body: bytes) -> Results:
    """The results of one ``i.js`` JSON answer ([] when it has none)."""
    if body.lstrip()[:1] == b"<" and is_block_page(body):
        raise Blocked(NAME, BLOCKED)
    data, items = json_list(NAME, body, "results", "i.js answer")
    out = results_with(NAME, items, "image", _result, "i.js result")
    if not data.get("next"):
        out.more = False if items else None
    return out


def search(client: Client, query: str, max_n: int, licenses: tuple[str, ...] = ()) -> Results:
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
