"""Flickr's REST API (``flickr.photos.search``); needs ``FLICKR_API_KEY``; results carry licences.

Since 2024 API keys are issued to Pro accounts only, and a free account's original is not
served when its long side passes 1024 px. So the original is taken only when it is at most
1024 px (or is the only size offered); otherwise the largest other size the answer offers,
and ``size_taken`` records which ("large 2048", "medium 500", ...). A photo offering no size
at all is counted as dropped (``no-size``).
"""

from __future__ import annotations

import os

from scraper.download import Client
from scraper.engines.base import (
    EngineInfo,
    Result,
    Results,
    as_int,
    base_url,
    collect,
    fetch,
    keep_licensed,
    load_json,
)
from scraper.errors import ApiError, LayoutChanged, MissingApiKey

NAME = "flickr"
DEFAULT_URL = "https://api.flickr.com"
PAGE_SIZE = 100
ENV_KEY = "FLICKR_API_KEY"
INFO = EngineInfo(NAME, "Flickr REST API (keys for Pro accounts)", (ENV_KEY,))
FREE_ORIGINAL_MAX = 1024  # px, long side: larger originals of free accounts are not served
# Flickr's size suffixes, largest first, with their names (cropped squares left out).
SIZE_NAMES = {
    "o": "original",
    "6k": "x-large 6k",
    "5k": "x-large 5k",
    "4k": "x-large 4k",
    "3k": "x-large 3k",
    "k": "large 2048",
    "h": "large 1600",
    "l": "large 1024",
    "c": "medium 800",
    "z": "medium 640",
    "m": "medium 500",
    "w": "small 400",
    "n": "small 320",
    "s": "small 240",
    "t": "thumbnail",
}
SIZES = tuple(f"url_{k}" for k in SIZE_NAMES)  # largest first
EXTRAS = "license,owner_name,date_taken,o_dims," + ",".join(SIZES)

# flickr.photos.licenses.getInfo: id -> (name, url, code)
LICENSES: dict[int, tuple[str, str | None, str | None]] = {
    0: ("All Rights Reserved", None, None),
    1: ("CC BY-NC-SA 2.0", "https://creativecommons.org/licenses/by-nc-sa/2.0/", "by-nc-sa"),
    2: ("CC BY-NC 2.0", "https://creativecommons.org/licenses/by-nc/2.0/", "by-nc"),
    3: ("CC BY-NC-ND 2.0", "https://creativecommons.org/licenses/by-nc-nd/2.0/", "by-nc-nd"),
    4: ("CC BY 2.0", "https://creativecommons.org/licenses/by/2.0/", "by"),
    5: ("CC BY-SA 2.0", "https://creativecommons.org/licenses/by-sa/2.0/", "by-sa"),
    6: ("CC BY-ND 2.0", "https://creativecommons.org/licenses/by-nd/2.0/", "by-nd"),
    7: ("No known copyright restrictions", "https://www.flickr.com/commons/usage/", "pdm"),
    8: ("United States Government Work", "http://www.usa.gov/copyright.shtml", "pdm"),
    9: ("CC0 1.0", "https://creativecommons.org/publicdomain/zero/1.0/", "cc0"),
    10: ("Public Domain Mark 1.0", "https://creativecommons.org/publicdomain/mark/1.0/", "pdm"),
}


def choose_size(photo: dict) -> str | None:
    """The size suffix to fetch: the original when a free account's may be served (long side
    at most 1024 px) or nothing else is offered, else the largest other size; None if none."""
    offered = [k for k in SIZE_NAMES if photo.get(f"url_{k}")]
    if not offered:
        return None
    others = [k for k in offered if k != "o"]
    if "o" in offered:
        long_side = max(
            as_int(photo.get("width_o")) or as_int(photo.get("o_width")) or 0,
            as_int(photo.get("height_o")) or as_int(photo.get("o_height")) or 0,
        )
        if not others or 0 < long_side <= FREE_ORIGINAL_MAX:
            return "o"
    return others[0]


def parse(body: bytes) -> Results:
    data = load_json(NAME, body)
    if not isinstance(data, dict):
        raise LayoutChanged(NAME, "answer is not a JSON object")
    if data.get("stat") == "fail":
        code, message = data.get("code"), data.get("message", "")
        if code == 100:
            raise MissingApiKey(
                NAME,
                f"Flickr rejected the key ({message}); check {ENV_KEY} "
                "(keys are issued to Flickr Pro accounts)",
            )
        raise ApiError(NAME, f"Flickr API error {code}: {message}")
    photos = data.get("photos")
    if not isinstance(photos, dict) or not isinstance(photos.get("photo"), list):
        raise LayoutChanged(NAME, "answer has no photos.photo list")
    page, pages = as_int(photos.get("page")), as_int(photos.get("pages"))
    out = Results(more=None if page is None or pages is None else page < pages)
    for p in photos["photo"]:
        if not isinstance(p, dict):
            out.drop("not-a-photo")
            continue
        size = choose_size(p)
        if size is None:
            out.drop("no-size")
            continue
        try:
            licence = int(p.get("license", 0) or 0)
        except (TypeError, ValueError):
            licence = -1
        name, lic_url, _code = LICENSES.get(licence, ("unknown", None, None))
        width, height = as_int(p.get(f"width_{size}")), as_int(p.get(f"height_{size}"))
        if size == "o":
            width = width or as_int(p.get("o_width"))
            height = height or as_int(p.get("o_height"))
        out.append(
            Result(
                image_url=p[f"url_{size}"],
                page_url=f"https://www.flickr.com/photos/{p.get('owner')}/{p.get('id')}",
                title=p.get("title"),
                license=name,
                license_url=lic_url,
                creator=p.get("ownername") or p.get("owner"),
                width=width,
                height=height,
                thumbnail_url=p.get("url_s") or p.get("url_t"),
                date=p.get("datetaken") or None,
                size_taken=SIZE_NAMES[size],
            )
        )
    return out


def search(client: Client, query: str, max_n: int, licenses: tuple[str, ...] = ()) -> Results:
    key = os.environ.get(ENV_KEY)
    if not key:
        raise MissingApiKey(
            NAME,
            f"set {ENV_KEY} (a key from https://www.flickr.com/services/api/keys/; "
            "Flickr issues keys to Pro accounts)",
        )
    root = base_url(NAME, DEFAULT_URL)
    ids = ",".join(str(i) for i, v in LICENSES.items() if v[2] in licenses)

    def page(offset: int, count: int) -> list[Result]:
        params = {
            "method": "flickr.photos.search",
            "api_key": key,
            "text": query,
            "format": "json",
            "nojsoncallback": 1,
            "media": "photos",
            "extras": EXTRAS,
            "per_page": count,
            "page": offset // count + 1,
            "sort": "relevance",
        }
        if ids:
            params["license"] = ids
        return keep_licensed(
            parse(fetch(client, NAME, f"{root}/services/rest/", params).body), licenses
        )

    return collect(NAME, max_n, page, PAGE_SIZE)
