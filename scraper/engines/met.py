"""The Metropolitan Museum of Art collection API: public-domain (CC0) works with provenance.

A search (``/public/collection/v1/search?q=…&hasImages=true``) answers object ids only; each
object is then fetched (``/objects/{id}``) for its image, rights and provenance. Objects that
are not public domain, or have no image, are counted as dropped. No key is needed; the Met
asks for at most 80 requests a second, far above the client's per-host rate.
"""

from __future__ import annotations

import logging

from scraper.download import Client
from scraper.engines.base import (
    EngineInfo,
    Result,
    Results,
    base_url,
    collect,
    fetch,
    load_json,
)
from scraper.engines.museum import CC0, CC0_URL, check_licenses, join
from scraper.errors import Blocked, DownloadError, EngineError, LayoutChanged

log = logging.getLogger(__name__)

NAME = "met"
DEFAULT_URL = "https://collectionapi.metmuseum.org"
INFO = EngineInfo(NAME, "The Met collection API (CC0 works)")
PAGE_SIZE = 20  # objects fetched per round
MAX_OBJECTS_PER_RESULT = 5  # objects looked at per result asked for, at most
MAX_OBJECTS = 1000


def parse_search(body: bytes) -> list[int]:
    """The object ids of a search answer, in the Met's order ([] when nothing matched)."""
    data = load_json(NAME, body)
    if not isinstance(data, dict) or "objectIDs" not in data:
        raise LayoutChanged(NAME, "search answer has no 'objectIDs'")
    ids = data["objectIDs"] or []
    if not isinstance(ids, list):
        raise LayoutChanged(NAME, "search 'objectIDs' is not a list")
    out = []
    for i in ids:
        if isinstance(i, int) or (isinstance(i, str) and i.isdigit()):
            out.append(int(i))
    return out


def parse(body: bytes) -> Results:
    """One object answer: one result if it is public domain with an image, else a counted drop."""
    data = load_json(NAME, body)
    out = Results()
    if not isinstance(data, dict):
        raise LayoutChanged(NAME, "object answer is not a JSON object")
    if "objectID" not in data:
        if "message" in data:  # {"message": "ObjectID not found"}
            out.drop("object-not-found")
            return out
        raise LayoutChanged(NAME, "object answer has no 'objectID'")
    if data.get("isPublicDomain") is not True:
        out.drop("not-public-domain")
        return out
    image = data.get("primaryImage") or data.get("primaryImageSmall")
    if not image:
        out.drop("no-image")
        return out
    out.append(
        Result(
            image_url=image,
            page_url=data.get("objectURL")
            or f"https://www.metmuseum.org/art/collection/search/{data['objectID']}",
            title=data.get("title") or None,
            license=CC0,
            license_url=CC0_URL,
            creator=join(data.get("artistDisplayName"))
            or join(data.get("culture"), data.get("period")),
            thumbnail_url=data.get("primaryImageSmall") or None,
            date=data.get("objectDate") or None,
            size_taken="original" if data.get("primaryImage") else "web",
        )
    )
    return out


def _object(client: Client, url: str) -> Results:
    """One object; the Met answers 404 for ids its search still lists (counted, not raised)."""
    try:
        fetched = client.get(url, raise_for_status=False)
    except DownloadError as exc:
        raise EngineError(NAME, f"request to {url} failed ({exc}); is the API reachable?") from None
    if fetched.status == 404:
        out = Results()
        out.drop("object-not-found")
        return out
    if fetched.status in (401, 403, 429):
        raise Blocked(NAME, f"HTTP {fetched.status} from {fetched.final_url}: access refused")
    if fetched.status >= 400:
        raise EngineError(NAME, f"HTTP {fetched.status} from {fetched.final_url}")
    return parse(fetched.body)


def search(client: Client, query: str, max_n: int, licenses: tuple[str, ...] = ()) -> Results:
    check_licenses(NAME, licenses)
    root = base_url(NAME, DEFAULT_URL)
    api = f"{root}/public/collection/v1"
    ids = parse_search(fetch(client, NAME, f"{api}/search", {"q": query, "hasImages": "true"}).body)
    budget = min(len(ids), MAX_OBJECTS, max(PAGE_SIZE, max_n * MAX_OBJECTS_PER_RESULT))
    if budget < len(ids):
        log.info("met: %d objects match %r; looking at the first %d", len(ids), query, budget)

    def page(offset: int, count: int) -> Results:
        out = Results(more=offset + count < budget)
        for object_id in ids[offset : min(offset + count, budget)]:
            got = _object(client, f"{api}/objects/{object_id}")
            out.extend(got)
            out.dropped.update(got.dropped)
        return out

    if not ids:
        return Results()
    return collect(NAME, max_n, page, PAGE_SIZE)
