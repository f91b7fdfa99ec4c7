"""TransferCache: encoders, style targets and Laplacians computed once per process and reused."""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Callable, Hashable
from typing import Any


class TransferCache:
    """A bounded LRU store of reusable work, with hit/miss counts by kind.

    Kinds used by the methods: ``encoder`` (per network, weights, layers, device),
    ``style`` (style targets per style image, network, weights, layers, size, precision,
    masks), ``content`` (content features) and ``laplacian`` (per content image, size, eps).
    """

    def __init__(self, max_items: int = 256) -> None:
        self.max_items = max_items
        self._items: OrderedDict[tuple[str, Hashable], Any] = OrderedDict()
        self.hits: Counter[str] = Counter()
        self.misses: Counter[str] = Counter()

    def get_or_compute(self, kind: str, key: Hashable, compute: Callable[[], Any]) -> Any:
        """The cached value for (kind, key), computing and storing it on a miss."""
        full = (kind, key)
        if full in self._items:
            self.hits[kind] += 1
            self._items.move_to_end(full)
            return self._items[full]
        self.misses[kind] += 1
        value = compute()
        self._items[full] = value
        while len(self._items) > self.max_items:
            self._items.popitem(last=False)
        return value

    def __contains__(self, full: tuple[str, Hashable]) -> bool:
        return full in self._items

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        """Forget everything (counts included)."""
        self._items.clear()
        self.hits.clear()
        self.misses.clear()


_DEFAULT: TransferCache | None = None


def default_cache() -> TransferCache:
    """The process-wide cache used when a call passes none."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = TransferCache()
    return _DEFAULT
