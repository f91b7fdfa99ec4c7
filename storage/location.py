"""Where the data directory lives: a local path or any fsspec URL."""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import fsspec
from fsspec.implementations.local import LocalFileSystem

DEFAULT_DATA_DIR = "./stylebench-data"
ENV_DATA_DIR = "STYLEBENCH_DATA"
ENV_STORAGE_OPTIONS = "STYLEBENCH_STORAGE_OPTIONS"
TMP_PREFIX = ".tmp-"  # temporaries of atomic writes; no reader lists them
# Filesystems that keep nothing after the process ends: every command would start empty.
VOLATILE_PROTOCOLS = frozenset({"memory"})
_SCHEME_NO_SLASHES = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+):(?!//)")


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
        directory = os.path.dirname(path)
        os.makedirs(directory, exist_ok=True)
        tmp = f"{directory}/{TMP_PREFIX}{uuid.uuid4().hex}.part"
        try:
            with open(tmp, "wb") as fh:
                write(fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return path

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
        directory = os.path.dirname(path)
        os.makedirs(directory, exist_ok=True)
        tmp = f"{directory}/{TMP_PREFIX}{uuid.uuid4().hex}.part"
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
            return True
        finally:
            os.unlink(tmp)

    def display(self, relpath: str) -> str:
        """A path a user can paste: local absolute path, or the full URL."""
        full = self.join(relpath)
        if self.is_local:
            return full
        protocol = self.fs.protocol[0] if isinstance(self.fs.protocol, tuple) else self.fs.protocol
        return f"{protocol}://{full}"
