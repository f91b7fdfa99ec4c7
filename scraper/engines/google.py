"""Google Images: the Custom Search JSON API when keyed, else the HTML page and its walls.

With ``GOOGLE_API_KEY`` and ``GOOGLE_CSE_ID`` set, searches go to the Custom Search
JSON API (``searchType=image``; base URL ``$STYLEBENCH_GOOGLE_API_URL``). The API refuses
new projects and closes on 2027-01-01: from that day the engine fails at once, naming
engines that work. Without a key the HTML route is tried (``$STYLEBENCH_GOOGLE_URL``);
since January 2025 Google answers plain HTTP clients with a JavaScript-only page, a consent
page or a /sorry captcha, and each of those is reported as such, naming engines that work.
Never an empty success.

Walls are recognised by the page's structure (form ids, script and redirect URLs), never by
its words, which Google translates into the visitor's language.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from datetime import date, datetime, timezone

from scraper.download import Client
from scraper.engines.base import (
    EngineInfo,
    Result,
    Results,
    as_int,
    base_url,
    collect,
    load_json,
    refuse_licenses,
    results_with,
)
from scraper.errors import (
    ApiError,
    Blocked,
    Captcha,
    Consent,
    Discontinued,
    DownloadError,
    EngineError,
    JsWall,
    LayoutChanged,
)

NAME = "google"
DEFAULT_URL = "https://www.google.com"
DEFAULT_API_URL = "https://www.googleapis.com"
API_PAGE_SIZE = 10  # the API's maximum per request
API_MAX_RESULTS = 100  # start + num may not pass 100
ENV_KEY, ENV_CX = "GOOGLE_API_KEY", "GOOGLE_CSE_ID"
INFO = EngineInfo(
    NAME,
    "Custom Search JSON API until 2027-01-01, else the HTML page (walled)",
    (ENV_KEY, ENV_CX),
    keys_optional=True,
)
API_CLOSES = date(2027, 1, 1)


def advice() -> str:
    """What to do instead: the API's keys, or an engine that works."""
    from scraper.engines import working_engines

    return (
        f"set {ENV_KEY} and {ENV_CX} to use the Custom Search JSON API (existing projects only: "
        f"it refuses new ones and closes on {API_CLOSES.isoformat()}), "
        f"or use an engine that works: {working_engines()}"
    )


def closed() -> str:
    """Why the engine has no route left, and what to use instead."""
    from scraper.engines import working_engines

    return (
        f"Google's Custom Search JSON API closed on {API_CLOSES.isoformat()} (it had refused "
        "new projects before that), and Google Images answers plain HTTP clients with a "
        f"JavaScript wall or a captcha; use an engine that works: {working_engines()}"
    )


def _utc_today() -> date:
    return datetime.now(timezone.utc).date()


# The day the engine believes it is; tests replace it to step past the API's closing date.
today: Callable[[], date] = _utc_today

# Structural markers, the same in every language Google serves.
_CAPTCHA_MARKERS = ("/sorry/index", 'id="captcha-form"', "g-recaptcha", "recaptcha/")
_CONSENT_MARKERS = ("consent.google.", "consent.youtube.")
_JS_MARKERS = ("/httpservice/retry/enablejs", "enablejs?sei=")
# The result containers of a Google results page (web: #rso, #search; images: #islrg).
_RESULT_MARKERS = ('id="rso"', 'id="islrg"', 'id="islmp"')

_IMAGE_URL = re.compile(
    r'\["(https?://[^"\\]+?\.(?:jpe?g|png|webp|gif)[^"\\]*)",(\d+),(\d+)\]', re.I
)
_OU = re.compile(r'"ou":"(https?://[^"]+)"')


def parse_api(body: bytes) -> Results:
    """One Custom Search API answer; [] when the search has no results."""
    data = load_json(NAME, body)
    if not isinstance(data, dict):
        raise LayoutChanged(NAME, "API answer is not a JSON object")
    if "error" in data:
        err = data["error"] if isinstance(data["error"], dict) else {"message": data["error"]}
        code = err.get("code")
        if code in (401, 403):
            raise Blocked(NAME, f"Custom Search API refused the key ({code}: {err.get('message')})")
        if code == 429:
            raise Blocked(NAME, f"Custom Search API quota exhausted: {err.get('message')}")
        raise ApiError(NAME, f"Custom Search API error {code}: {err.get('message')}")
    items = data.get("items")
    if items is None:
        return Results()
    if not isinstance(items, list):
        raise LayoutChanged(NAME, "API 'items' is not a list")
    return results_with(NAME, items, "link", _api_result, "API item")


def _api_result(item: dict) -> Result:
    image = item.get("image") if isinstance(item.get("image"), dict) else {}
    return Result(
        image_url=item["link"],
        page_url=image.get("contextLink"),
        title=item.get("title"),
        width=as_int(image.get("width")),
        height=as_int(image.get("height")),
        thumbnail_url=image.get("thumbnailLink"),
    )


def _has_results(text: str) -> bool:
    if any(m in text for m in _RESULT_MARKERS):
        return True
    return bool(_OU.search(text)) or any(
        "gstatic.com" not in m.group(1) for m in _IMAGE_URL.finditer(text)
    )


def classify_html(body: bytes, final_url: str = "") -> None:
    """Raise the wall Google put up instead of results, if any.

    A results page that also carries a consent dialog or a ``noscript`` redirect (EU visitors
    see both) is a results page, not a wall.
    """
    text = body.decode("utf-8", "replace")
    lowered = text.lower()
    if "/sorry/" in final_url or any(m.lower() in lowered for m in _CAPTCHA_MARKERS):
        raise Captcha(NAME, f"Google answered with a /sorry captcha (unusual traffic); {advice()}")
    if "consent.google." in final_url:
        raise Consent(NAME, f"Google redirected to its cookie-consent page; {advice()}")
    if _has_results(text):
        return
    if any(m in lowered for m in _CONSENT_MARKERS):
        raise Consent(NAME, f"Google answered with a cookie-consent page; {advice()}")
    if any(m in lowered for m in _JS_MARKERS):
        raise JsWall(
            NAME, f"Google answered with a JavaScript-only page (no results in HTML); {advice()}"
        )


def parse_html(body: bytes, final_url: str = "") -> Results:
    """Results embedded in an image-search page, or the typed wall Google answered with."""
    classify_html(body, final_url)
    text = body.decode("utf-8", "replace")
    results = [Result(image_url=json.loads(f'"{m.group(1)}"')) for m in _OU.finditer(text)]
    if not results:
        results = [
            Result(
                image_url=m.group(1),
                height=int(m.group(2)),
                width=int(m.group(3)),
            )
            for m in _IMAGE_URL.finditer(text)
            if "gstatic.com" not in m.group(1)
        ]
    if not results:
        raise LayoutChanged(NAME, f"no image results found in the HTML page; {advice()}")
    return Results(results)


def check_open(day: date | None = None) -> None:
    """Raise Discontinued from the API's closing date on (``day`` defaults to ``today()``)."""
    if (day or today()) >= API_CLOSES:
        raise Discontinued(NAME, closed())


def search(client: Client, query: str, max_n: int, licenses: tuple[str, ...] = ()) -> Results:
    check_open()
    refuse_licenses(NAME, licenses)
    key, cx = os.environ.get(ENV_KEY), os.environ.get(ENV_CX)
    if key and cx:
        root = base_url("google_api", DEFAULT_API_URL)

        def page(offset: int, count: int) -> list[Result]:
            if offset + count > API_MAX_RESULTS:
                return []
            params = {
                "key": key,
                "cx": cx,
                "q": query,
                "searchType": "image",
                "num": count,
                "start": offset + 1,
            }
            try:
                fetched = client.get(
                    f"{root}/customsearch/v1", params=params, raise_for_status=False
                )
            except DownloadError as exc:
                raise EngineError(NAME, f"Custom Search API request failed: {exc}") from None
            return parse_api(fetched.body)

        return collect(NAME, min(max_n, API_MAX_RESULTS), page, API_PAGE_SIZE)
    root = base_url(NAME, DEFAULT_URL)
    try:
        fetched = client.get(
            f"{root}/search", params={"q": query, "tbm": "isch", "hl": "en"}, raise_for_status=False
        )
    except DownloadError as exc:
        raise EngineError(NAME, f"request failed ({exc}); {advice()}") from None
    classify_html(fetched.body, fetched.final_url)
    if fetched.status >= 400:
        raise Blocked(NAME, f"HTTP {fetched.status} from {fetched.final_url}; {advice()}")
    results = parse_html(fetched.body, fetched.final_url)
    return collect(
        NAME, max_n, lambda offset, count: results if offset == 0 else Results(), len(results)
    )
