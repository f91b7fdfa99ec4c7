"""Wikimedia Commons through the MediaWiki API (file search with image info and licences).

Wikimedia's User-Agent policy wants a way to reach the operator: ``STYLEBENCH_CONTACT`` (an
e-mail address or URL) goes into the User-Agent of every request, and without it the engine
says how to set it. TIFF originals (often hundreds of MB, and no format a browser shows) are
replaced by the JPEG rendering Commons makes of them (``iiurlwidth``), recorded in
``size_taken``; every result also gets that rendering as its thumbnail.
"""

from __future__ import annotations

import re
from html import unescape

from scraper.download import Client
from scraper.engines.base import (
    ENV_CONTACT,
    EngineInfo,
    Result,
    Results,
    as_int,
    base_url,
    collect,
    fetch,
    keep_licensed,
    load_json,
    user_agent,
)
from scraper.errors import ApiError, Blocked, LayoutChanged

NAME = "wikimedia"
DEFAULT_URL = "https://commons.wikimedia.org"
INFO = EngineInfo(NAME, "Wikimedia Commons API", (ENV_CONTACT,))
PAGE_SIZE = 50
RENDER_WIDTH = 1920  # one of the thumbnail widths Commons pre-renders
WEB_MIMES = ("image/jpeg", "image/png", "image/webp", "image/gif")
RENDERED_MIMES = ("image/tiff",)  # taken as the JPEG rendering Commons makes
_EXT_MIME = {
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "gif": "image/gif",
    "tif": "image/tiff",
    "tiff": "image/tiff",
}


def _meta(ext: dict, key: str) -> str | None:
    value = (ext.get(key) or {}).get("value")
    if not value:
        return None
    return unescape(re.sub(r"<[^>]+>", "", str(value))).strip() or None


def _mime(info: dict) -> str | None:
    """The file's MIME type, from the API or (when ``iiprop`` had no ``mime``) its name."""
    if info.get("mime"):
        return str(info["mime"]).lower()
    ext = str(info.get("url", "")).rsplit("?", 1)[0].rsplit(".", 1)[-1].lower()
    return _EXT_MIME.get(ext)


def parse(body: bytes) -> Results:
    """Results in search order; [] when the search found nothing."""
    data = load_json(NAME, body)
    if not isinstance(data, dict):
        raise LayoutChanged(NAME, "answer is not a JSON object")
    if "error" in data:
        err = data["error"] if isinstance(data["error"], dict) else {"info": data["error"]}
        raise ApiError(NAME, f"MediaWiki error {err.get('code')}: {err.get('info')}")
    more = None if "continue" in data else False
    if "query" not in data:
        return Results(more=more)  # MediaWiki omits "query" when the search has no hits
    pages = data["query"].get("pages") if isinstance(data["query"], dict) else None
    if not isinstance(pages, dict):
        raise LayoutChanged(NAME, "query has no 'pages' object")
    out = Results(more=more)
    entries = [p for p in pages.values() if isinstance(p, dict)]
    if len(entries) < len(pages):
        out.drop("not-a-page", len(pages) - len(entries))
    for page in sorted(entries, key=lambda p: as_int(p.get("index")) or 0):
        infos = page.get("imageinfo")
        info = infos[0] if isinstance(infos, list) and infos else None
        if not isinstance(info, dict) or not info.get("url"):
            out.drop("no-image-info")
            continue
        mime = _mime(info)
        thumb = info.get("thumburl")
        if mime in WEB_MIMES:
            url, size = info["url"], "original"
            width, height = as_int(info.get("width")), as_int(info.get("height"))
        elif mime in RENDERED_MIMES:
            if not thumb:
                out.drop("tiff-without-rendering")
                continue
            url, size = thumb, f"rendering {as_int(info.get('thumbwidth')) or RENDER_WIDTH} px"
            width, height = as_int(info.get("thumbwidth")), as_int(info.get("thumbheight"))
        else:
            out.drop("unsupported-format")  # SVG, PDF, video, audio
            continue
        ext = info.get("extmetadata") or {}
        out.append(
            Result(
                image_url=url,
                page_url=info.get("descriptionurl"),
                title=page.get("title"),
                license=_meta(ext, "LicenseShortName"),
                license_url=_meta(ext, "LicenseUrl"),
                creator=_meta(ext, "Artist"),
                width=width,
                height=height,
                thumbnail_url=thumb,
                date=_meta(ext, "DateTimeOriginal"),
                size_taken=size,
            )
        )
    return out


def search(client: Client, query: str, max_n: int, licenses: tuple[str, ...] = ()) -> Results:
    agent = user_agent(client.config.user_agent, required_by=NAME)
    root = base_url(NAME, DEFAULT_URL)

    def page(offset: int, count: int) -> Results:
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
            "iiurlwidth": RENDER_WIDTH,
        }
        try:
            body = fetch(client, NAME, f"{root}/w/api.php", params, {"User-Agent": agent}).body
        except Blocked as exc:
            raise Blocked(
                NAME,
                f"{str(exc).removeprefix(NAME + ': ')}; Wikimedia refuses clients whose "
                f"User-Agent does not identify them (sent: {agent!r})",
            ) from None
        return keep_licensed(parse(body), licenses)

    return collect(NAME, max_n, page, PAGE_SIZE)
