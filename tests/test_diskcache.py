"""The on-disk cache only ever saves time: same results, robust to bad files and unwritable folders,
and nothing in its folder can run code when it is read."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from convsched.search import structures
from convsched.search.diskcache import MalformedEntry, cached, entry_path, int_array

DIMS6 = ("K", "C", "OY", "OX", "FY", "FX")


def enc(v: int) -> dict[str, np.ndarray]:
    return {"v": np.array([v], dtype=np.int64)}


def dec(arrays) -> int:
    return int(int_array(arrays, "v", (1,), 0, 1000)[0])


def test_computes_once_then_loads(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVSCHED_CACHE_DIR", str(tmp_path))
    calls = []
    make = lambda: calls.append(1) or 7          # noqa: E731
    assert cached("t", ("k", 1), make, enc, dec) == 7
    assert cached("t", ("k", 1), make, enc, dec) == 7
    assert len(calls) == 1
    assert cached("t", ("k", 2), make, enc, dec) == 7 and len(calls) == 2   # another key
    assert not list(tmp_path.glob(".*.tmp*"))
    assert all(p.suffix == ".npz" for p in tmp_path.iterdir())


@pytest.mark.parametrize("content", [
    b"\x80not a pickle",
    b"PK\x03\x04truncated zip",
    b"",
    pickle.dumps(3),                                   # an old-style pickle entry
])
def test_unreadable_entry_is_recomputed_and_replaced(tmp_path, monkeypatch, content):
    monkeypatch.setenv("CONVSCHED_CACHE_DIR", str(tmp_path))
    cached("t", "k", lambda: 1, enc, dec)
    (entry,) = tmp_path.iterdir()
    entry.write_bytes(content)
    assert cached("t", "k", lambda: 2, enc, dec) == 2
    assert cached("t", "k", lambda: 3, enc, dec) == 2


@pytest.mark.parametrize("arrays", [
    {"v": np.array([1.5])},                            # wrong type
    {"v": np.array(["text"])},
    {"v": np.array([5000])},                           # out of range
    {"v": np.array([1, 2])},                           # wrong shape
    {"w": np.array([1])},                              # missing array
])
def test_wrong_typed_entry_is_a_miss(tmp_path, monkeypatch, arrays):
    monkeypatch.setenv("CONVSCHED_CACHE_DIR", str(tmp_path))
    path = entry_path("t", "k")
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    assert cached("t", "k", lambda: 4, enc, dec) == 4
    assert cached("t", "k", lambda: 5, enc, dec) == 4


def test_object_arrays_are_never_unpickled(tmp_path, monkeypatch):
    # an .npz whose member is an object array (pickled inside): refused, not loaded
    monkeypatch.setenv("CONVSCHED_CACHE_DIR", str(tmp_path))
    path = entry_path("t", "k")
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, v=np.array([_Boom(tmp_path)], dtype=object))
    assert cached("t", "k", lambda: 6, enc, dec) == 6
    assert not (tmp_path / "ran").exists()


class _Boom:
    """Unpickling it would create a file: the proof that code ran."""

    def __init__(self, folder):
        self.marker = str(folder / "ran")

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_turned_off_and_unwritable(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVSCHED_CACHE_DIR", "")
    assert cached("t", "k", lambda: 5, enc, dec) == 5 and cached("t", "k", lambda: 6, enc, dec) == 6
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("CONVSCHED_CACHE_DIR", str(blocker / "sub"))   # cannot be created
    assert cached("t", "k", lambda: 7, enc, dec) == 7


def _fresh():
    structures.canonical_structures.cache_clear()      # the next call builds a new list (and table)


def test_cached_structure_list_and_table_equal_fresh_ones(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVSCHED_CACHE_DIR", str(tmp_path))
    fresh = list(structures.enumerate_structures(DIMS6, frozenset(), None, None))
    fresh_table = structures.build_structure_table(fresh)
    _fresh()
    written = structures.canonical_structures(DIMS6, frozenset(), None, None)     # computed, stored
    assert len(written.table.loops) == len(fresh)                                # its table stored beside it
    _fresh()
    loaded = structures.canonical_structures(DIMS6, frozenset(), None, None)      # read back from disk
    table = loaded.table
    _fresh()
    assert len(list(tmp_path.iterdir())) == 2
    assert written == fresh and loaded == fresh
    assert [list(lv) for _, lv in loaded[:50]] == [list(lv) for _, lv in fresh[:50]]   # level order kept
    assert table.prefixes == fresh_table.prefixes and table.bound_keys == fresh_table.bound_keys
    for name in ("prefix_id", "bound_id", "loops", "mirror", "reload_mask", "above_mask"):
        a, b = getattr(table, name), getattr(fresh_table, name)
        assert a.dtype == b.dtype and np.array_equal(a, b), name


def test_planted_pickle_in_the_cache_folder_runs_no_code(tmp_path, monkeypatch):
    """The issue's attack: a pickle planted where the structure list is kept."""
    monkeypatch.setenv("CONVSCHED_CACHE_DIR", str(tmp_path))
    _fresh()
    assert len(structures.canonical_structures(DIMS6, frozenset(), None, None).table.loops)   # list and table kept
    entries = sorted(tmp_path.iterdir())
    payload = pickle.dumps(_Boom(tmp_path))
    for entry in entries:
        entry.write_bytes(payload)                                # at the current names
        entry.with_suffix(".pickle").write_bytes(payload)         # and at the old format's names
    _fresh()
    loaded = structures.canonical_structures(DIMS6, frozenset(), None, None)
    assert len(loaded.table.loops) == len(loaded)
    _fresh()
    assert not (tmp_path / "ran").exists()
    assert loaded == list(structures.enumerate_structures(DIMS6, frozenset(), None, None))


@pytest.mark.parametrize("damage", ["dims", "levels", "repeat", "table-ids", "table-shape"])
def test_malformed_structure_entries_are_misses(tmp_path, monkeypatch, damage):
    monkeypatch.setenv("CONVSCHED_CACHE_DIR", str(tmp_path))
    _fresh()
    structs = structures.canonical_structures(DIMS6, frozenset(), None, None)
    assert len(structs.table.loops) == len(structs)
    (lst,) = tmp_path.glob("structures-*.npz")
    (tab,) = tmp_path.glob("structure-table-*.npz")
    a = dict(np.load(lst))
    t = dict(np.load(tab))
    if damage == "dims":
        a["orders"][0, 0] = 42
    elif damage == "levels":
        a["levels"][-1, 0] = 8
    elif damage == "repeat":
        row = np.nonzero((a["orders"] >= 0).sum(axis=1) >= 2)[0][0]
        a["orders"][row, 1] = a["orders"][row, 0]
    elif damage == "table-ids":
        t["prefix_id"][0, 0] = 10**6
    else:
        t["above_mask"] = t["above_mask"][:-1]
    np.savez(lst, **a)
    np.savez(tab, **t)
    _fresh()
    loaded = structures.canonical_structures(DIMS6, frozenset(), None, None)
    table = loaded.table
    _fresh()
    assert loaded == list(structures.enumerate_structures(DIMS6, frozenset(), None, None))
    assert np.array_equal(table.above_mask, structures.build_structure_table(loaded).above_mask)


def test_int_array_checks():
    arrays = {"a": np.array([[1, 2]], dtype=np.int8)}
    assert int_array(arrays, "a", (None, 2), 0, 2).shape == (1, 2)
    for shape, lo, hi in (((None, 3), 0, 2), ((2, 2), 0, 2), ((None, 2), 2, 5)):
        with pytest.raises(MalformedEntry):
            int_array(arrays, "a", shape, lo, hi)
