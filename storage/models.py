"""The model store: trained feed-forward networks under ``models/<name>/`` of the data directory.

On a local data directory models are read and written in place; on an object store
training writes to a local cache and ``publish`` uploads, and ``local_root`` fetches.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from storage.images import MODELS_DIR, cache_dir

if TYPE_CHECKING:
    from storage.store import Store

MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,99}")
MODEL_FILES = ("model.safetensors", "model.json")
TRAINING_LEASE_SECONDS = (
    3600.0  # renewed while training runs; a dead local trainer frees it at once
)


class ModelBusy(ValueError):
    """Another process is training a model of the same name; the message names it."""


def check_model_name(name: str) -> str:
    """``name`` if it is a valid model name, else a ValueError saying what is allowed."""
    if not isinstance(name, str) or not MODEL_NAME.fullmatch(name):
        raise ValueError(
            f"model name {name!r} must be letters, digits, '.', '_', '+' "
            "or '-' (up to 100): pass --name"
        )
    return name


class ModelStore:
    """``models/`` of one data directory."""

    def __init__(self, store: Store):
        self.store = store

    @property
    def remote(self) -> bool:
        return not self.store.loc.is_local

    def _cache(self) -> Path:
        url = self.store.loc.url.replace("/", "_").replace(":", "")
        return cache_dir() / "models" / url

    def training_dir(self, name: str) -> Path:
        """The local directory training writes ``name`` into (checkpoints, then the model)."""
        check_model_name(name)
        if not self.remote:
            return Path(self.store.loc.join(MODELS_DIR, name))
        return self._cache() / name

    @contextmanager
    def training(self, name: str) -> Iterator[Callable[[], None]]:
        """Hold ``name`` for training (a lease, ``leases/train/<name>``): a second trainer of
        the same name gets ModelBusy instead of writing the same folder. Yields a function
        to call now and then while training (it renews the lease)."""
        check_model_name(name)
        leases = self.store.leases
        key, owner = f"train/{name}", f"train-fast {name}"
        lease = leases.acquire(key, TRAINING_LEASE_SECONDS, owner=owner)
        if lease is None:
            raise ModelBusy(
                f"model {name!r} is being trained by {leases.holder(key)}; wait for it to "
                "finish, or train under another --name"
            )
        held = [lease]

        def keep_alive() -> None:
            if held[0].expires_at - time.time() > TRAINING_LEASE_SECONDS / 2:
                return
            renewed = leases.renew(held[0], TRAINING_LEASE_SECONDS, owner=owner)
            if renewed is None:
                raise ModelBusy(f"model {name!r}: another process took over its training")
            held[0] = renewed

        try:
            yield keep_alive
        finally:
            leases.release(held[0])

    def publish(self, name: str) -> None:
        """Make a model trained in ``training_dir(name)`` part of the data directory."""
        if not self.remote:
            return
        local = self.training_dir(name)
        for file in MODEL_FILES:
            self.store.write_bytes(f"{MODELS_DIR}/{name}/{file}", (local / file).read_bytes())

    def exists(self, name: str) -> bool:
        return self.store.exists(f"{MODELS_DIR}/{name}/model.json")

    def local_root(self, name: str) -> Path:
        """A local directory holding ``<name>/`` (fetched from the data directory if remote)."""
        local = self.training_dir(name)
        if self.remote:
            local.mkdir(parents=True, exist_ok=True)
            for file in MODEL_FILES:
                relpath = f"{MODELS_DIR}/{name}/{file}"
                if not self.store.exists(relpath):
                    raise ValueError(
                        f"no model {name!r} in {self.store.display(MODELS_DIR)}: train it with "
                        "`stylebench train-fast --name NAME`"
                    )
                (local / file).write_bytes(self.store.read_bytes(relpath))
        return local.parent
