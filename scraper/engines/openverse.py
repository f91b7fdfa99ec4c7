"""Openverse's image API (openly licensed works, no key needed for light use)."""

from __future__ import annotations

from scraper.download import Client
from scraper.engines.base import Result, base_url, collect, fetch, keep_licensed, load_json
from scraper.errors import LayoutChanged

NAME = "openverse"
DEFAULT_URL = "https://api.openverse.org"
PAGE_SIZE = 20  # the anonymous maximum


def license_name(code: str | None, version: str | None) -> str | None:
    if not code:
        return None
    code = code.lower()
    if code == "cc0":
        return f"CC0 {version or '1.0'}"
    if code == "pdm":
        return f"Public Domain Mark {version or '1.0'}"
    return f"CC {code.upper()} {version}".strip() if version else f"CC {code.upper()}"


def parse(body: bytes) -> list[Result]:
    data = load_json(NAME, body)
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise LayoutChanged(NAME, "answer has no 'results' list")
    out = []
    for item in data["results"]:
        if not isinstance(item, dict) or not item.get("url"):
            raise LayoutChanged(NAME, "a result has no 'url'")
        out.append(
            Result(
                image_url=item["url"],
                page_url=item.get("foreign_landing_url"),
                title=item.get("title"),
                license=license_name(item.get("license"), item.get("license_version")),
                license_url=item.get("license_url"),
                creator=item.get("creator"),
                width=item.get("width"),
                height=item.get("height"),
                thumbnail_url=item.get("thumbnail"),
            )
        )
    return out


def search(client: Client, query: str, max_n: int, licenses: tuple[str, ...] = ()) -> list[Result]:
    root = base_url(NAME, DEFAULT_URL)

    def page(offset: int, count: int) -> list[Result]:
        params: dict[str, str | int] = {"q": query, "page": offset // count + 1, "page_size": count}
        if licenses:
            params["license"] = ",".join(licenses)
        return keep_licensed(
            parse(fetch(client, NAME, f"{root}/v1/images/", params).body), licenses
        )

    return collect(NAME, max_n, page, PAGE_SIZE)
