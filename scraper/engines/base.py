"""What every engine shares: the Result record, base URLs, licences and the paging loop."""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from scraper.download import Client, Fetched
from scraper.errors import (
    Blocked,
    DownloadError,
    EngineError,
    LayoutChanged,
    UnsupportedOption,
)

log = logging.getLogger(__name__)

# Licence codes a user may ask for (``--license``), Creative Commons style.
LICENSES: tuple[str, ...] = ("cc0", "pdm", "by", "by-sa", "by-nc", "by-nd", "by-nc-sa", "by-nc-nd")
LICENSE_ENGINES = "flickr, openverse, wikimedia"
MAX_PAGES = 50  # hard stop for any paging loop


@dataclass(frozen=True)
class Result:
    """One search hit: where the image is, where it was shown, and under what terms."""

    image_url: str
    page_url: str | None = None
    title: str | None = None
    license: str | None = None  # as the engine states it, e.g. "CC BY-SA 4.0"
    license_url: str | None = None
    creator: str | None = None
    width: int | None = None
    height: int | None = None
    thumbnail_url: str | None = None
    rank: int = 0  # 1-based position in the engine's answer


def base_url(engine: str, default: str) -> str:
    """``$STYLEBENCH_<ENGINE>_URL`` if set (mirrors, tests), else the engine's own URL."""
    return os.environ.get(f"STYLEBENCH_{engine.upper()}_URL", default).rstrip("/")


def validate_licenses(licenses: Iterable[str] | None) -> tuple[str, ...]:
    """Normalised licence codes, or a ValueError listing the valid ones."""
    out = []
    for lic in licenses or ():
        code = lic.strip().lower()
        if code not in LICENSES:
            raise ValueError(f"unknown licence {lic!r}; choose from: {', '.join(LICENSES)}")
        out.append(code)
    return tuple(dict.fromkeys(out))


def refuse_licenses(engine: str, licenses: tuple[str, ...]) -> None:
    if licenses:
        raise UnsupportedOption(
            engine,
            f"cannot filter by licence (results carry none); engines that can: {LICENSE_ENGINES}",
        )


def license_code(text: str | None) -> str | None:
    """The licence code of a free-text licence name ("CC BY-SA 4.0" -> "by-sa"), or None."""
    if not text:
        return None
    t = text.strip().lower().replace("_", "-")
    if "cc0" in t or "cc-zero" in t:
        return "cc0"
    if "public domain" in t or t in ("pd", "pdm") or t.startswith("pd-") or "pdm" in t:
        return "pdm"
    m = re.search(r"\bby(?:[- ](?:nc|nd|sa))*\b", t)
    if m and ("cc" in t or t.startswith("by")):
        return m.group(0).replace(" ", "-")
    return None


def keep_licensed(results: list[Result], licenses: tuple[str, ...]) -> list[Result]:
    if not licenses:
        return results
    return [r for r in results if license_code(r.license) in licenses]


def load_json(engine: str, body: bytes) -> object:
    """Parse a JSON body or raise LayoutChanged saying what came back instead."""
    try:
        return json.loads(body.decode("utf-8", "replace"))
    except json.JSONDecodeError:
        head = body[:80].decode("utf-8", "replace").strip()
        raise LayoutChanged(engine, f"expected JSON, got {head!r}") from None


def ranked(results: list[Result], start: int) -> list[Result]:
    return [replace(r, rank=start + i) for i, r in enumerate(results)]


def collect(
    engine: str, max_n: int, fetch_page: Callable[[int, int], list[Result]], page_size: int
) -> list[Result]:
    """Call ``fetch_page(offset, count)`` page by page until ``max_n`` unique results or none new.

    A page may hold fewer results than ``count`` after licence filtering, so offsets advance
    by whole pages, not by results kept.
    """
    if max_n < 1:
        raise ValueError(f"max_n must be >= 1, got {max_n}")
    seen: set[str] = set()
    out: list[Result] = []
    for page_no in range(MAX_PAGES):
        try:
            page = fetch_page(page_no * page_size, page_size)
        except EngineError as exc:
            if out:  # a later page failing keeps what earlier pages found
                log.warning("%s; keeping the %d result(s) of earlier pages", exc, len(out))
                break
            raise
        fresh = [r for r in page if r.image_url not in seen]
        for r in fresh:
            seen.add(r.image_url)
        out.extend(fresh)
        if not fresh or len(out) >= max_n:
            break
    return ranked(out[:max_n], 1)


def fetch(
    client: Client, engine: str, url: str, params: dict[str, str | int] | None = None
) -> Fetched:
    """GET a search page through the hardened client; HTTP failures become EngineErrors."""
    try:
        fetched = client.get(url, params=params, raise_for_status=False)
    except DownloadError as exc:
        raise EngineError(
            engine, f"request to {url} failed ({exc}); is the engine reachable?"
        ) from None
    if fetched.status in (401, 403):
        raise Blocked(engine, f"HTTP {fetched.status} from {fetched.final_url}: access refused")
    if fetched.status == 429:
        raise Blocked(engine, f"rate limited (HTTP 429) even after {client.config.retries} retries")
    if fetched.status >= 400:
        raise EngineError(engine, f"HTTP {fetched.status} from {fetched.final_url}")
    return fetched
