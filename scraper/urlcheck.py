"""URL vetting: a URL read as the connection will read it, and the address guard.

An authority with a backslash, whitespace or a control character is refused, and
``urlsplit`` and urllib3's ``parse_url`` must name the same host and port. The host is
resolved once; every address it resolves to must be globally routable (unless private
addresses are allowed), and IPv6 forms that carry an IPv4 address (mapped, SIIT,
compatible, NAT64, 6to4, Teredo) are judged by that address too. The connection then
dials the address that was checked (``scraper.pinning``).
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import urllib3
from urllib3.util import parse_url

from scraper.errors import DownloadError

if TYPE_CHECKING:
    from scraper.download import DownloadConfig

ENV_ALLOW_PRIVATE = "STYLEBENCH_ALLOW_PRIVATE"


def allow_private_from_env() -> bool:
    return os.environ.get(ENV_ALLOW_PRIVATE, "").strip().lower() in ("1", "true", "yes")


# Prefixes whose last 32 bits (or, for 6to4, bits 16-48) are an IPv4 address.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")  # RFC 8215: local use only
_SIIT = ipaddress.IPv6Network("::ffff:0:0:0/96")
_COMPATIBLE = ipaddress.IPv6Network("::/96")
# Characters that make parsers disagree about where the host ends.
_BAD_AUTHORITY = re.compile(r"[\\\s\x00-\x1f\x7f]")
BAD_URL = re.compile(r"[\x00-\x1f\x7f]")


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


def host_key(host: str) -> str:
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
    if BAD_URL.search(url):
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
    if host_key(_idna(host)) != host_key(_idna(parsed.host)) or (split_port or default) != (
        parsed.port or default
    ):
        raise DownloadError(
            "bad-url", f"ambiguous URL {url!r}: parsers disagree on its host; refused"
        )
    return host_key(_idna(parsed.host)), parsed.port or default


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
    if not (config.allow_private or host in {host_key(h) for h in config.allow_hosts}):
        for address in addresses:
            if forbidden_address(address):
                raise DownloadError(
                    "private-address",
                    f"{host} resolves to {address}, a private, loopback, link-local or "
                    f"reserved address; set {ENV_ALLOW_PRIVATE}=1 to allow it "
                    "(for local mirrors and tests)",
                )
    return Target(host, port, addresses[0])
