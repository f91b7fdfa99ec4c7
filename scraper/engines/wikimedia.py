"""Wikimedia Commons through the MediaWiki API (file search with image info and licences)."""

from __future__ import annotations

import re
from html import unescape

from scraper.download import Client
from scraper.engines.base import Result, base_url, collect, fetch, keep_licensed, load_json
from scraper.errors import ApiError, LayoutChanged

NAME = "wikimedia"
DEFAULT_URL = "https://commons.wikimedia.org"
PAGE_SIZE = 50
IMAGE_MIMES = ("image/jpeg", "image/png", "image/webp", "image/gif", "image/tiff")


def _meta(ext: dict, key: str) -> str | None:
    value = (ext.get(key) or {}).get("value")
    if not value:
        return None
    return unescape(re.sub(r"<[^>]+>", "", str(value))).strip() or None


def parse(body: bytes) -> list[Result]:
    """Results in search order; [] when the search found nothing."""
    data = load_json(NAME, body)
    if not isinstance(data, dict):
        raise LayoutChanged(NAME, "answer is not a JSON object")
    if "error" in data:
        err = data["error"]
        raise ApiError(NAME, f"MediaWiki error {err.get('code')}: {err.get('info')}")
    if "query" not in data:
        return []  # MediaWiki omits "query" when the search has no hits
    pages = data["query"].get("pages")
    if not isinstance(pages, dict):
        raise LayoutChanged(NAME, "query has no 'pages' object")
    out = []
    for page in sorted(pages.values(), key=lambda p: p.get("index", 0)):
        info = (page.get("imageinfo") or [None])[0]
        if not isinstance(info, dict) or not info.get("url"):
            continue
        if info.get("mime") and info["mime"] not in IMAGE_MIMES:
            continue  # SVG, PDF, video
        ext = info.get("extmetadata") or {}
        out.append(
            Result(
                image_url=info["url"],
                page_url=info.get("descriptionurl"),
                title=page.get("title"),
                license=_meta(ext, "LicenseShortName"),
                license_url=_meta(ext, "LicenseUrl"),
                creator=_meta(ext, "Artist"),
                width=info.get("width"),
                height=info.get("height"),
                thumbnail_url=info.get("thumburl"),
            )
        )
    return out


def search(client: Client, query: str, max_n: int, licenses: tuple[str, ...] = ()) -> list[Result]:
    root = base_url(NAME, DEFAULT_URL)

    def page(offset: int, count: int) -> list[Result]:
        params = {
            "action": "query",
            "format": "json",
            "generator": "search",
            "gsrsearch": query,
            "gsrnamespace": 6,
            "gsrlimit": count,
            "gsroffset": offset,
            "prop": "imageinfo",
            "iiprop": "url|size|mime|extmetadata",
        }
        body = fetch(client, NAME, f"{root}/w/api.php", params).body
        return keep_licensed(parse(body), licenses)

    return collect(NAME, max_n, page, PAGE_SIZE)
