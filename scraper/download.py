"""The hardened HTTP client every engine and image download goes through.

Built on ``requests`` directly rather than icrawler's downloader: icrawler follows
redirects inside requests (so no hop can be checked against the address guard),
has no byte cap, no Retry-After handling and no per-host rate limit, and writes
files itself instead of handing bytes back. What the client does, per request:

- vets the URL and the addresses its host resolves to (``scraper.urlcheck``): only
  http(s), no private, loopback, link-local or otherwise non-global address (unless
  ``STYLEBENCH_ALLOW_PRIVATE=1`` or the host is listed in ``allow_hosts``), before
  connecting and again after every redirect, which is followed by hand up to
  ``max_redirects`` hops; the connection dials the vetted address (``scraper.pinning``);
- waits for its turn on a per-host rate limit (``scraper.ratelimit``), sends an
  identifying User-Agent, uses separate connect and read timeouts plus a total deadline
  (a server that drips bytes cannot hold a worker forever);
- streams the body and stops at ``max_bytes`` (counted after decompression, read in small
  pieces when the body is compressed);
- retries connection errors, 429 and 5xx with exponential backoff, honouring
  ``Retry-After`` (seconds or an HTTP date) up to ``max_retry_after``;
- for images, honours ``X-Robots-Tag: noai`` / ``noimageai``.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import requests
import urllib3

from scraper.errors import DownloadError
from scraper.pinning import PinnedAdapter
from scraper.ratelimit import HostLimiter, backoff_delay, parse_retry_after
from scraper.sources import read_regular_file
from scraper.urlcheck import BAD_URL, allow_private_from_env, check_url
from stylebench import __version__

ENV_USER_AGENT = "STYLEBENCH_USER_AGENT"
USER_AGENT = f"stylebench/{__version__} (research dataset builder for neural style transfer)"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
NOAI_TOKENS = frozenset({"noai", "noimageai"})


def user_agent_from_env() -> str:
    """``$STYLEBENCH_USER_AGENT`` (add contact details for site operators), else the default."""
    return os.environ.get(ENV_USER_AGENT) or USER_AGENT


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


def robots_forbid_ai(headers: Mapping[str, str]) -> bool:
    """True when X-Robots-Tag carries ``noai`` or ``noimageai`` (for any or no user agent)."""
    value = headers.get("x-robots-tag", "").lower()
    tokens = {t.strip() for t in re.split(r"[,:\s]+", value)}
    return bool(tokens & NOAI_TOKENS)


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
                if BAD_URL.search(location):  # urljoin would drop tabs and newlines
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
