"""A small bounded cache for values `functools.lru_cache` cannot hold well: large arrays whose memory,
not their number, must stay bounded, kept per object rather than per process.

It forgets the least recently used entries first, when a new one would
exceed either the entry limit or the size limit; a value larger than the
size limit on its own is not kept at all.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Generic, Hashable, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class BoundedCache(Generic[K, V]):
    """At most `max_entries` values whose `size_of` (bytes, say) add up to at most `max_size`.

    >>> from convsched.core.cache import BoundedCache
    >>> cache = BoundedCache(max_entries=2, max_size=10, size_of=len)
    >>> cache.put("a", "xxxx"); cache.put("b", "yyyy")
    >>> cache.get("a")
    'xxxx'
    >>> cache.put("c", "zzzz")          # three entries: "b", the least recently used, goes
    >>> cache.get("b") is None, cache.get("c")
    (True, 'zzzz')
    """

    def __init__(self, max_entries: int, max_size: int, size_of: Callable[[V], int]) -> None:
        self.max_entries = max_entries
        self.max_size = max_size
        self.size_of = size_of
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._size = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size(self) -> int:
        """The `size_of` of the values held, added up."""
        return self._size

    def get(self, key: K) -> V | None:
        """The value kept for `key`, or None."""
        value = self._entries.get(key)
        if value is not None:
            self._entries.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        """Keep `value` for `key`, forgetting the least recently used values it needs room from."""
        size = self.size_of(value)
        if size > self.max_size or self.max_entries < 1:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self._size -= self.size_of(old)
        while self._entries and (len(self._entries) >= self.max_entries or self._size + size > self.max_size):
            _, dropped = self._entries.popitem(last=False)
            self._size -= self.size_of(dropped)
        self._entries[key] = value
        self._size += size
