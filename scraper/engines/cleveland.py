"""The Cleveland Museum of Art open access API: CC0 works with their web-size images.

``/api/artworks/?q=…&cc0=1&has_image=1`` answers ``data[]`` with ``images.web.url``,
``share_license_status``, ``creators[].description``, ``title`` and ``creation_date``.
Works not marked CC0, or without a web image, are counted as dropped.
"""

from __future__ import annotations

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
)
from scraper.engines.museum import CC0, CC0_URL, check_licenses, join

NAME = "cleveland"
DEFAULT_URL = "https://openaccess-api.clevelandart.org"
INFO = EngineInfo(NAME, "Cleveland Museum of Art open access API (CC0 works)")
PAGE_SIZE = 50


def _web_image(item: dict) -> dict:
    images = item.get("images") if isinstance(item.get("images"), dict) else {}
    web = images.get("web") if isinstance(images.get("web"), dict) else {}
    return web if web.get("url") else {}


def _page(item: dict) -> str | None:
    number = item.get("accession_number")
    return f"https://clevelandart.org/art/{number}" if number else None


def parse(body: bytes) -> Results:
    """One search answer; [] when nothing matched."""
    _, items = json_list(NAME, body, "data")
    out = Results()
    for item in items:
        if not isinstance(item, dict):
            out.drop("not-an-artwork")
            continue
        if str(item.get("share_license_status") or "").strip().upper() != "CC0":
            out.drop("not-public-domain")
            continue
        web = _web_image(item)
        if not web:
            out.drop("no-image")
            continue
        creators = item.get("creators") if isinstance(item.get("creators"), list) else []
        culture = item.get("culture") if isinstance(item.get("culture"), list) else []
        out.append(
            Result(
                image_url=web["url"],
                page_url=item.get("url") or _page(item),
                title=item.get("title") or None,
                license=CC0,
                license_url=CC0_URL,
                creator=join(*(c.get("description") for c in creators if isinstance(c, dict)))
                or join(*culture),
                width=as_int(web.get("width")),
                height=as_int(web.get("height")),
                date=item.get("creation_date") or None,
                size_taken="web",
            )
        )
    return out


def search(client: Client, query: str, max_n: int, licenses: tuple[str, ...] = ()) -> Results:
    check_licenses(NAME, licenses)
    root = base_url(NAME, DEFAULT_URL)

    def page(offset: int, count: int) -> Results:
        params = {"q": query, "cc0": 1, "has_image": 1, "limit": count, "skip": offset}
        return parse(fetch(client, NAME, f"{root}/api/artworks/", params).body)

    return collect(NAME, max_n, page, PAGE_SIZE)
