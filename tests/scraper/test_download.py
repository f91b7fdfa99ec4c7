"""The hardened client against a local server: guard, redirects, retries, caps, timeouts."""

from __future__ import annotations

import dataclasses
import gzip
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from scraper.download import Client, DownloadConfig, robots_forbid_ai
from scraper.errors import DownloadError
from scraper.ratelimit import HostLimiter, parse_retry_after
from scraper.urlcheck import check_url, forbidden_address
from tests.localserver import Answer
from tests.scraper.helpers import jpeg


def test_forbidden_addresses():
    for address in (
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "0.0.0.0",
        "100.64.0.1",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "224.0.0.1",
    ):
        assert forbidden_address(address), address
    for address in ("93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"):
        assert not forbidden_address(address), address


def test_guard_refuses_loopback_without_connecting(server, monkeypatch):
    monkeypatch.delenv("STYLEBENCH_ALLOW_PRIVATE")
    server.routes["/a.jpg"] = Answer(jpeg("coffee"))
    client = Client(DownloadConfig(per_host_rps=None))
    assert client.config.allow_private is False
    with pytest.raises(DownloadError) as info:
        client.get(server.url("/a.jpg"))
    assert info.value.reason == "private-address"
    assert "STYLEBENCH_ALLOW_PRIVATE" in str(info.value)
    assert server.hits["/a.jpg"] == 0
    # names and odd spellings are resolved before the check: all of these are loopback
    for host in ("localhost", "2130706433", "0x7f000001", "[::ffff:127.0.0.1]"):
        with pytest.raises(DownloadError, match="private-address"):
            client.get(f"http://{host}:{server.port}/a.jpg")
    assert server.hits["/a.jpg"] == 0


def test_guard_allows_private_with_env(server):
    server.routes["/a.jpg"] = Answer(jpeg("coffee"))
    assert Client(DownloadConfig(per_host_rps=None)).get(server.url("/a.jpg")).status == 200


@pytest.mark.parametrize(
    "target",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://localhost:{port}/a.jpg",
        "http://127.0.0.2:{port}/a.jpg",
    ],
)
def test_redirect_to_private_address_refused(server, monkeypatch, target):
    monkeypatch.delenv("STYLEBENCH_ALLOW_PRIVATE")
    # only the literal host 127.0.0.1 is exempt: every redirect hop is checked again
    config = DownloadConfig(
        per_host_rps=None, allow_hosts=("127.0.0.1",), retries=0, connect_timeout=0.5
    )
    server.routes["/r"] = Answer(status=302, headers={"Location": target.format(port=server.port)})
    server.routes["/a.jpg"] = Answer(jpeg("coffee"))
    with pytest.raises(DownloadError) as info:
        Client(config).get(server.url("/r"))
    assert info.value.reason == "private-address"
    assert server.hits["/r"] == 1 and server.hits["/a.jpg"] == 0
    # "private-address" comes from the guard, before any connection: a connection attempt to
    # 169.254.169.254 would have ended as "timeout" or "connection" instead


def test_check_url_rejects_other_schemes(fast):
    for url in ("file:///etc/passwd", "ftp://example.com/a.jpg", "gopher://x", "http:///nohost"):
        with pytest.raises(DownloadError, match="bad-url"):
            check_url(url, fast)


def test_redirects_followed_by_hand(server, fast):
    server.routes["/r1"] = Answer(status=301, headers={"Location": "/r2"})
    server.routes["/r2"] = Answer(status=307, headers={"Location": server.url("/final")})
    server.routes["/final"] = Answer(b"done")
    got = Client(fast).get(server.url("/r1"))
    assert (got.status, got.body, got.final_url) == (200, b"done", server.url("/final"))


def test_redirect_loop_and_too_many(server, fast):
    server.routes["/loop1"] = Answer(status=302, headers={"Location": "/loop2"})
    server.routes["/loop2"] = Answer(status=302, headers={"Location": "/loop1"})
    with pytest.raises(DownloadError, match="redirect-loop"):
        Client(fast).get(server.url("/loop1"))
    for i in range(10):
        server.routes[f"/c{i}"] = Answer(status=302, headers={"Location": f"/c{i + 1}"})
    with pytest.raises(DownloadError, match="too-many-redirects"):
        Client(dataclasses.replace(fast, max_redirects=3)).get(server.url("/c0"))
    assert server.hits["/c3"] == 1 and server.hits["/c4"] == 0


def test_retry_after_honoured_on_429_then_success(server, fast):
    server.routes["/busy"] = [Answer(b"slow down", 429, {"Retry-After": "1"}), Answer(b"ok")]
    started = time.monotonic()
    got = Client(fast).get(server.url("/busy"))
    assert got.body == b"ok" and server.hits["/busy"] == 2
    assert time.monotonic() - started >= 0.9  # waited as told, not the 10 ms backoff


def test_503_retried_then_given_up(server, fast):
    server.routes["/down"] = Answer(b"", 503)
    with pytest.raises(DownloadError, match="http-503"):
        Client(fast).get(server.url("/down"))
    assert server.hits["/down"] == fast.retries + 1
    server.routes["/gone"] = Answer(b"", 404)
    with pytest.raises(DownloadError, match="http-404"):
        Client(fast).get(server.url("/gone"))
    assert server.hits["/gone"] == 1  # a 404 is not retried


def test_long_retry_after_fails_instead_of_sleeping(server, fast):
    server.routes["/later"] = Answer(b"", 503, {"Retry-After": "3600"})
    with pytest.raises(DownloadError, match="rate-limited"):
        Client(fast).get(server.url("/later"))


def test_parse_retry_after():
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now) == 30
    assert parse_retry_after(format_datetime(now - timedelta(seconds=30), usegmt=True), now) == 0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_byte_cap_declared_and_streamed(server, fast):
    config = dataclasses.replace(fast, max_bytes=1000)
    server.routes["/big"] = Answer(b"x" * 5000)
    server.routes["/big-chunked"] = Answer(b"x" * 5000, chunked=True)
    for path in ("/big", "/big-chunked"):
        with pytest.raises(DownloadError, match="too-large"):
            Client(config).get(server.url(path))


def test_gzip_bomb_stops_at_the_cap(server, fast):
    bomb = gzip.compress(b"\0" * 50_000_000, compresslevel=9)  # 50 MB inflating from ~50 KB
    server.routes["/bomb"] = Answer(bomb, headers={"Content-Encoding": "gzip"})
    with pytest.raises(DownloadError, match="too-large"):
        Client(dataclasses.replace(fast, max_bytes=1_000_000)).get(server.url("/bomb"))
    server.routes["/small"] = Answer(gzip.compress(b"fine"), headers={"Content-Encoding": "gzip"})
    assert Client(fast).get(server.url("/small")).body == b"fine"


@pytest.mark.slow
def test_slow_server_times_out(server, fast):
    server.routes["/drip"] = Answer(b"x" * 100, drip=0.1)  # 10 s in all, 100 ms per byte
    # each byte comes within the read timeout: the 2 s deadline stops the body, not the end
    with pytest.raises(DownloadError, match="timeout: body not read within 2"):
        Client(dataclasses.replace(fast, retries=0)).get(server.url("/drip"))
    server.routes["/stall"] = Answer(b"late", delay=1.5)
    with pytest.raises(DownloadError, match="timeout"):
        Client(dataclasses.replace(fast, retries=0)).get(server.url("/stall"))


def test_noai_robots_tag(server, fast):
    assert robots_forbid_ai({"x-robots-tag": "noai, noimageai"})
    assert robots_forbid_ai({"x-robots-tag": "otherbot: noimageai"})
    assert not robots_forbid_ai({"x-robots-tag": "noindex, nofollow"})
    server.routes["/noai.jpg"] = Answer(jpeg("coffee"), headers={"X-Robots-Tag": "noai"})
    with pytest.raises(DownloadError, match="noai"):
        Client(fast).get(server.url("/noai.jpg"), image=True)


def test_identifying_user_agent(server, fast):
    server.routes["/ua"] = Answer(b"ok")
    Client(fast).get(server.url("/ua"))
    assert server.headers["/ua"]["User-Agent"].startswith("stylebench/")


def test_host_limiter_spaces_requests():
    limiter = HostLimiter(rps=20)  # 50 ms apart
    started = time.monotonic()
    slept = [limiter.wait("example.com") for _ in range(5)]
    assert slept[0] == 0.0 and all(s > 0 for s in slept[1:])
    assert time.monotonic() - started >= 0.19  # four gaps of 50 ms
    assert limiter.wait("other.example.com") == 0.0  # another host is not held up
    assert HostLimiter(rps=None).wait("example.com") == 0.0


def test_config_validation_names_the_field():
    with pytest.raises(ValueError, match="read_timeout"):
        DownloadConfig(read_timeout=0)
    with pytest.raises(ValueError, match="per_host_rps"):
        DownloadConfig(per_host_rps=-1)
