"""Reading what an import names: only regular files, with a byte cap, never a device or FIFO."""

from __future__ import annotations

import errno
import os
import re
import stat
from pathlib import Path

from scraper.errors import DownloadError

MAX_LIST_BYTES = 16 * 1024 * 1024  # a URL list; far more than a million URLs
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+:")  # two letters at least: C:\ is a drive
_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
)


def kind(mode: int) -> str:
    """What a file of st_mode ``mode`` is, in words."""
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def is_url(source: str) -> bool:
    """True when ``source`` starts with a URL scheme (``ftp:``, ``data:`` ...), not ``file:``.

    A local file that exists under that name is a file.
    """
    match = _SCHEME.match(source)
    if match is None or match.group(0).lower() == "file:":
        return False
    return not Path(source).exists()


def read_regular_file(path: str | os.PathLike[str], max_bytes: int) -> bytes:
    """The bytes of ``path``; DownloadError unless it is a regular file of at most ``max_bytes``.

    The type is checked before opening (opening a FIFO would wait for a writer), the file is
    opened non-blocking and checked again on the descriptor (it may have been swapped), and
    the read stops after ``max_bytes``.
    """
    try:
        before = os.stat(path)
    except OSError as exc:
        raise DownloadError("missing-file", f"{path}: {exc.strerror}") from None
    if not stat.S_ISREG(before.st_mode):
        raise DownloadError(
            "not-a-file", f"{path} is {kind(before.st_mode)}; only regular files are read"
        )
    if before.st_size > max_bytes:
        raise DownloadError("too-large", f"{path} is {before.st_size} bytes > {max_bytes}")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise DownloadError("unreadable", f"{path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as fh:
        now = os.fstat(fh.fileno())
        if not stat.S_ISREG(now.st_mode):
            raise DownloadError(
                "not-a-file", f"{path} is {kind(now.st_mode)}; only regular files are read"
            )
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise DownloadError("too-large", f"{path} is more than {max_bytes} bytes")
    return data


def read_list(path: str | os.PathLike[str], max_bytes: int = MAX_LIST_BYTES) -> str:
    """A text file listing sources; ValueError (naming the file and why) when it cannot be read."""
    try:
        data = read_regular_file(path, max_bytes)
    except DownloadError as exc:
        raise ValueError(f"cannot read the list {path}: {exc.detail}") from None
    return data.decode("utf-8", errors="replace")


def describe_missing(source: str, path: Path) -> str:
    """Why ``source`` (resolved to ``path``) cannot be imported, and what to give instead."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return f"{source} is a symbolic link loop; fix the link or give the file itself"
        return (
            f"{source}: no such file or folder, and not an http(s) URL; give image files, "
            "folders, URLs, or a .txt file listing them"
        )
    return f"{source} is {kind(mode)}; give image files, folders, URLs, or a .txt file listing them"
