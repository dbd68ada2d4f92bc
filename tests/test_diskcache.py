"""The on-disk cache only ever saves time: same results, robust to bad files and unwritable folders."""

from __future__ import annotations

from convsched import search
from convsched.diskcache import cached


def test_computes_once_then_loads(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVSCHED_CACHE_DIR", str(tmp_path))
    calls = []
    make = lambda: calls.append(1) or {"a": [1, 2, 3]}
    assert cached("t", ("k", 1), make) == {"a": [1, 2, 3]}
    assert cached("t", ("k", 1), make) == {"a": [1, 2, 3]}
    assert len(calls) == 1
    assert cached("t", ("k", 2), make) == {"a": [1, 2, 3]} and len(calls) == 2   # another key
    assert not list(tmp_path.glob(".*.tmp"))


def test_corrupt_entry_is_recomputed_and_replaced(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVSCHED_CACHE_DIR", str(tmp_path))
    cached("t", "k", lambda: 1)
    (entry,) = tmp_path.iterdir()
    entry.write_bytes(b"\x80not a pickle")
    assert cached("t", "k", lambda: 2) == 2
    assert cached("t", "k", lambda: 3) == 2


def test_turned_off_and_unwritable(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVSCHED_CACHE_DIR", "")
    assert cached("t", "k", lambda: 5) == 5 and cached("t", "k", lambda: 6) == 6
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("CONVSCHED_CACHE_DIR", str(blocker / "sub"))   # cannot be created
    assert cached("t", "k", lambda: 7) == 7


def test_cached_structure_list_equals_a_fresh_enumeration(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVSCHED_CACHE_DIR", str(tmp_path))
    dims = ("K", "C", "OY", "OX", "FY", "FX")
    fresh = list(search._enumerate_structures(dims, frozenset(), None, None))
    search._structures.cache_clear()
    written = search._structures(dims, frozenset(), None, None)     # computed, stored
    search._structures.cache_clear()
    loaded = search._structures(dims, frozenset(), None, None)      # read back from disk
    search._structures.cache_clear()
    assert len(list(tmp_path.iterdir())) == 1
    assert written == fresh and loaded == fresh
    assert [list(lv) for _, lv in loaded[:50]] == [list(lv) for _, lv in fresh[:50]]   # level order kept
