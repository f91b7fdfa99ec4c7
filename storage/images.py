"""The content-addressed image store: ``images/`` and ``masks/`` by sha256, and run outputs."""

from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from storage.location import Location

IMAGES_DIR = "images"
MASKS_DIR = "masks"  # segmentation masks (colour label images) of pairs
OUTPUTS_DIR = "outputs"
MODELS_DIR = "models"
CACHE_ENV = "STYLEBENCH_CACHE"


@dataclass(frozen=True)
class StoredImage:
    image_id: str  # sha256 hex of the bytes
    path: str  # relative to the data directory
    existed: bool  # the bytes were already stored


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def image_relpath(image_id: str, ext: str, directory: str = IMAGES_DIR) -> str:
    ext = ext.lower().lstrip(".")
    return f"{directory}/{image_id[:2]}/{image_id}.{ext}"


def output_relpath(run_id: str, ext: str = "png") -> str:
    return f"{OUTPUTS_DIR}/{run_id}.{ext}"


def write_bytes_atomic(loc: Location, relpath: str, data: bytes) -> str:
    """Write ``data`` at ``relpath`` so no reader ever sees a partial file.

    A failure to write (no space, read-only, unreachable) is a StorageError naming the place.
    """
    with loc.guard(f"writing {relpath}", writing=True):
        return loc.write_atomic(loc.join(relpath), lambda fh: fh.write(data))


def put_image(loc: Location, data: bytes, ext: str, directory: str = IMAGES_DIR) -> StoredImage:
    """Store ``data`` under its sha256 in ``directory``; storing the same bytes twice is a no-op.

    A failure of the data directory (not of these bytes) is a StorageError.
    """
    if not data:
        raise ValueError("refusing to store an empty image")
    image_id = sha256(data)
    rel = image_relpath(image_id, ext, directory)
    with loc.guard(f"storing {rel}", writing=True):
        if loc.fs.exists(loc.join(rel)):
            return StoredImage(image_id, rel, existed=True)
        loc.write_atomic(loc.join(rel), lambda fh: fh.write(data))
    return StoredImage(image_id, rel, existed=False)


def remove_stale_temporaries(loc: Location) -> int:
    """Temporaries that writers killed mid-write left in ``images/`` and ``outputs/``."""
    return loc.remove_stale_temporaries(IMAGES_DIR, depth=1) + loc.remove_stale_temporaries(
        OUTPUTS_DIR
    )


def read_bytes(loc: Location, relpath: str) -> bytes:
    with loc.fs.open(loc.join(relpath), "rb") as fh:
        return fh.read()


def cache_dir() -> Path:
    base = os.environ.get(CACHE_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "stylebench"
    )
    return Path(base)


def local_path(loc: Location, relpath: str) -> Path:
    """A local file with the contents of ``relpath``: the file itself, or a cached copy.

    Content-addressed images never change, so a cached copy stays valid.
    """
    if loc.is_local:
        return Path(loc.join(relpath))
    target = (
        cache_dir() / "remote" / sha256(loc.display(relpath).encode())[:16] / Path(relpath).name
    )
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".tmp-{uuid.uuid4().hex}")
        loc.fs.get_file(loc.join(relpath), str(tmp))
        os.replace(tmp, target)
    return target
