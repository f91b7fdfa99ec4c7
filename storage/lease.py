"""Leases: who may do one piece of work now, on local disks and object stores alike.

A lease named ``key`` is a folder ``leases/<key>/`` of numbered generation files. The
holder is whoever wrote the highest generation, as long as it is live: not released,
not past its expiry, and (on the machine that wrote it) its process still running.
Taking a lease means creating the next generation with a create-exclusive write
(``Location.create_exclusive``), so of two processes that both saw generation *n* free,
exactly one writes *n + 1*. Releasing writes a released generation on top; older
generations are removed as new ones land. Expiry uses wall-clock time: machines sharing
a data directory need clocks within a small fraction of the lease time.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from storage.location import Location, pid_alive, start_time

LEASES_DIR = "leases"
SUFFIX = ".lease"
HOST = socket.gethostname()


@dataclass(frozen=True)
class Lease:
    """A lease held by this process: its key, generation and unique token."""

    key: str
    generation: int
    token: str
    expires_at: float


class LeaseHeld(RuntimeError):
    """Someone else holds the lease; the message names the holder and its expiry."""


def is_live(record: dict[str, Any], now: float | None = None) -> bool:
    """Whether a generation's record still holds the lease."""
    if record.get("released"):
        return False
    if float(record.get("expires_at", 0)) <= (time.time() if now is None else now):
        return False
    if record.get("host") == HOST and isinstance(record.get("pid"), int):
        return pid_alive(record["pid"], record.get("started"))
    return True


class Leases:
    """The leases of one data directory."""

    def __init__(self, loc: Location, clock: Callable[[], float] = time.time):
        self.loc = loc
        self.clock = clock  # wall-clock seconds: expiry compares with it

    def _dir(self, key: str) -> str:
        if not key or ".." in key.split("/") or key.startswith("/"):
            raise ValueError(f"bad lease key {key!r}")
        return self.loc.join(LEASES_DIR, key)

    def _generations(self, key: str) -> list[tuple[int, str]]:
        directory = self._dir(key)
        if not self.loc.is_local:
            self.loc.fs.invalidate_cache(directory)
        try:
            names = self.loc.fs.ls(directory, detail=False)
        except FileNotFoundError:
            return []
        out = []
        for path in names:
            name = path.rsplit("/", 1)[-1]
            if name.endswith(SUFFIX) and name[: -len(SUFFIX)].isdigit():
                out.append((int(name[: -len(SUFFIX)]), path))
        return sorted(out)

    def _path(self, key: str, generation: int) -> str:
        return f"{self._dir(key)}/{generation:012d}{SUFFIX}"

    def current(self, key: str) -> tuple[int, dict[str, Any]] | None:
        """The highest generation of ``key`` and its record, or None if there is none."""
        for _ in range(5):
            gens = self._generations(key)
            if not gens:
                return None
            generation, path = gens[-1]
            try:
                with self.loc.fs.open(path, "rb") as fh:
                    return generation, json.loads(fh.read() or b"{}")
            except FileNotFoundError:
                continue  # removed by a newer generation meanwhile: list again
            except (json.JSONDecodeError, UnicodeDecodeError):
                return generation, {}  # unreadable: treated as not live
        raise RuntimeError(f"lease {key}: generations kept vanishing while being read")

    def acquire(self, key: str, ttl_s: float, owner: str = "") -> Lease | None:
        """Take the lease ``key`` for ``ttl_s`` seconds; None if someone else holds it."""
        found = self.current(key)
        if found is not None and is_live(found[1], self.clock()):
            return None
        generation = 0 if found is None else found[0] + 1
        lease = Lease(key, generation, uuid.uuid4().hex, self.clock() + ttl_s)
        return self._write(lease, owner)

    def renew(self, lease: Lease, ttl_s: float, owner: str = "") -> Lease | None:
        """Extend a lease this process holds by ``ttl_s`` from now; None if it was lost."""
        if not self.holds(lease):
            return None
        renewed = Lease(lease.key, lease.generation + 1, lease.token, self.clock() + ttl_s)
        return self._write(renewed, owner)

    def _write(self, lease: Lease, owner: str) -> Lease | None:
        record = {
            "token": lease.token,
            "owner": owner,
            "host": HOST,
            "pid": os.getpid(),
            "started": start_time(os.getpid()),
            "acquired_at": self.clock(),
            "expires_at": lease.expires_at,
        }
        path = self._path(lease.key, lease.generation)
        if not self.loc.create_exclusive(path, json.dumps(record).encode()):
            return None
        self._prune(lease.key, lease.generation)
        return lease

    def holds(self, lease: Lease) -> bool:
        """Whether ``lease`` is still the live, highest generation of its key."""
        found = self.current(lease.key)
        return (
            found is not None
            and found[0] == lease.generation
            and found[1].get("token") == lease.token
            and is_live(found[1], self.clock())
        )

    def release(self, lease: Lease) -> None:
        """Give the lease up (a released generation on top); a no-op if it was lost."""
        if not self.holds(lease):
            return
        record = {"released": True, "token": lease.token, "host": HOST, "released_at": self.clock()}
        generation = lease.generation + 1
        if self.loc.create_exclusive(
            self._path(lease.key, generation), json.dumps(record).encode()
        ):
            self._prune(lease.key, generation)

    def _prune(self, key: str, below: int) -> None:
        for generation, path in self._generations(key):
            if generation < below:
                try:
                    self.loc.fs.rm(path)
                except FileNotFoundError:
                    pass

    def holder(self, key: str) -> str:
        """Who holds ``key`` and until when, in words (for messages)."""
        found = self.current(key)
        if found is None or not is_live(found[1], self.clock()):
            return "nobody"
        rec = found[1]
        until = time.strftime("%H:%M:%S UTC", time.gmtime(float(rec.get("expires_at", 0))))
        return f"{rec.get('owner') or 'a process'} (pid {rec.get('pid')} on {rec.get('host')}, until {until})"

    @contextmanager
    def hold(self, key: str, ttl_s: float, owner: str = "") -> Iterator[Lease]:
        """Hold ``key`` for the block; LeaseHeld if someone else holds it."""
        lease = self.acquire(key, ttl_s, owner)
        if lease is None:
            raise LeaseHeld(f"{key} is held by {self.holder(key)}")
        try:
            yield lease
        finally:
            self.release(lease)
