"""Request budgets that engines publish (N requests per window), kept across processes.

Each budget is a small JSON file of request times under ``$STYLEBENCH_CACHE_DIR`` (default
``~/.cache/stylebench``), locked while it is read and updated, so that several scrapes and a
cron canary on one machine share one allowance. Where the file cannot be written the budget
is kept in memory for this process only.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from scraper.errors import QuotaExhausted

try:
    import fcntl
except ImportError:  # Windows: the in-process lock only
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

ENV_CACHE_DIR = "STYLEBENCH_CACHE_DIR"


def cache_dir() -> Path:
    """``$STYLEBENCH_CACHE_DIR``, else ``$XDG_CACHE_HOME/stylebench``, else ``~/.cache/stylebench``."""
    explicit = os.environ.get(ENV_CACHE_DIR)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "stylebench"


def _window_words(seconds: float) -> str:
    if seconds % 86400 == 0:
        n = int(seconds // 86400)
        return "a day" if n == 1 else f"{n} days"
    if seconds % 60 == 0:
        n = int(seconds // 60)
        return "a minute" if n == 1 else f"{n} minutes"
    return f"{seconds:g} s"


class RequestBudget:
    """At most ``count`` requests in any ``seconds`` window, for every (count, seconds) given.

    ``acquire()`` waits for a free slot when the wait is at most ``max_wait`` seconds and
    raises QuotaExhausted (saying when the budget frees) when it is longer.
    """

    def __init__(
        self,
        engine: str,
        limits: tuple[tuple[int, float], ...],
        *,
        path: Path | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        max_wait: float = 90.0,
    ):
        if not limits or any(n < 1 or s <= 0 for n, s in limits):
            raise ValueError(f"limits must be (count >= 1, seconds > 0) pairs, got {limits}")
        self.engine = engine
        self.limits = limits
        self._path = path
        self.clock = clock
        self.sleep = sleep
        self.max_wait = max_wait
        self._lock = threading.Lock()
        self._memory: list[float] = []
        self.horizon = max(s for _, s in limits)

    @property
    def path(self) -> Path:
        return self._path or cache_dir() / f"{self.engine}-requests.json"

    def describe(self) -> str:
        return ", ".join(f"{n} requests {_window_words(s)}" for n, s in self.limits)

    @contextmanager
    def _locked(self) -> Iterator[tuple[list[float], bool]]:
        """The recorded request times, under the thread lock and (where possible) a file lock."""
        with self._lock:
            path = self.path
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                fh = open(path, "a+", encoding="utf-8")
            except OSError as exc:
                log.debug("request budget kept in memory: %s", exc)
                yield self._memory, False
                return
            with fh:
                if fcntl is not None:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
                fh.seek(0)
                try:
                    stamps = [float(t) for t in json.loads(fh.read() or "[]")]
                except (ValueError, TypeError):
                    stamps = []  # a damaged file only forgets past requests
                yield stamps, True
                fh.seek(0)
                fh.truncate()
                fh.write(json.dumps(stamps))

    def wait_needed(self, stamps: list[float], now: float) -> tuple[float, int, float]:
        """(seconds until a request is allowed, the binding count, its window)."""
        worst = (0.0, 0, 0.0)
        for count, seconds in self.limits:
            recent = sorted(t for t in stamps if t > now - seconds)
            if len(recent) >= count:
                wait = recent[len(recent) - count] + seconds - now
                if wait > worst[0]:
                    worst = (wait, count, seconds)
        return worst

    def acquire(self) -> float:
        """Take one request from the budget; return the seconds waited."""
        waited = 0.0
        while True:
            with self._locked() as (stamps, _persisted):
                now = self.clock()
                stamps[:] = [t for t in stamps if t > now - self.horizon]
                wait, count, seconds = self.wait_needed(stamps, now)
                if wait <= 0:
                    stamps.append(now)
                    return waited
            if wait > self.max_wait:
                free = datetime.fromtimestamp(now + wait, timezone.utc).strftime("%Y-%m-%d %H:%M")
                raise QuotaExhausted(
                    self.engine,
                    f"its limit of {count} requests {_window_words(seconds)} is used up "
                    f"(counted in {self.path}); the next request is allowed at {free} UTC",
                )
            log.info(
                "%s: waiting %.0f s for the request budget (%s)", self.engine, wait, self.describe()
            )
            self.sleep(wait)
            waited += wait
