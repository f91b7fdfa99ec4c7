"""Flickr's REST API (``flickr.photos.search``); needs ``FLICKR_API_KEY``; results carry licences."""

from __future__ import annotations

import os

from scraper.download import Client
from scraper.engines.base import Result, base_url, collect, fetch, keep_licensed, load_json
from scraper.errors import ApiError, LayoutChanged, MissingApiKey

NAME = "flickr"
DEFAULT_URL = "https://api.flickr.com"
PAGE_SIZE = 100
ENV_KEY = "FLICKR_API_KEY"
SIZES = ("url_o", "url_k", "url_h", "url_l", "url_c")  # largest first

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


def parse(body: bytes) -> list[Result]:
    data = load_json(NAME, body)
    if not isinstance(data, dict):
        raise LayoutChanged(NAME, "answer is not a JSON object")
    if data.get("stat") == "fail":
        code, message = data.get("code"), data.get("message", "")
        if code == 100:
            raise MissingApiKey(NAME, f"Flickr rejected the key ({message}); check {ENV_KEY}")
        raise ApiError(NAME, f"Flickr API error {code}: {message}")
    photos = data.get("photos")
    if not isinstance(photos, dict) or not isinstance(photos.get("photo"), list):
        raise LayoutChanged(NAME, "answer has no photos.photo list")
    out = []
    for p in photos["photo"]:
        size = next((s for s in SIZES if p.get(s)), None)
        if size is None:
            continue
        suffix = size[4:]
        name, lic_url, _code = LICENSES.get(int(p.get("license", 0) or 0), ("unknown", None, None))
        out.append(
            Result(
                image_url=p[size],
                page_url=f"https://www.flickr.com/photos/{p.get('owner')}/{p.get('id')}",
                title=p.get("title"),
                license=name,
                license_url=lic_url,
                creator=p.get("ownername") or p.get("owner"),
                width=_int(p.get(f"width_{suffix}")),
                height=_int(p.get(f"height_{suffix}")),
            )
        )
    return out


def _int(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def search(client: Client, query: str, max_n: int, licenses: tuple[str, ...] = ()) -> list[Result]:
    key = os.environ.get(ENV_KEY)
    if not key:
        raise MissingApiKey(
            NAME, f"set {ENV_KEY} (a free key from https://www.flickr.com/services/api/keys/)"
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
            "extras": "license,owner_name," + ",".join(SIZES),
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
