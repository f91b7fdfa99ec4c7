"""Every engine: pure parsers on recorded-format fixtures, and search against the local server."""

from __future__ import annotations

import pytest

from scraper import engines
from scraper.download import Client
from scraper.engines import baidu, bing, duckduckgo, flickr, google, openverse, wikimedia
from scraper.engines.base import license_code
from scraper.errors import (
    ApiError,
    Blocked,
    Captcha,
    Consent,
    EngineError,
    JsWall,
    LayoutChanged,
    MissingApiKey,
    UnsupportedOption,
)
from tests.localserver import Answer
from tests.scraper.helpers import FIXTURE_HOST, fixture


def paged(param: str, pages: dict[str, bytes], empty: bytes):
    """A route answering ``pages[query[param]]``, else ``empty``."""
    return lambda q: Answer(pages.get(q.get(param, [""])[0], empty))


@pytest.fixture
def client(fast) -> Client:
    return Client(fast)


def point(monkeypatch, server, engine: str) -> None:
    monkeypatch.setenv(f"STYLEBENCH_{engine.upper()}_URL", server.base)


# -- parsers ----------------------------------------------------------------------------------


def test_bing_parse():
    results = bing.parse(fixture("bing_async_page1.html"))
    assert [r.image_url for r in results] == [f"{FIXTURE_HOST}/bing/{i}.jpg" for i in (1, 2, 3)]
    assert results[0].page_url == "https://pages.example.org/art/1"
    assert results[0].title == "Watercolour landscape 1"
    assert bing.parse(fixture("bing_async_empty.html")) == []
    with pytest.raises(LayoutChanged):
        bing.parse(fixture("bing_layout_changed.html"))
    with pytest.raises(Captcha):
        bing.parse(fixture("bing_captcha.html"))


def test_duckduckgo_parse():
    assert (
        duckduckgo.parse_vqd(fixture("ddg_search.html"))
        == "4-140861418913498017361283947204758236512"
    )
    with pytest.raises(LayoutChanged):
        duckduckgo.parse_vqd(fixture("ddg_no_vqd.html"))
    with pytest.raises(Blocked):
        duckduckgo.parse_vqd(fixture("ddg_anomaly.html"))
    results = duckduckgo.parse(fixture("ddg_i_page1.json"))
    assert len(results) == 3 and results[1].page_url == "https://pages.example.org/oil/2"
    assert (results[0].width, results[0].height) == (1200, 900)
    assert duckduckgo.parse(fixture("ddg_i_empty.json")) == []
    with pytest.raises(LayoutChanged):
        duckduckgo.parse(b"<html>oops</html>")


def test_baidu_parse_decodes_obfuscated_urls():
    results = baidu.parse(fixture("baidu_acjson.json"))
    assert [r.image_url for r in results] == [f"{FIXTURE_HOST}/baidu/{i}.jpg" for i in (1, 2, 3)]
    assert results[0].page_url == "https://pages.example.cn/1"
    assert baidu.parse(fixture("baidu_empty.json")) == []
    with pytest.raises(Blocked, match="Forbid spider"):
        baidu.parse(fixture("baidu_antispider.json"))


def test_flickr_parse_maps_licences():
    results = flickr.parse(fixture("flickr_search.json"))
    assert len(results) == 2  # the third has no downloadable size
    assert results[0].license == "CC BY 2.0" and results[1].license == "CC0 1.0"
    assert results[0].creator == "Photographer 1" and results[0].width == 1024
    assert results[0].page_url == "https://www.flickr.com/photos/12341@N01/53001"
    with pytest.raises(MissingApiKey, match="FLICKR_API_KEY"):
        flickr.parse(fixture("flickr_invalid_key.json"))


def test_openverse_parse():
    results = openverse.parse(fixture("openverse_page1.json"))
    assert [r.license for r in results] == ["CC BY 2.0", "CC0 1.0", "CC BY-NC-SA 4.0"]
    assert results[0].creator == "Painter 1" and results[0].license_url.endswith("/by/2.0/")
    assert openverse.parse(fixture("openverse_empty.json")) == []


def test_wikimedia_parse_orders_and_cleans():
    results = wikimedia.parse(fixture("wikimedia_page1.json"))
    assert [r.title for r in results] == [
        "File:Sunflowers 1.jpg",
        "File:Sunflowers 2.jpg",
        "File:Sunflowers 4.jpg",
    ]  # search order; SVG dropped
    assert results[0].creator == "Artist & Co 1" and results[0].license == "CC BY-SA 4.0"
    assert wikimedia.parse(fixture("wikimedia_empty.json")) == []
    with pytest.raises(ApiError, match="badvalue"):
        wikimedia.parse(fixture("wikimedia_error.json"))


def test_google_parsers():
    assert len(google.parse_api(fixture("google_api_page1.json"))) == 3
    assert google.parse_api(fixture("google_api_empty.json")) == []
    with pytest.raises(Blocked):
        google.parse_api(fixture("google_api_error.json"))
    for name, error in (
        ("google_js_wall.html", JsWall),
        ("google_consent.html", Consent),
        ("google_sorry.html", Captcha),
        ("google_changed.html", LayoutChanged),
    ):
        with pytest.raises(error) as info:
            google.parse_html(fixture(name))
        if error is not LayoutChanged:
            assert "bing" in str(info.value) and "GOOGLE_API_KEY" in str(info.value)
    urls = [r.image_url for r in google.parse_html(fixture("google_html_results.html"))]
    assert urls == [f"{FIXTURE_HOST}/google/h1.jpg", f"{FIXTURE_HOST}/google/h2.png"]


def test_license_codes():
    assert license_code("CC BY-SA 4.0") == "by-sa"
    assert license_code("CC BY-NC-ND 2.0") == "by-nc-nd"
    assert license_code("CC0 1.0") == "cc0"
    assert license_code("Public domain") == "pdm"
    assert license_code("All Rights Reserved") is None and license_code(None) is None


# -- search against the local server ----------------------------------------------------------


def test_bing_search_pages_until_empty(server, monkeypatch, client):
    point(monkeypatch, server, "bing")
    server.routes["/images/async"] = paged(
        "first",
        {"1": fixture("bing_async_page1.html"), "36": fixture("bing_async_page2.html")},
        fixture("bing_async_empty.html"),
    )
    results = engines.search("bing", client, "watercolour", 10)
    assert [r.rank for r in results] == [1, 2, 3, 4, 5]
    assert results[4].image_url == f"{FIXTURE_HOST}/bing/5.jpg"
    assert server.hits["/images/async"] == 3
    assert server.queries["/images/async"][0]["q"] == ["watercolour"]
    assert len(engines.search("bing", client, "watercolour", 2)) == 2


def test_429_then_success(server, monkeypatch, client):
    point(monkeypatch, server, "bing")
    server.routes["/images/async"] = [
        Answer(b"", 429, {"Retry-After": "0"}),
        Answer(fixture("bing_async_page1.html")),
        Answer(fixture("bing_async_empty.html")),
    ]
    assert len(engines.search("bing", client, "q", 10)) == 3


def test_blocked_engine_is_an_error_not_empty(server, monkeypatch, client):
    point(monkeypatch, server, "bing")
    server.routes["/images/async"] = Answer(b"Forbidden", 403)
    with pytest.raises(Blocked):
        engines.search("bing", client, "q", 10)
    server.routes["/images/async"] = Answer(b"", 429, {"Retry-After": "0"})
    with pytest.raises(Blocked, match="429"):
        engines.search("bing", client, "q", 10)
    server.routes["/images/async"] = Answer(fixture("bing_layout_changed.html"))
    with pytest.raises(LayoutChanged):
        engines.search("bing", client, "q", 10)


def test_duckduckgo_search(server, monkeypatch, client):
    point(monkeypatch, server, "duckduckgo")
    server.routes["/"] = Answer(fixture("ddg_search.html"))
    server.routes["/i.js"] = paged(
        "s",
        {"0": fixture("ddg_i_page1.json"), "100": fixture("ddg_i_page2.json")},
        fixture("ddg_i_empty.json"),
    )
    results = engines.search("duckduckgo", client, "oil", 50)
    assert len(results) == 5
    assert server.queries["/i.js"][0]["vqd"] == ["4-140861418913498017361283947204758236512"]
    server.routes["/"] = Answer(fixture("ddg_anomaly.html"))
    with pytest.raises(Blocked):
        engines.search("duckduckgo", client, "oil", 50)


def test_baidu_search(server, monkeypatch, client):
    point(monkeypatch, server, "baidu")
    server.routes["/search/acjson"] = paged(
        "pn", {"0": fixture("baidu_acjson.json")}, fixture("baidu_empty.json")
    )
    assert len(engines.search("baidu", client, "中国画", 10)) == 3
    assert server.queries["/search/acjson"][0]["word"] == ["中国画"]
    server.routes["/search/acjson"] = Answer(fixture("baidu_antispider.json"))
    with pytest.raises(Blocked):
        engines.search("baidu", client, "中国画", 10)


def test_flickr_needs_key_and_filters_licences(server, monkeypatch, client):
    point(monkeypatch, server, "flickr")
    server.routes["/services/rest/"] = Answer(fixture("flickr_search.json"))
    with pytest.raises(MissingApiKey, match="FLICKR_API_KEY"):
        engines.search("flickr", client, "canal", 10)
    assert server.hits["/services/rest/"] == 0
    monkeypatch.setenv("FLICKR_API_KEY", "k")
    assert len(engines.search("flickr", client, "canal", 10)) == 2
    only_cc0 = engines.search("flickr", client, "canal", 10, ("cc0",))
    assert [r.license for r in only_cc0] == ["CC0 1.0"]
    assert server.queries["/services/rest/"][-1]["license"] == ["9"]
    assert server.queries["/services/rest/"][-1]["api_key"] == ["k"]


def test_openverse_search_with_licence(server, monkeypatch, client):
    point(monkeypatch, server, "openverse")
    server.routes["/v1/images/"] = paged(
        "page", {"1": fixture("openverse_page1.json")}, fixture("openverse_empty.json")
    )
    results = engines.search("openverse", client, "still life", 10, ("by", "cc0"))
    assert [license_code(r.license) for r in results] == ["by", "cc0"]
    assert server.queries["/v1/images/"][0]["license"] == ["by,cc0"]
    server.routes["/v1/images/"] = Answer(fixture("openverse_empty.json"))
    assert engines.search("openverse", client, "nothing", 10) == []


def test_wikimedia_search(server, monkeypatch, client):
    point(monkeypatch, server, "wikimedia")
    monkeypatch.setenv("STYLEBENCH_CONTACT", "ops@example.org")
    server.routes["/w/api.php"] = paged(
        "gsroffset", {"0": fixture("wikimedia_page1.json")}, fixture("wikimedia_empty.json")
    )
    results = engines.search("wikimedia", client, "sunflowers", 10)
    assert len(results) == 3 and server.queries["/w/api.php"][0]["gsrnamespace"] == ["6"]
    assert [
        license_code(r.license)
        for r in engines.search("wikimedia", client, "sunflowers", 10, ("pdm",))
    ] == ["pdm"]
    server.routes["/w/api.php"] = Answer(fixture("wikimedia_empty.json"))
    assert engines.search("wikimedia", client, "zzqqxx", 10) == []  # a real empty answer


def test_google_api_route(server, monkeypatch, client):
    monkeypatch.setenv("STYLEBENCH_GOOGLE_API_URL", server.base)
    monkeypatch.setenv("GOOGLE_API_KEY", "key")
    monkeypatch.setenv("GOOGLE_CSE_ID", "cx")
    server.routes["/customsearch/v1"] = paged(
        "start",
        {"1": fixture("google_api_page1.json"), "11": fixture("google_api_page2.json")},
        fixture("google_api_empty.json"),
    )
    results = engines.search("google", client, "ukiyo-e", 20)
    assert len(results) == 5 and results[0].page_url == "https://museum.example.org/collection/1"
    assert server.queries["/customsearch/v1"][0]["searchType"] == ["image"]
    server.routes["/customsearch/v1"] = Answer(fixture("google_api_error.json"), 403)
    with pytest.raises(Blocked):
        engines.search("google", client, "ukiyo-e", 20)


@pytest.mark.parametrize(
    "page, error",
    [
        ("google_js_wall.html", JsWall),
        ("google_consent.html", Consent),
        ("google_changed.html", LayoutChanged),
    ],
)
def test_google_html_walls(server, monkeypatch, client, page, error):
    point(monkeypatch, server, "google")
    server.routes["/search"] = Answer(fixture(page))
    with pytest.raises(error) as info:
        engines.search("google", client, "ukiyo-e", 20)
    assert "duckduckgo" in str(info.value)


def test_google_sorry_redirect(server, monkeypatch, client):
    point(monkeypatch, server, "google")
    server.routes["/search"] = Answer(status=302, headers={"Location": "/sorry/index?continue=x"})
    server.routes["/sorry/index"] = Answer(fixture("google_sorry.html"), 429)
    with pytest.raises(Captcha, match="/sorry"):
        engines.search("google", client, "ukiyo-e", 20)


def test_google_html_results(server, monkeypatch, client):
    point(monkeypatch, server, "google")
    server.routes["/search"] = Answer(fixture("google_html_results.html"))
    assert len(engines.search("google", client, "ukiyo-e", 20)) == 2


def test_bad_arguments_list_options(client):
    with pytest.raises(ValueError, match="choose from: google, bing"):
        engines.search("altavista", client, "q", 5)
    with pytest.raises(ValueError, match="choose from: cc0"):
        engines.search("openverse", client, "q", 5, ("gpl",))
    with pytest.raises(UnsupportedOption, match="openverse"):
        engines.search("bing", client, "q", 5, ("cc0",))
    with pytest.raises(ValueError, match="query is empty"):
        engines.search("bing", client, "  ", 5)


def test_unreachable_engine_is_an_error(monkeypatch, client):
    monkeypatch.setenv("STYLEBENCH_OPENVERSE_URL", "http://127.0.0.1:9")  # discard port: refused
    with pytest.raises(EngineError, match="reachable"):
        engines.search("openverse", client, "q", 5)


def test_bing_result_mentioning_captcha_is_still_a_result():
    page = fixture("bing_async_page1.html").replace(b"Watercolour landscape 1", b"captcha art")
    assert bing.parse(page)[0].title == "captcha art"


# engine -> (env var pointing at the server, results path, first page, later pages)
EVERY_ENGINE = {
    "bing": ("BING", "/images/async", "bing_async_page1.html", "bing_async_empty.html"),
    "duckduckgo": ("DUCKDUCKGO", "/i.js", "ddg_i_page1.json", "ddg_i_empty.json"),
    "baidu": ("BAIDU", "/search/acjson", "baidu_acjson.json", "baidu_empty.json"),
    "flickr": ("FLICKR", "/services/rest/", "flickr_search.json", "flickr_search.json"),
    "openverse": ("OPENVERSE", "/v1/images/", "openverse_page1.json", "openverse_empty.json"),
    "wikimedia": ("WIKIMEDIA", "/w/api.php", "wikimedia_page1.json", "wikimedia_empty.json"),
    "google": ("GOOGLE_API", "/customsearch/v1", "google_api_page1.json", "google_api_empty.json"),
}


def _every_engine_setup(server, monkeypatch, engine: str) -> tuple[str, str, str]:
    env, path, first, later = EVERY_ENGINE[engine]
    monkeypatch.setenv(f"STYLEBENCH_{env}_URL", server.base)
    monkeypatch.setenv("FLICKR_API_KEY", "k")
    monkeypatch.setenv("GOOGLE_API_KEY", "k")
    monkeypatch.setenv("GOOGLE_CSE_ID", "cx")
    monkeypatch.setenv("STYLEBENCH_CONTACT", "ops@example.org")
    server.routes["/"] = Answer(fixture("ddg_search.html"))  # duckduckgo's token page
    return path, first, later


@pytest.mark.parametrize("engine", sorted(EVERY_ENGINE))
def test_every_engine_429_then_success(server, monkeypatch, client, engine):
    path, first, later = _every_engine_setup(server, monkeypatch, engine)
    server.routes[path] = [
        Answer(b"", 429, {"Retry-After": "0"}),
        Answer(fixture(first)),
        Answer(fixture(later)),
    ]
    results = engines.search(engine, client, "q", 50)
    assert results and all(r.image_url.startswith(FIXTURE_HOST) for r in results)
    assert server.hits[path] >= 2


@pytest.mark.parametrize("engine", sorted(EVERY_ENGINE))
def test_every_engine_reports_a_changed_layout(server, monkeypatch, client, engine):
    path, _, _ = _every_engine_setup(server, monkeypatch, engine)
    server.routes[path] = Answer(
        b"<html><body><div class='new-design'><p>x</p></div></body></html>"
    )
    with pytest.raises(LayoutChanged):
        engines.search(engine, client, "q", 50)


HOSTILE = {
    "empty": b"",
    "null": b"null",
    "list": b"[1, 2, 3]",
    "wrong types": b'{"results": "x", "data": 7, "items": {}, "photos": [], "query": []}',
    "items not objects": b'{"results": [1, "a"], "data": [1, null], "items": [2], '
    b'"photos": {"photo": [3]}, "query": {"pages": {"1": 4}}, "objectIDs": [{}]}',
    "html": b"<html><body><p>maintenance</p></body></html>",
    "binary": bytes(range(256)) * 4,
    "deep": b"[" * 50_000 + b"]" * 50_000,
}


def _parsers():
    from scraper.engines import ENGINES

    for name, module in ENGINES.items():
        if name == "google":
            yield "google-api", google.parse_api
            yield "google-html", google.parse_html
            continue
        yield name, module.parse
        if name == "duckduckgo":
            yield "duckduckgo-vqd", duckduckgo.parse_vqd
        if name == "met":
            yield "met-search", module.parse_search


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_every_parser_answers_hostile_bodies_with_results_or_a_typed_error(case, probe):
    """No parser crashes: it returns (counted) results or raises a ScraperError."""
    from scraper.errors import ScraperError

    for name, parse in _parsers():
        try:
            got = parse(HOSTILE[case])
        except ScraperError as exc:
            probe.record(f"parser {name} on {case}", rejected=True, reason=type(exc).__name__)
            continue
        if name in ("duckduckgo-vqd", "met-search"):  # a token, a list of object ids
            assert (
                got[:1].isdigit() if isinstance(got, str) else all(isinstance(i, int) for i in got)
            ), (name, case, got)
            probe.record(f"parser {name} on {case}", rejected=not got, reason="no ids")
            continue
        assert isinstance(got, list) and isinstance(got.dropped, dict), (name, case)
        assert all(r.image_url.startswith(("http://", "https://")) for r in got), (name, case)
        probe.record(
            f"parser {name} on {case}",
            rejected=not got,
            reason=", ".join(got.dropped) or "no results",
        )
