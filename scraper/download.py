"""The hardened HTTP client every engine and image download goes through.

Built on ``requests`` directly rather than icrawler's downloader: icrawler follows
redirects inside requests (so no hop can be checked against the address guard),
has no byte cap, no Retry-After handling and no per-host rate limit, and writes
files itself instead of handing bytes back. What this module does, per request:

- refuses non-http(s) URLs and hosts that resolve to private, loopback,
  link-local or otherwise non-global addresses (unless ``STYLEBENCH_ALLOW_PRIVATE=1``
  or the host is listed in ``allow_hosts``), before connecting and again after
  every redirect, which is followed by hand up to ``max_redirects`` hops;
- waits for its turn on a per-host rate limit, sends an identifying User-Agent,
  uses separate connect and read timeouts plus a total deadline (a server that
  drips bytes cannot hold a worker forever);
- streams the body and stops at ``max_bytes`` (counted after decompression, read in small
  pieces when the body is compressed);
- retries connection errors, 429 and 5xx with exponential backoff, honouring
  ``Retry-After`` (seconds or an HTTP date) up to ``max_retry_after``;
- for images, honours ``X-Robots-Tag: noai`` / ``noimageai``.

The URL is read the way the connection will read it: an authority with a backslash,
whitespace or a control character is refused, and ``urlsplit`` and urllib3's
``parse_url`` must name the same host and port. IPv6 forms that carry an IPv4 address
(mapped, SIIT, compatible, NAT64, 6to4, Teredo) are judged by that address too. The host
is resolved once; the connection goes to the address that was checked (Host header and
TLS verification keep the name), so a DNS answer that changes in between cannot reach
an internal service.
"""

from __future__ import annotations

import email.utils
import ipaddress
import os
import random
import re
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.util import parse_url

from scraper.errors import DownloadError
from scraper.sources import read_regular_file
from stylebench import __version__

ENV_ALLOW_PRIVATE = "STYLEBENCH_ALLOW_PRIVATE"
ENV_USER_AGENT = "STYLEBENCH_USER_AGENT"
USER_AGENT = f"stylebench/{__version__} (research dataset builder for neural style transfer)"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
NOAI_TOKENS = frozenset({"noai", "noimageai"})


def user_agent_from_env() -> str:
    """``$STYLEBENCH_USER_AGENT`` (add contact details for site operators), else the default."""
    return os.environ.get(ENV_USER_AGENT) or USER_AGENT


def allow_private_from_env() -> bool:
    return os.environ.get(ENV_ALLOW_PRIVATE, "").strip().lower() in ("1", "true", "yes")


@dataclass(frozen=True)
class DownloadConfig:
    """How politely and defensively to fetch. Validated on construction."""

    connect_timeout: float = 5.0
    read_timeout: float = 15.0
    total_timeout: float = 60.0  # whole request including the body, per attempt
    max_bytes: int = 25 * 1024 * 1024
    retries: int = 3  # attempts after the first
    backoff_base: float = 0.5  # seconds; doubled each retry, with jitter
    backoff_max: float = 30.0
    max_retry_after: float = 60.0  # a longer Retry-After fails the URL instead of sleeping
    per_host_rps: float | None = 4.0  # requests per second per host; None: no limit
    max_redirects: int = 5
    workers: int = 16
    user_agent: str = field(default_factory=user_agent_from_env)
    allow_private: bool = field(default_factory=allow_private_from_env)
    allow_hosts: tuple[str, ...] = ()  # hostnames exempt from the address guard

    def __post_init__(self) -> None:
        positive = (
            "connect_timeout",
            "read_timeout",
            "total_timeout",
            "backoff_max",
            "max_retry_after",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"DownloadConfig.{name} must be > 0, got {getattr(self, name)}")
        if self.max_bytes < 1:
            raise ValueError(f"DownloadConfig.max_bytes must be >= 1, got {self.max_bytes}")
        if self.retries < 0 or self.max_redirects < 0 or self.backoff_base < 0:
            raise ValueError("DownloadConfig.retries, max_redirects and backoff_base must be >= 0")
        if self.per_host_rps is not None and self.per_host_rps <= 0:
            raise ValueError("DownloadConfig.per_host_rps must be > 0, or None for no limit")
        if self.workers < 1:
            raise ValueError(f"DownloadConfig.workers must be >= 1, got {self.workers}")


@dataclass(frozen=True)
class Fetched:
    """One HTTP answer, body already read (and capped)."""

    url: str  # as requested
    final_url: str  # after redirects
    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


# -- the address guard --------------------------------------------------------------------


# Prefixes whose last 32 bits (or, for 6to4, bits 16-48) are an IPv4 address.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")  # RFC 8215: local use only
_SIIT = ipaddress.IPv6Network("::ffff:0:0:0/96")
_COMPATIBLE = ipaddress.IPv6Network("::/96")
# Characters that make parsers disagree about where the host ends.
_BAD_AUTHORITY = re.compile(r"[\\\s\x00-\x1f\x7f]")
_BAD_URL = re.compile(r"[\x00-\x1f\x7f]")


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (mapped, SIIT, compatible, NAT64, 6to4, Teredo)."""
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    found: list[ipaddress.IPv4Address] = []
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if ip in _SIIT or ip in _NAT64 or ip in _COMPATIBLE:
        found.append(low32)
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    return found


def _forbidden_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return (
        not ip.is_global
        or ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_multicast
        or ip.is_unspecified
    )


def forbidden_address(address: str) -> bool:
    """True for any address that is not globally routable (private, loopback, link-local...).

    An IPv6 address is also forbidden when an IPv4 address it embeds is; a translated
    address (IPv4-mapped, SIIT, NAT64 64:ff9b::/96) is judged by its IPv4 address alone;
    the IPv4-compatible ::/96 and the local-use NAT64 prefix 64:ff9b:1::/48 are forbidden.
    """
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _NAT64_LOCAL:
            return True
        embedded = embedded_ipv4(ip)
        if any(_forbidden_ip(v4) for v4 in embedded):
            return True
        if ip.ipv4_mapped is not None or ip in _SIIT or ip in _NAT64:
            # translation prefixes (inside ::/8, which ipaddress calls reserved): the
            # IPv4 address is the destination
            return False
    return _forbidden_ip(ip)


def _host_key(host: str) -> str:
    """A host as the connection pool spells it: no brackets, lower case, no trailing dot."""
    return host.strip("[]").lower().rstrip(".")


def _idna(host: str) -> str:
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


@dataclass(frozen=True)
class Target:
    """A checked URL: the host and port the connection will use, and the address to dial."""

    host: str
    port: int
    address: str


def parse_target(url: str) -> tuple[str, int]:
    """The (host, port) ``url`` names, refusing anything two URL parsers read differently."""
    if _BAD_URL.search(url):
        raise DownloadError("bad-url", f"control character in {url!r}")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise DownloadError(
            "bad-url", f"unsupported scheme: only http and https URLs are fetched, not {url!r}"
        )
    if _BAD_AUTHORITY.search(parts.netloc):
        raise DownloadError(
            "bad-url", f"backslash, whitespace or control character in the host part of {url!r}"
        )
    try:
        split_port = parts.port
        parsed = parse_url(url)
    except (ValueError, urllib3.exceptions.LocationParseError) as exc:
        raise DownloadError("bad-url", f"cannot parse {url!r}: {exc}") from None
    host = parts.hostname
    if not host or not parsed.host:
        raise DownloadError("bad-url", f"no host in {url!r}")
    default = 443 if parts.scheme == "https" else 80
    if _host_key(_idna(host)) != _host_key(_idna(parsed.host)) or (split_port or default) != (
        parsed.port or default
    ):
        raise DownloadError(
            "bad-url", f"ambiguous URL {url!r}: parsers disagree on its host; refused"
        )
    return _host_key(_idna(parsed.host)), parsed.port or default


def check_url(url: str, config: DownloadConfig) -> Target:
    """The vetted target of ``url``; DownloadError unless it is http(s) on a host we may contact.

    The host is resolved here, once: the connection dials ``Target.address``.
    """
    host, port = parse_target(url)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError) as exc:
        raise DownloadError("dns", f"cannot resolve {host}: {exc}") from None
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise DownloadError("dns", f"cannot resolve {host}: no address")
    if not (config.allow_private or host in {_host_key(h) for h in config.allow_hosts}):
        for address in addresses:
            if forbidden_address(address):
                raise DownloadError(
                    "private-address",
                    f"{host} resolves to {address}, a private, loopback, link-local or "
                    f"reserved address; set {ENV_ALLOW_PRIVATE}=1 to allow it "
                    "(for local mirrors and tests)",
                )
    return Target(host, port, addresses[0])


class _Pinned:
    """A connection that dials ``pinned_address`` while keeping its host name for the rest."""

    pinned_address: str | None = None

    def _new_conn(self):
        if self.pinned_address is None:
            raise urllib3.exceptions.NewConnectionError(
                self, f"no vetted address for {self.host}:{self.port}; refused"
            )
        name = self._dns_host
        self._dns_host = self.pinned_address  # what urllib3 dials; the Host header reads host
        try:
            return super()._new_conn()
        finally:
            self._dns_host = name


class _PinnedHTTPConnection(_Pinned, HTTPConnection):
    pass


class _PinnedHTTPSConnection(_Pinned, HTTPSConnection):
    pass


class PinnedAdapter(HTTPAdapter):
    """Connects to the address ``check_url`` vetted for a (host, port), never a fresh lookup.

    Only the socket goes to the pinned address: the Host header, TLS SNI and certificate
    checks keep the host name. A connection for a host with no pin is refused.
    """

    def __init__(self) -> None:
        self.pins: dict[tuple[str, int], str] = {}
        super().__init__()

    def pin(self, target: Target) -> None:
        self.pins[(target.host, target.port)] = target.address

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        pins = self.pins

        def pinned(pool: urllib3.HTTPConnectionPool, default: int):
            conn = super(type(pool), pool)._new_conn()
            conn.pinned_address = pins.get((_host_key(pool.host), pool.port or default))
            return conn

        class Pool(urllib3.HTTPConnectionPool):
            ConnectionCls = _PinnedHTTPConnection

            def _new_conn(self):
                return pinned(self, 80)

        class TlsPool(urllib3.HTTPSConnectionPool):
            ConnectionCls = _PinnedHTTPSConnection

            def _new_conn(self):
                return pinned(self, 443)

        self.poolmanager.pool_classes_by_scheme = {"http": Pool, "https": TlsPool}


# -- politeness ---------------------------------------------------------------------------


class HostLimiter:
    """Spaces requests to one host at least ``1 / rps`` seconds apart, across threads."""

    def __init__(self, rps: float | None):
        self.interval = 0.0 if rps is None else 1.0 / rps
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()

    def wait(self, host: str) -> float:
        """Sleep until ``host``'s next slot; return the seconds slept."""
        if self.interval <= 0:
            return 0.0
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next.get(host, now))
            self._next[host] = slot + self.interval
        if slot > now:
            time.sleep(slot - now)
        return max(0.0, slot - now)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


def backoff_delay(attempt: int, config: DownloadConfig, retry_after: float | None) -> float:
    """The pause before retry ``attempt`` (1-based): Retry-After if given, else 2^n backoff."""
    if retry_after is not None:
        if retry_after > config.max_retry_after:
            raise DownloadError(
                "rate-limited",
                f"server asked to wait {retry_after:.0f} s (> {config.max_retry_after:.0f} s)",
            )
        return retry_after
    base = config.backoff_base * (2 ** (attempt - 1))
    return min(config.backoff_max, base * (1 + 0.25 * random.random()))


def robots_forbid_ai(headers: Mapping[str, str]) -> bool:
    """True when X-Robots-Tag carries ``noai`` or ``noimageai`` (for any or no user agent)."""
    value = headers.get("x-robots-tag", "").lower()
    tokens = {t.strip() for t in re.split(r"[,:\s]+", value)}
    return bool(tokens & NOAI_TOKENS)


# -- the client ---------------------------------------------------------------------------


class Client:
    """A thread-safe HTTP client: one requests session per thread, one rate limiter shared."""

    def __init__(self, config: DownloadConfig | None = None):
        self.config = config or DownloadConfig()
        self.limiter = HostLimiter(self.config.per_host_rps)
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers["User-Agent"] = self.config.user_agent
            session.trust_env = False  # no proxy from the environment: the guard checks the host
            adapter = PinnedAdapter()
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            self._local.session = session
            self._local.adapter = adapter
        return session

    def get(
        self,
        url: str,
        *,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
        raise_for_status: bool = True,
        image: bool = False,
    ) -> Fetched:
        """GET ``url`` with retries; raise DownloadError with a short reason on failure.

        With ``raise_for_status=False`` a final 4xx/5xx answer is returned, not raised
        (engines read block and captcha pages). ``image=True`` honours noai robots tags.
        """
        cfg = self.config
        if params:
            url = requests.Request("GET", url, params=params).prepare().url or url
        attempt = 0
        while True:
            try:
                fetched = self._get_following_redirects(url, headers)
            except DownloadError as exc:
                if exc.reason not in ("timeout", "connection") or attempt >= cfg.retries:
                    raise
                attempt += 1
                time.sleep(backoff_delay(attempt, cfg, None))
                continue
            if fetched.status in RETRY_STATUSES and attempt < cfg.retries:
                attempt += 1
                retry_after = parse_retry_after(fetched.headers.get("retry-after"))
                time.sleep(backoff_delay(attempt, cfg, retry_after))
                continue
            break
        if fetched.status >= 400 and raise_for_status:
            raise DownloadError(f"http-{fetched.status}", fetched.final_url)
        if image and fetched.status < 400 and robots_forbid_ai(fetched.headers):
            raise DownloadError("noai", "X-Robots-Tag forbids use for AI")
        return fetched

    def _get_following_redirects(self, url: str, headers: Mapping[str, str] | None) -> Fetched:
        seen = {url}
        current = url
        for _hop in range(self.config.max_redirects + 1):
            target = check_url(current, self.config)
            self._session()
            self._local.adapter.pin(target)
            status, response_headers, body, location = self._get_once(current, headers)
            if status in REDIRECT_STATUSES and location:
                if _BAD_URL.search(location):  # urljoin would drop tabs and newlines
                    raise DownloadError(
                        "bad-url", f"{current} redirects to {location!r}, with control characters"
                    )
                nxt = urljoin(current, location)
                if nxt in seen:
                    raise DownloadError("redirect-loop", f"{current} redirects back to {nxt}")
                seen.add(nxt)
                current = nxt
                continue
            return Fetched(url, current, status, response_headers, body)
        raise DownloadError(
            "too-many-redirects", f"more than {self.config.max_redirects} from {url}"
        )

    def _get_once(
        self, url: str, headers: Mapping[str, str] | None
    ) -> tuple[int, Mapping[str, str], bytes, str | None]:
        cfg = self.config
        self.limiter.wait(urlsplit(url).hostname or "")
        deadline = time.monotonic() + cfg.total_timeout
        try:
            response = self._session().get(
                url,
                headers=dict(headers or {}),
                stream=True,
                allow_redirects=False,
                timeout=(cfg.connect_timeout, cfg.read_timeout),
            )
        except requests.Timeout as exc:
            raise DownloadError("timeout", str(exc)) from None
        except requests.RequestException as exc:
            raise DownloadError("connection", str(exc)) from None
        with response:
            lowered = {k.lower(): v for k, v in response.headers.items()}
            if response.status_code in REDIRECT_STATUSES:
                return response.status_code, lowered, b"", lowered.get("location")
            declared = lowered.get("content-length", "")
            if declared.isdigit() and int(declared) > cfg.max_bytes:
                raise DownloadError("too-large", f"{declared} bytes > {cfg.max_bytes}")
            # a compressed body inflates up to ~1000x per read: read it in small pieces so the
            # byte cap is overshot by a few MiB at most (a gzip bomb meets the cap, not the RAM)
            encoded = lowered.get("content-encoding", "identity").lower() not in ("", "identity")
            read_size = 8 * 1024 if encoded else 64 * 1024
            chunks: list[bytes] = []
            size = 0
            try:
                while True:
                    # read1 returns what has arrived, so a server dripping bytes meets the
                    # deadline check instead of holding the worker until a buffer fills
                    chunk = response.raw.read1(read_size, decode_content=True)
                    if not chunk:
                        break
                    size += len(chunk)
                    if size > cfg.max_bytes:
                        raise DownloadError("too-large", f"more than {cfg.max_bytes} bytes")
                    if time.monotonic() > deadline:
                        raise DownloadError(
                            "timeout", f"body not read within {cfg.total_timeout} s"
                        )
                    chunks.append(chunk)
            except (requests.Timeout, urllib3.exceptions.TimeoutError) as exc:
                raise DownloadError("timeout", str(exc)) from None
            except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
                raise DownloadError("connection", str(exc)) from None
            return response.status_code, lowered, b"".join(chunks), None


def read_local(path: str, config: DownloadConfig) -> bytes:
    """A local regular file's bytes, with the same byte cap as a download."""
    return read_regular_file(path, config.max_bytes)
