"""The Art Institute of Chicago API: public-domain (CC0) works, images through its IIIF server.

``/api/v1/artworks/search`` answers the fields asked for and a ``config.iiif_url``; an image
is ``{iiif_url}/{image_id}/full/843,/0/default.jpg``, the width the museum recommends for
every client. Works that are not public domain, or have no image, are counted as dropped.
The museum asks clients to identify themselves in ``AIC-User-Agent``; with
``STYLEBENCH_CONTACT`` set it carries the contact.
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
    user_agent,
)
from scraper.engines.museum import CC0, CC0_URL, check_licenses, join

NAME = "artic"
DEFAULT_URL = "https://api.artic.edu"
INFO = EngineInfo(NAME, "Art Institute of Chicago API + IIIF (CC0 works)")
DEFAULT_IIIF = "https://www.artic.edu/iiif/2"
DEFAULT_WEBSITE = "https://www.artic.edu"
PAGE_SIZE = 50
IMAGE_WIDTH = 843
FIELDS = "id,title,image_id,is_public_domain,artist_display,artist_title,date_display,thumbnail"


def image_url(iiif_url: str, image_id: str, width: int = IMAGE_WIDTH) -> str:
    return f"{iiif_url.rstrip('/')}/{image_id}/full/{width},/0/default.jpg"


def parse(body: bytes) -> Results:
    """One search answer; [] when nothing matched."""
    data, items = json_list(NAME, body, "data", "search answer")
    config = data.get("config") if isinstance(data.get("config"), dict) else {}
    iiif = config.get("iiif_url") or DEFAULT_IIIF
    website = (config.get("website_url") or DEFAULT_WEBSITE).rstrip("/")
    pagination = data.get("pagination") if isinstance(data.get("pagination"), dict) else {}
    current, total = as_int(pagination.get("current_page")), as_int(pagination.get("total_pages"))
    out = Results(more=None if current is None else current < (total or 0))
    for item in items:
        if not isinstance(item, dict) or "id" not in item:
            out.drop("not-an-artwork")
            continue
        if item.get("is_public_domain") is not True:
            out.drop("not-public-domain")
            continue
        if not item.get("image_id"):
            out.drop("no-image")
            continue
        thumb = item.get("thumbnail") if isinstance(item.get("thumbnail"), dict) else {}
        full_w, full_h = as_int(thumb.get("width")), as_int(thumb.get("height"))
        width = height = None
        if full_w and full_h:
            width = min(IMAGE_WIDTH, full_w)
            height = round(full_h * width / full_w)
        artist = item.get("artist_title") or str(item.get("artist_display") or "").split("\n")[0]
        out.append(
            Result(
                image_url=image_url(iiif, item["image_id"]),
                page_url=f"{website}/artworks/{item['id']}",
                title=item.get("title") or None,
                license=CC0,
                license_url=CC0_URL,
                creator=join(artist),
                width=width,
                height=height,
                thumbnail_url=image_url(iiif, item["image_id"], 200),
                date=item.get("date_display") or None,
                size_taken=f"iiif {IMAGE_WIDTH} px wide",
            )
        )
    return out


def search(client: Client, query: str, max_n: int, licenses: tuple[str, ...] = ()) -> Results:
    check_licenses(NAME, licenses)
    root = base_url(NAME, DEFAULT_URL)
    headers = {"AIC-User-Agent": user_agent(client.config.user_agent)}

    def page(offset: int, count: int) -> Results:
        params = {
            "q": query,
            "fields": FIELDS,
            "limit": count,
            "page": offset // count + 1,
            "query[term][is_public_domain]": "true",
        }
        return parse(fetch(client, NAME, f"{root}/api/v1/artworks/search", params, headers).body)

    return collect(NAME, max_n, page, PAGE_SIZE)
