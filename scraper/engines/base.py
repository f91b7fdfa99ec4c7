"""What every engine shares: the Result record, drop counts, base URLs, licences, paging."""

from __future__ import annotations

import json
import logging
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace

import requests

from scraper.download import USER_AGENT, Client, Fetched
from scraper.errors import (
    Blocked,
    DownloadError,
    EngineError,
    LayoutChanged,
    MissingContact,
    UnsupportedOption,
)
from stylebench import __version__
from stylebench.vocabulary import CC0_ENGINES, LICENCE_ENGINES, LICENSES

log = logging.getLogger(__name__)

MAX_PAGES = 50  # hard stop for any paging loop


@dataclass(frozen=True)
class EngineInfo:
    """One engine as a user sees it: what it searches and what it needs set."""

    name: str
    source: str
    keys: tuple[str, ...] = ()  # environment variables it needs
    keys_optional: bool = False  # it runs without them, less well

    @property
    def licences(self) -> bool:
        """Its results carry licences (``--license`` filters)."""
        return self.name in LICENCE_ENGINES or self.name in CC0_ENGINES

    def missing(self) -> tuple[str, ...]:
        return tuple(k for k in self.keys if not os.environ.get(k))


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
    date: str | None = None  # the work's date as the source states it ("ca. 1660")
    size_taken: str | None = None  # which rendition was chosen, when the source offers several


class Results(list[Result]):
    """A parser's results, plus how many items it dropped and why (``dropped[reason]``).

    ``more`` is False when the answer says it is the last page, None when it does not say.
    """

    def __init__(
        self,
        items: Iterable[Result] = (),
        dropped: Mapping[str, int] | None = None,
        more: bool | None = None,
    ):
        super().__init__(items)
        self.dropped: Counter[str] = Counter(dropped or {})
        self.more = more

    def drop(self, reason: str, n: int = 1) -> None:
        """Count ``n`` items left out, with a short stable reason code."""
        self.dropped[reason] += n


def dropped_of(results: object) -> dict[str, int]:
    """The drop counts a parser or search attached to ``results`` ({} for a plain list)."""
    return dict(getattr(results, "dropped", None) or {})


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
            "cannot filter by licence (results carry none); engines that can: "
            f"{', '.join(LICENCE_ENGINES)}",
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


def keep_licensed(results: list[Result], licenses: tuple[str, ...]) -> Results:
    """The results under one of ``licenses``; the others are counted as ``license-filtered``."""
    out = Results(results, dropped_of(results), getattr(results, "more", None))
    if not licenses:
        return out
    kept = [r for r in results if license_code(r.license) in licenses]
    if len(kept) < len(results):
        out.drop("license-filtered", len(results) - len(kept))
    out[:] = kept
    return out


ENV_CONTACT = "STYLEBENCH_CONTACT"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_URL = re.compile(r"^https?://[^\s/]+\.[^\s]+$")


def contact(required_by: str | None = None) -> str | None:
    """``$STYLEBENCH_CONTACT`` (the operator's e-mail or URL), validated.

    With ``required_by`` (an engine name) a missing contact raises MissingContact.
    """
    value = os.environ.get(ENV_CONTACT, "").strip()
    if value and not (_EMAIL.match(value) or _URL.match(value)):
        raise ValueError(
            f"{ENV_CONTACT}={value!r} is neither an e-mail address nor an http(s) URL; "
            "give one where site operators can reach you, e.g. you@example.org"
        )
    if not value and required_by:
        raise MissingContact(
            required_by,
            f"its User-Agent policy wants a way to reach the operator: set {ENV_CONTACT} to "
            "your e-mail address or a URL (e.g. export STYLEBENCH_CONTACT=you@example.org); "
            "it goes into the User-Agent header",
        )
    return value or None


def user_agent(base: str, required_by: str | None = None) -> str:
    """``base`` with the operator's contact in it, in the form Wikimedia's policy asks for:
    ``client/version (contact) library/version``."""
    who = contact(required_by)
    if not who or who in base:
        return base
    if base == USER_AGENT:
        return f"stylebench/{__version__} ({who}) python-requests/{requests.__version__}"
    return f"{base} ({who})"


def load_json(engine: str, body: bytes) -> object:
    """Parse a JSON body or raise LayoutChanged saying what came back instead."""
    try:
        return json.loads(body.decode("utf-8", "replace"))
    except json.JSONDecodeError:
        head = body[:80].decode("utf-8", "replace").strip()
        raise LayoutChanged(engine, f"expected JSON, got {head!r}") from None
    except RecursionError:
        raise LayoutChanged(engine, "JSON nested too deeply to be an engine's answer") from None


def json_list(engine: str, body: bytes, key: str, answer: str = "answer") -> tuple[dict, list]:
    """A JSON object and its list under ``key``, or LayoutChanged naming what is missing."""
    data = load_json(engine, body)
    if not isinstance(data, dict) or not isinstance(data.get(key), list):
        raise LayoutChanged(engine, f"{answer} has no {key!r} list")
    return data, data[key]


def results_with(
    engine: str, items: list, key: str, make: Callable[[dict], Result], what: str = "result"
) -> Results:
    """``make(item)`` for each item that is an object with ``key`` set (an image URL); the
    others are dropped as no-image-url. Items but no result: the layout changed."""
    out = Results()
    for item in items:
        if not isinstance(item, dict) or not item.get(key):
            out.drop("no-image-url")
            continue
        out.append(make(item))
    if items and not out:
        raise LayoutChanged(engine, f"no {what} has {key!r}")
    return out


def as_int(value: object) -> int | None:
    """``value`` as an int (APIs send numbers, numeric strings or nothing), else None."""
    if isinstance(value, bool):
        return None
    try:
        number = int(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None
    return number if number > 0 else None


def ranked(results: list[Result], start: int) -> list[Result]:
    return [replace(r, rank=start + i) for i, r in enumerate(results)]


def collect(
    engine: str, max_n: int, fetch_page: Callable[[int, int], list[Result]], page_size: int
) -> Results:
    """Call ``fetch_page(offset, count)`` page by page until ``max_n`` unique results or none new.

    A page may hold fewer results than ``count`` after licence filtering, so offsets advance
    by whole pages, not by results kept, and a page whose items were all dropped does not end
    the search. What the parsers dropped is summed in the answer's ``dropped``; a page that
    only repeats earlier results (some APIs answer the last page again past the end) ends it
    and is not counted twice.
    """
    if max_n < 1:
        raise ValueError(f"max_n must be >= 1, got {max_n}")
    seen: set[str] = set()
    out: list[Result] = []
    dropped: Counter[str] = Counter()
    for page_no in range(MAX_PAGES):
        try:
            page = fetch_page(page_no * page_size, page_size)
        except EngineError as exc:
            if out:  # a later page failing keeps what earlier pages found
                log.warning("%s; keeping the %d result(s) of earlier pages", exc, len(out))
                break
            raise
        fresh = [r for r in page if r.image_url not in seen]
        if page and not fresh:
            break  # the same page again
        dropped.update(dropped_of(page))
        for r in fresh:
            seen.add(r.image_url)
        out.extend(fresh)
        if len(out) >= max_n or getattr(page, "more", None) is False:
            break
        if not fresh and not dropped_of(page):
            break
    return Results(ranked(out[:max_n], 1), dropped)


def fetch(
    client: Client,
    engine: str,
    url: str,
    params: Mapping[str, str | int] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Fetched:
    """GET a search page through the hardened client; HTTP failures become EngineErrors."""
    try:
        fetched = client.get(url, params=params, headers=headers, raise_for_status=False)
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
