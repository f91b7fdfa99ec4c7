"""Politeness: a per-host rate limit across threads, and the pause before a retry."""

from __future__ import annotations

import email.utils
import random
import threading
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from scraper.errors import DownloadError

if TYPE_CHECKING:
    from scraper.download import DownloadConfig


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
