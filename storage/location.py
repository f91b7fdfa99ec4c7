"""Where the data directory lives: a local path or any fsspec URL."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import fsspec
from fsspec.implementations.local import LocalFileSystem

DEFAULT_DATA_DIR = "./stylebench-data"
ENV_DATA_DIR = "STYLEBENCH_DATA"
ENV_STORAGE_OPTIONS = "STYLEBENCH_STORAGE_OPTIONS"
TMP_PREFIX = ".tmp-"  # temporaries of atomic writes; no reader lists them
TMP_SUFFIX = ".part"
# A temporary's name says which machine and process writes it (.tmp-<host>-<pid>-<uuid>.part),
# so a later command removes those of dead processes at once; any other is removed when stale.
HOST_TAG = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]
STALE_TMP_SECONDS = 3600
# Filesystems that keep nothing after the process ends: every command would start empty.
VOLATILE_PROTOCOLS = frozenset({"memory"})
_SCHEME_NO_SLASHES = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+):(?!//)")


class StorageError(OSError):
    """The data directory cannot be read or written: a fault of where the data lives (a full,
    read-only or unwritable disk, an unreachable object store, refused credentials, a missing
    bucket), not of one image or row. The message names the location and the cause."""


# errno -> what it means for a data directory, and what to do.
_ERRNO_CAUSES = {
    errno.ENOSPC: "no space left on the device; free some space or give another --data-dir",
    errno.EDQUOT: "the disk quota is used up; free some space or give another --data-dir",
    errno.EROFS: "the file system is read-only; give a writable --data-dir",
    errno.EACCES: "permission denied; check the permissions or give another --data-dir",
    errno.EPERM: "operation not permitted; check the permissions or give another --data-dir",
    errno.EIO: "input/output error (a failing disk or a lost network mount)",
}
# errno -> cause, for errors while writing the data directory's own files: its shape is wrong.
_WRITE_ERRNO_CAUSES = {
    errno.ENOTDIR: "a file stands where a folder belongs; move it out of the data directory",
    errno.EEXIST: "a file stands where a folder belongs; move it out of the data directory",
    errno.EISDIR: "a folder stands where a file belongs; move it out of the data directory",
    errno.ELOOP: "a symbolic link loop; fix or remove the link",
}
_CLIENTS = frozenset({"botocore", "aiobotocore", "aiohttp", "s3fs", "gcsfs", "adlfs"})
_UNREACHABLE = frozenset(
    {
        "EndpointConnectionError",
        "ConnectTimeoutError",
        "ConnectionClosedError",
        "ReadTimeoutError",
        "ProxyConnectionError",
        "SSLError",
        "ClientConnectorError",
        "ServerDisconnectedError",
        "ClientOSError",
        "ServerTimeoutError",
    }
)
_NO_CREDENTIALS = frozenset(
    {"NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError"}
)
_REFUSED_CODES = frozenset(
    {
        "AccessDenied",
        "AllAccessDisabled",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "TokenRefreshRequired",
        "AuthorizationHeaderMalformed",
        "403",
    }
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _error_code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return (response.get("Error") or {}).get("Code")
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def fault_of_environment(exc: BaseException, *, any_os_error: bool = False) -> str | None:
    """The cause in words when ``exc`` is a fault of where the data lives, else None.

    Faults: no space, a read-only or unwritable file system, an I/O error, an object store
    that cannot be reached, missing or refused credentials, a missing bucket. With
    ``any_os_error`` (the error came from writing the data directory's own files) every
    OSError is one.
    """
    cause = object_store_fault(exc)
    if cause is not None:
        return cause
    if not isinstance(exc, OSError):
        return None
    where = f"{exc.filename}: " if exc.filename else ""
    causes = {**_ERRNO_CAUSES, **_WRITE_ERRNO_CAUSES} if any_os_error else _ERRNO_CAUSES
    cause = causes.get(exc.errno) if exc.errno is not None else None
    if cause is not None:
        return f"{where}{cause}"
    if isinstance(exc, PermissionError):
        return f"access refused ({_first_line(exc)}); check the permissions or the credentials"
    if any_os_error:
        return f"{where}{exc.strerror or _first_line(exc)}"
    return None


def object_store_fault(exc: BaseException) -> str | None:
    """The cause in words when ``exc`` (or an error behind it) says an object store cannot be
    reached, has no credentials or refuses them, or lacks the bucket; else None."""
    for link in _chain(exc):
        module = type(link).__module__.split(".")[0]
        names = {c.__name__ for c in type(link).__mro__} if module in _CLIENTS else set()
        if names & _UNREACHABLE:
            return (
                f"cannot reach the object store ({_first_line(link)}); check the endpoint "
                "and the network"
            )
        if names & _NO_CREDENTIALS:
            return (
                f"no credentials for the object store ({_first_line(link)}); set them "
                "(AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or key and secret in "
                "STYLEBENCH_STORAGE_OPTIONS)"
            )
        code = _error_code(link)
        if code == "NoSuchBucket" or "bucket does not exist" in str(link).lower():
            return "the bucket does not exist; create it or give another --data-dir"
        if code in _REFUSED_CODES:
            return f"the object store refused access ({_first_line(link)}); check the credentials"
    return None


def check_location(url: str) -> None:
    """Raise ValueError for a data directory that cannot hold data, saying what to give instead.

    Refused: a volatile filesystem (``memory://``), a URL with its slashes missing (``s3:/x``
    would otherwise be a local folder named ``s3:``) and a local path that is a file.
    """
    scheme = url.split("://", 1)[0].lower() if "://" in url else None
    if scheme in VOLATILE_PROTOCOLS:
        raise ValueError(
            f"data directory {url!r}: {scheme}:// keeps nothing after this command exits; "
            "give a local folder or an object store URL such as s3://bucket/prefix"
        )
    if scheme is None:
        match = _SCHEME_NO_SLASHES.match(url)
        if match and match.group(1).lower() in fsspec.available_protocols():
            name = match.group(1)
            rest = url[match.end() :].lstrip("/")
            raise ValueError(
                f"data directory {url!r} looks like a {name} URL with its slashes missing: "
                f"write {name}://{rest} (or ./{url} for a local folder of that name)"
            )
        path = Path(url).expanduser()
        try:
            path.resolve()
        except (RuntimeError, OSError):  # a symbolic link loop
            raise ValueError(
                f"data directory {url!r} is a symbolic link loop; fix the link or give "
                "another folder with --data-dir or STYLEBENCH_DATA"
            ) from None
        if path.exists() and not path.is_dir():
            raise ValueError(
                f"data directory {url!r} is a file, not a folder; give a folder (it is "
                "created if missing) with --data-dir or STYLEBENCH_DATA"
            )


def resolve_location(location: str | os.PathLike[str] | None = None) -> str:
    """The data directory: the argument, else ``$STYLEBENCH_DATA``, else ``./stylebench-data``."""
    if location is not None and str(location) != "":
        return str(location)
    return os.environ.get(ENV_DATA_DIR) or DEFAULT_DATA_DIR


def storage_options_from_env() -> dict[str, Any]:
    """Extra fsspec options, as JSON in ``$STYLEBENCH_STORAGE_OPTIONS``.

    For an S3-compatible server: ``{"client_kwargs": {"endpoint_url": "http://..."}}``.
    """
    raw = os.environ.get(ENV_STORAGE_OPTIONS)
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{ENV_STORAGE_OPTIONS} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{ENV_STORAGE_OPTIONS} must be a JSON object, got {type(value).__name__}")
    return value


@dataclass(frozen=True)
class Location:
    """A resolved data directory: the filesystem, the root path on it, and the URL given."""

    url: str
    fs: fsspec.AbstractFileSystem
    root: str

    @classmethod
    def open(
        cls, location: str | os.PathLike[str] | None = None, **storage_options: Any
    ) -> Location:
        url = resolve_location(location)
        check_location(url)
        options = {**storage_options_from_env(), **storage_options}
        if "://" not in url:
            path = str(Path(url).expanduser().resolve())
            return cls(url=url, fs=LocalFileSystem(), root=path)
        fs, root = fsspec.core.url_to_fs(url, **options)
        return cls(url=url, fs=fs, root=root.rstrip("/"))

    @property
    def is_local(self) -> bool:
        return isinstance(self.fs, LocalFileSystem)

    @contextmanager
    def guard(self, doing: str, *, writing: bool = False) -> Iterator[None]:
        """Turn a fault of the environment inside the block into a StorageError naming this
        data directory, what was being done and why it failed; other errors pass unchanged.

        ``writing``: the block writes this data directory's own files, so every OSError is
        such a fault.
        """
        try:
            yield
        except StorageError:
            raise
        except Exception as exc:
            cause = fault_of_environment(exc, any_os_error=writing)
            if cause is None:
                raise
            raise StorageError(f"data directory {self.url}: {doing}: {cause}") from exc

    def missing_bucket(self, exc: FileNotFoundError) -> StorageError | None:
        """For a listing that found nothing on an object store: a StorageError if the bucket
        itself is missing (then nothing was found because nothing can be), else None."""
        if self.is_local:
            return None
        cause = fault_of_environment(exc)
        if cause is None:
            return None
        return StorageError(f"data directory {self.url}: {cause}")

    def temporary(self, directory: str) -> str:
        """A fresh temporary name in ``directory`` that tells which host and process wrote it."""
        return f"{directory}/{TMP_PREFIX}{HOST_TAG}-{os.getpid()}-{uuid.uuid4().hex}{TMP_SUFFIX}"

    def remove_stale_temporaries(self, relpath: str, *, depth: int = 0) -> int:
        """Remove temporaries left under ``relpath`` (and ``depth`` levels of folders below)
        by writers that died: those of a process of this host that no longer runs, and any
        older than an hour. Local data directories only (object stores have none)."""
        if not self.is_local:
            return 0
        removed = 0
        folders = [(self.join(relpath), depth)]
        now = time.time()
        while folders:
            folder, below = folders.pop()
            try:
                entries = list(os.scandir(folder))
            except (FileNotFoundError, NotADirectoryError):
                continue
            for entry in entries:
                if entry.name.startswith(TMP_PREFIX) and entry.name.endswith(TMP_SUFFIX):
                    if _temporary_is_stale(entry, now):
                        try:
                            os.unlink(entry.path)
                            removed += 1
                        except FileNotFoundError:
                            pass
                elif below > 0 and entry.is_dir(follow_symlinks=False):
                    folders.append((entry.path, below - 1))
        return removed

    def join(self, *parts: str) -> str:
        """The full path of ``parts`` under the root, on this filesystem."""
        return "/".join([self.root, *(p.strip("/") for p in parts if p)])

    def write_atomic(self, path: str, write: Callable[[BinaryIO], None]) -> str:
        """Write the file ``path`` (full, on this filesystem) so no reader sees it half-written.

        Locally: a temporary name (``.tmp-*.part``, never listed), fsync, then rename.
        Object stores publish an object only once its upload completes, so the final key
        is written directly.
        """
        if not self.is_local:
            with self.fs.open(path, "wb") as fh:
                write(fh)
            return path
        tmp = self._synced_temporary(path, write)
        try:
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return path

    def _synced_temporary(self, path: str, write: Callable[[BinaryIO], None]) -> str:
        """A local temporary beside ``path`` holding what ``write`` wrote, flushed to disk;
        removed again if writing fails."""
        directory = os.path.dirname(path)
        os.makedirs(directory, exist_ok=True)
        tmp = self.temporary(directory)
        try:
            with open(tmp, "wb") as fh:
                write(fh)
                fh.flush()
                os.fsync(fh.fileno())
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return tmp

    def create_exclusive(self, path: str, data: bytes) -> bool:
        """Create the file ``path`` holding ``data`` unless it exists; False if it did.

        Atomic on local disks (a hard link of a complete temporary, which fails if the
        name is taken) and on object stores with conditional writes (S3 ``If-None-Match``).
        """
        if not self.is_local:
            try:
                self.fs.pipe_file(path, data, mode="create")
            except FileExistsError:
                return False
            except OSError as exc:
                if "PreconditionFailed" in str(exc) or "412" in str(exc):
                    return False
                raise
            return True
        tmp = self._synced_temporary(path, lambda fh: fh.write(data))
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        finally:
            os.unlink(tmp)
        return True

    def display(self, relpath: str) -> str:
        """A path a user can paste: local absolute path, or the full URL."""
        full = self.join(relpath)
        if self.is_local:
            return full
        protocol = self.fs.protocol[0] if isinstance(self.fs.protocol, tuple) else self.fs.protocol
        return f"{protocol}://{full}"


def _temporary_is_stale(entry: os.DirEntry[str], now: float) -> bool:
    """Whether a temporary's writer is gone: a dead process of this host, or an hour old."""
    parts = entry.name[len(TMP_PREFIX) : -len(TMP_SUFFIX)].split("-")
    if len(parts) == 3 and parts[0] == HOST_TAG and parts[1].isdigit():
        if not pid_alive(int(parts[1])):
            return True
    try:
        return now - entry.stat(follow_symlinks=False).st_mtime > STALE_TMP_SECONDS
    except FileNotFoundError:
        return False


def start_time(pid: int) -> str | None:
    """When process ``pid`` started (Linux ``/proc``), so a reused pid is told apart."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return None


def pid_alive(pid: int, started: str | None = None) -> bool:
    """Whether process ``pid`` of this machine is running (and, given ``started``, is the
    process that started then)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return started is None or start_time(pid) in (None, started)
