"""Baidu images through its ``acjson`` JSON endpoint; obfuscated ``objURL`` decoded by icrawler."""

from __future__ import annotations

from icrawler.builtin.baidu import BaiduParser

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

NAME = "baidu"
DEFAULT_URL = "https://image.baidu.com"
PAGE_SIZE = 30


def decode_obj_url(encrypted: str) -> str:
    """Baidu's ``objURL`` cipher, using icrawler's (stateless) table."""
    if encrypted.startswith(("http://", "https://")):
        return encrypted
    return BaiduParser._decode_url(None, encrypted)  # type: ignore[arg-type]


def parse(body: bytes) -> list[Result]:
    text = body.decode("utf-8", "replace").replace("\\'", "'").encode()
    data = load_json(NAME, text)
    if not isinstance(data, dict):
        raise LayoutChanged(NAME, "answer is not a JSON object")
    if data.get("antiFlag") or "forbid" in str(data.get("message", "")).lower():
        raise Blocked(NAME, f"Baidu refused the request: {data.get('message', 'antiFlag set')}")
    if "data" not in data or not isinstance(data["data"], list):
        raise LayoutChanged(NAME, "answer has no 'data' list")
    out = []
    for item in data["data"]:
        if not isinstance(item, dict) or not item:
            continue  # Baidu ends every page with an empty object
        replace = item.get("replaceUrl") or []
        if replace and isinstance(replace[0], dict) and replace[0].get("ObjURL"):
            url, page = replace[0]["ObjURL"], replace[0].get("FromURL")
        elif item.get("objURL"):
            url, page = decode_obj_url(item["objURL"]), item.get("fromURL")
            page = decode_obj_url(page) if page else None
        elif item.get("middleURL") or item.get("thumbURL"):
            url, page = item.get("middleURL") or item["thumbURL"], None
        else:
            continue
        out.append(
            Result(
                image_url=url,
                page_url=page,
                title=item.get("fromPageTitleEnc") or item.get("fromPageTitle"),
                width=item.get("width"),
                height=item.get("height"),
                thumbnail_url=item.get("thumbURL"),
            )
        )
    return out


def search(client: Client, query: str, max_n: int, licenses: tuple[str, ...] = ()) -> list[Result]:
    refuse_licenses(NAME, licenses)
    root = base_url(NAME, DEFAULT_URL)

    def page(offset: int, count: int) -> list[Result]:
        params = {
            "tn": "resultjson_com",
            "ipn": "rj",
            "word": query,
            "queryWord": query,
            "pn": offset,
            "rn": count,
            "ie": "utf-8",
            "oe": "utf-8",
        }
        return parse(fetch(client, NAME, f"{root}/search/acjson", params).body)

    return collect(NAME, max_n, page, PAGE_SIZE)
