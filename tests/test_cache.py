"""core.cache.BoundedCache: the least recently used values go first, within both bounds."""

from __future__ import annotations

import numpy as np

from convsched.core.cache import BoundedCache


def test_size_bound_drops_the_least_recently_used():
    cache: BoundedCache[str, np.ndarray] = BoundedCache(max_entries=10, max_size=100, size_of=lambda a: a.nbytes)
    for key in "abc":
        cache.put(key, np.zeros(30, dtype=np.uint8))
    assert cache.get("a") is not None          # "a" is now the most recently used
    cache.put("d", np.zeros(30, dtype=np.uint8))
    assert cache.get("b") is None and all(cache.get(k) is not None for k in "acd")
    assert cache.size == 90 and len(cache) == 3


def test_a_value_larger_than_the_bound_is_not_kept():
    cache: BoundedCache[str, bytes] = BoundedCache(max_entries=10, max_size=8, size_of=len)
    cache.put("small", b"1234")
    cache.put("large", b"123456789")
    assert cache.get("large") is None and cache.get("small") == b"1234"


def test_replacing_a_key_counts_its_new_size_only():
    cache: BoundedCache[str, bytes] = BoundedCache(max_entries=10, max_size=8, size_of=len)
    cache.put("k", b"1234")
    cache.put("k", b"123456")
    assert cache.size == 6 and len(cache) == 1
