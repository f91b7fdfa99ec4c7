"""Baidu images through its ``acjson`` JSON endpoint; obfuscated ``objURL`` decoded by icrawler.

``objURL`` (decoded) is the original image on the page that showed it; ``replaceUrl`` holds
Baidu's re-encoded copy on its own servers, taken only when there is no original.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from icrawler.builtin.baidu import BaiduParser

from scraper.download import Client
from scraper.engines.base import (
    EngineInfo,
    Result,
    Results,
    as_int,
    base_url,
    collect,
    fetch,
    load_json,
    refuse_licenses,
)
from scraper.errors import Blocked, LayoutChanged

NAME = "baidu"
DEFAULT_URL = "https://image.baidu.com"
INFO = EngineInfo(NAME, "Baidu images acjson")
PAGE_SIZE = 30


def decode_obj_url(encrypted: str) -> str:
    """Baidu's ``objURL`` cipher, using icrawler's (stateless) table."""
    if encrypted.startswith(("http://", "https://")):
        return encrypted
    return BaiduParser._decode_url(None, encrypted)  # type: ignore[arg-type]


def plausible_url(url: str) -> bool:
    """True for an http(s) URL whose host is an IP address or ends in an alphabetic TLD:
    a wrongly decoded ``objURL`` decodes to garbage such as ``http://www.8pwbv3w8``."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not host:
        return False
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    tld = host.rsplit(".", 1)[-1] if "." in host else ""
    return bool(re.fullmatch(r"[a-z]{2,63}|xn--[a-z0-9-]+", tld))


def _decoded(value: object) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        url = decode_obj_url(value)
    except Exception:  # icrawler's table raises on characters it does not know
        return None
    return url if plausible_url(url) else None


def parse(body: bytes) -> Results:
    text = body.decode("utf-8", "replace").replace("\\'", "'").encode()
    data = load_json(NAME, text)
    if not isinstance(data, dict):
        raise LayoutChanged(NAME, "answer is not a JSON object")
    if data.get("antiFlag") or "forbid" in str(data.get("message", "")).lower():
        raise Blocked(NAME, f"Baidu refused the request: {data.get('message', 'antiFlag set')}")
    if "data" not in data or not isinstance(data["data"], list):
        raise LayoutChanged(NAME, "answer has no 'data' list")
    out = Results()
    for item in data["data"]:
        if item == {}:
            continue  # Baidu ends every page with an empty object: not a result
        if not isinstance(item, dict):
            out.drop("not-an-item")
            continue
        replace = item.get("replaceUrl") or []
        copy = replace[0] if replace and isinstance(replace[0], dict) else {}
        original = _decoded(item.get("objURL"))
        if original:
            url, page, size = original, _decoded(item.get("fromURL")), "original"
        elif copy.get("ObjURL"):
            url, page, size = copy["ObjURL"], copy.get("FromURL"), "baidu copy"
        elif item.get("middleURL") or item.get("thumbURL"):
            url, page, size = item.get("middleURL") or item["thumbURL"], None, "baidu thumbnail"
        else:
            out.drop("no-image-url")
            continue
        out.append(
            Result(
                image_url=url,
                page_url=page or copy.get("FromURL"),
                title=item.get("fromPageTitleEnc") or item.get("fromPageTitle"),
                width=as_int(item.get("width")) if size == "original" else None,
                height=as_int(item.get("height")) if size == "original" else None,
                thumbnail_url=item.get("thumbURL"),
                size_taken=size,
            )
        )
    return out


def search(client: Client, query: str, max_n: int, licenses: tuple[str, ...] = ()) -> Results:
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
