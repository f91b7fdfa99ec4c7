"""Address pinning: connections that dial the address ``check_url`` vetted, never a new lookup.

Only the socket goes to the pinned address: the Host header, TLS SNI and certificate checks
keep the host name, so a DNS answer that changes between the check and the connection cannot
reach an internal service.
"""

from __future__ import annotations

import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection

from scraper.urlcheck import Target, host_key


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
            conn.pinned_address = pins.get((host_key(pool.host), pool.port or default))
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
