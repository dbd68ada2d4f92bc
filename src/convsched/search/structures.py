"""The structures the optimizer searches: loop orders with buffer levels, and what ranks them.

A structure is a loop order (outermost first) of the dimensions that are
tiled, with a buffer level per operand. Only canonical ones are enumerated
(rules 1-3 and 7 of docs/optimizer.md: loops with one trip dropped, buffers
right below a loop their operand depends on, orders that another structure
matches or beats skipped). Lists with six or more loops are kept on disk
(`search/diskcache.py`).

Each list has a table of what the bounds look at in every structure (the
loops above each buffer, the loops that reload weight and output, the
input-bound key, the mirror image), built once and kept beside the list.
"""

from __future__ import annotations

import functools
import gc
import hashlib
import inspect
import itertools
from dataclasses import dataclass
from typing import Iterator, Mapping, Sequence, overload

import numpy as np

from ..core.arch import OPERANDS
from ..core.layer import DIMS, Layer
from ..model.closed_form import RELEVANT
from .diskcache import MalformedEntry, cached, int_array
from .space import SPATIAL_DIMS, Constraints

#: A loop order (outermost first) and the number of loops above each operand's buffer.
Structure = tuple[tuple[str, ...], dict[str, int]]

#: Row/column mirror image of each spatial dimension (rule 9).
MIRROR = {"OY": "OX", "OX": "OY", "FY": "FX", "FX": "FY"}


def _canonical_levels(order: Sequence[str]) -> Iterator[dict[str, int]]:
    L = len(order)
    choices = []
    for op in OPERANDS:
        choices.append([0] + [j + 1 for j, d in enumerate(order) if d in RELEVANT[op]])
    for levels in itertools.product(*choices):
        if L == 0 or max(levels) == L:
            yield dict(zip(OPERANDS, levels))


_RANK = {d: i for i, d in enumerate(DIMS)}


_NGC = frozenset({"N", "G", "C"})


def is_canonical(order: Sequence[str], levels: Mapping[str, int]) -> bool:
    """False for an (order, levels) that another enumerated structure provably matches or beats:
    rule 7 a-d of docs/optimizer.md, over the segments (runs of loops between consecutive buffer
    levels) of the order."""
    L = len(order)
    if L == 0:
        return True
    cuts = sorted(set(levels.values()) | {0, L})
    in_level = levels["input"]
    for a, b in zip(cuts, cuts[1:]):
        seg = order[a:b]
        below = [op for op in OPERANDS if levels[op] == b]
        if b <= in_level:                                      # segments the input sees
            for x, y in zip(seg, seg[1:]):
                if x in _NGC and y in _NGC and _RANK[x] > _RANK[y]:
                    return False                               # rule a
                if x in SPATIAL_DIMS and y in _NGC:
                    return False                               # rule b
        if b == L:                                             # rule d
            if any(d not in RELEVANT[op] for op in below for d in seg):
                return False
        if a >= in_level:                                      # rule c
            ok_last = [d for d in seg if all(d in RELEVANT[op] for op in below)]
            if not ok_last:
                return False
            last = min(ok_last, key=_RANK.__getitem__)
            rest = [d for d in seg if d != last]
            if seg[-1] != last or list(seg[:-1]) != sorted(rest, key=_RANK.__getitem__):
                return False
    return True


def structures(layer: Layer, cons: Constraints, cands: Mapping[str, np.ndarray]) -> StructureList:
    """All canonical (order, buffer levels) pairs; they depend only on which dims can be tiled."""
    tileable = tuple(d for d in DIMS if len(cands[d]))
    must = frozenset(d for d in DIMS if cons.must_tile(layer, d))
    orders = None if cons.orders is None else tuple(cons.orders)
    buffers = None if cons.buffers is None else tuple(sorted(cons.buffers.items()))
    return canonical_structures(tileable, must, orders, buffers)


class StructureList(Sequence[Structure]):
    """A list of structures with its `StructureTable`, built when first asked for.

    `disk_key` is set when the list is kept on disk: its table is then kept
    beside it (building it walks every structure).
    """

    def __init__(self, items: list[Structure], disk_key: tuple | None = None) -> None:
        self.items = items
        self.disk_key = disk_key

    @overload
    def __getitem__(self, i: int) -> Structure: ...
    @overload
    def __getitem__(self, i: slice) -> list[Structure]: ...

    def __getitem__(self, i):
        return self.items[i]

    def __len__(self) -> int:
        return len(self.items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, StructureList):
            return self.items == other.items
        return isinstance(other, list) and self.items == other

    __hash__ = object.__hash__

    @functools.cached_property
    def table(self) -> StructureTable:
        """What the ranking needs of every structure, as arrays."""
        fingerprint = _table_fingerprint()
        if self.disk_key is None or fingerprint is None:
            return build_structure_table(self.items)
        return cached("structure-table", (self.disk_key, fingerprint), lambda: build_structure_table(self.items),
                      _encode_table, lambda arrays: _decode_table(arrays, len(self.items)))


@functools.lru_cache(maxsize=64)
def canonical_structures(tileable: tuple[str, ...], must: frozenset[str],
                         orders: tuple[tuple[str, ...], ...] | None,
                         buffers: tuple[tuple[str, int], ...] | None) -> StructureList:
    """The canonical structures over the `tileable` dimensions whose orders hold every one of `must`
    (within the allowed `orders` and fixed `buffers`, when given); shared and, with six or more free
    loops, kept on disk."""
    cons_buffers = dict(buffers) if buffers is not None else None

    def compute() -> list[Structure]:
        return list(enumerate_structures(tileable, must, orders, cons_buffers))

    if orders is not None or len(tileable) < 6:
        return StructureList(compute())          # fast enough to enumerate every time
    # Six or more free loops take 0.2 s (seven: 3 s) per process: keep the list on disk,
    # keyed by the enumeration's own source so a change of the rules never reads a stale list.
    fingerprint = _enumeration_fingerprint()
    if fingerprint is None:
        return StructureList(compute())
    key = (tileable, tuple(sorted(must)), buffers, fingerprint)
    return StructureList(cached("structures", key, compute, _encode_structures, _decode_structures), key)


@functools.lru_cache(maxsize=1)
def _enumeration_fingerprint() -> str | None:
    """A hash of the code and tables the structure list follows from (None: source unavailable)."""
    try:
        src = "".join(inspect.getsource(f) for f in (enumerate_structures, _canonical_levels, is_canonical))
    except (OSError, TypeError):
        return None
    src += repr((DIMS, sorted((k, sorted(v)) for k, v in RELEVANT.items()), sorted(SPATIAL_DIMS), sorted(_NGC)))
    return hashlib.sha256(src.encode()).hexdigest()


def enumerate_structures(tileable: Sequence[str], must: frozenset[str],
                         orders: Sequence[Sequence[str]] | None,
                         fixed_buffers: Mapping[str, int] | None) -> Iterator[Structure]:
    """The canonical structures (see `canonical_structures`), in enumeration order, computed."""
    if orders is None:
        for k in range(len(tileable) + 1):
            for order in itertools.permutations(tileable, k):
                if not must <= set(order):
                    continue
                yield from ((order, lv) for lv in _canonical_levels(order) if is_canonical(order, lv))
        return
    seen = set()
    for template in orders:
        keep_ok = [d for d in template if d in tileable]
        for k in range(len(keep_ok) + 1):
            for sub in itertools.combinations(keep_ok, k):
                if not must <= set(sub):
                    continue
                if fixed_buffers is not None:
                    lv = {op: sum(1 for d in template[:b] if d in sub) for op, b in fixed_buffers.items()}
                    key = (sub, tuple(sorted(lv.items())))
                    if key not in seen:
                        seen.add(key)
                        yield sub, lv
                else:
                    for lv in _canonical_levels(sub):
                        key = (sub, tuple(sorted(lv.items())))
                        if key not in seen:
                            seen.add(key)
                            yield sub, lv


# ---- the on-disk form (diskcache: integer arrays only, checked when read) ----------------


def _encode_dims(seqs: Sequence[Sequence[str]]) -> np.ndarray:
    """Dimension names as indices into DIMS, one row per sequence, padded with -1."""
    out = np.full((len(seqs), len(DIMS)), -1, dtype=np.int8)
    for i, seq in enumerate(seqs):
        out[i, :len(seq)] = [_DIM_INDEX[d] for d in seq]
    return out


def _decode_dims(a: np.ndarray) -> list[tuple[str, ...]]:
    """`_encode_dims` back; each row must be distinct dims, then padding."""
    a = np.asarray(a, dtype=np.int64)
    n = (a >= 0).sum(axis=1)
    if not np.array_equal(a >= 0, np.arange(a.shape[1]) < n[:, None]):
        raise MalformedEntry("a loop order has a gap")
    ordered = np.sort(a, axis=1)
    if ((ordered[:, 1:] == ordered[:, :-1]) & (ordered[:, 1:] >= 0)).any():
        raise MalformedEntry("a loop order repeats a dimension")
    if not len(a):
        return []
    # the structures of one order are listed together: decode each run of equal rows once
    starts = np.concatenate([[0], np.nonzero((a[1:] != a[:-1]).any(axis=1))[0] + 1])
    names = [tuple(DIMS[i] for i in row if i >= 0) for row in a[starts].tolist()]
    return [t for t, k in zip(names, np.diff(np.append(starts, len(a))).tolist()) for _ in range(k)]


def _encode_structures(structs: list[Structure]) -> dict[str, np.ndarray]:
    return {"orders": _encode_dims([o for o, _ in structs]),
            "levels": np.array([[lv[op] for op in OPERANDS] for _, lv in structs], dtype=np.int8
                               ).reshape(len(structs), len(OPERANDS))}


def _decode_structures(arrays) -> list[Structure]:
    codes = int_array(arrays, "orders", (None, len(DIMS)), -1, len(DIMS) - 1)
    orders = _decode_dims(codes)
    levels = int_array(arrays, "levels", (len(orders), len(OPERANDS)), 0, len(DIMS))
    if (levels.max(axis=1, initial=0) > (codes >= 0).sum(axis=1)).any():
        raise MalformedEntry("a buffer level is below the loop nest")
    assert OPERANDS == ("input", "weight", "output")
    enabled = gc.isenabled()
    gc.disable()          # tens of thousands of new dicts: collecting in between only costs time
    try:
        return [(order, {"input": i, "weight": w, "output": o}) for order, (i, w, o) in zip(orders, levels.tolist())]
    finally:
        if enabled:
            gc.enable()


def _encode_table(t: StructureTable) -> dict[str, np.ndarray]:
    keys = [(k, ik) for k, ik in t.bound_keys]
    return {
        "prefix_ops": np.array([OPERANDS.index(op) for op, _ in t.prefixes], dtype=np.int8),
        "prefix_dims": _encode_dims([dims for _, dims in t.prefixes]),
        "prefix_id": t.prefix_id, "bound_id": t.bound_id, "loops": t.loops, "mirror": t.mirror,
        "reload_mask": t.reload_mask, "above_mask": t.above_mask,
        # a bound key: the reload-loop counts of weight and output, and the input key (() or 3 flags)
        "bound_reloads": np.array([k for k, _ in keys], dtype=np.int64).reshape(len(keys), 2),
        "bound_input": np.array([(1, *ik) if ik else (0, 0, 0, 0) for _, ik in keys], dtype=np.int8
                                ).reshape(len(keys), 4),
    }


def _decode_table(arrays, n: int) -> StructureTable:
    L, P = len(DIMS), len(OPERANDS)
    ops = int_array(arrays, "prefix_ops", (None,), 0, P - 1)
    dims = _decode_dims(int_array(arrays, "prefix_dims", (len(ops), L), -1, L - 1))
    reloads = int_array(arrays, "bound_reloads", (None, 2), 0, L)
    flags = int_array(arrays, "bound_input", (len(reloads), 4), 0, 1)
    bound_keys = [((int(a), int(b)), tuple(bool(x) for x in f[1:]) if f[0] else ())
                  for (a, b), f in zip(reloads.tolist(), flags.tolist())]
    return StructureTable(
        prefixes=[(OPERANDS[o], d) for o, d in zip(ops.tolist(), dims)],
        prefix_id=int_array(arrays, "prefix_id", (n, P), 0, len(ops) - 1).astype(np.int64),
        bound_keys=bound_keys,
        bound_id=int_array(arrays, "bound_id", (n,), 0, len(bound_keys) - 1).astype(np.int64),
        loops=int_array(arrays, "loops", (n,), 0, L).astype(np.int64),
        mirror=int_array(arrays, "mirror", (n,), -1, n - 1).astype(np.int64),
        reload_mask=int_array(arrays, "reload_mask", (n, 2, L), 0, 1).astype(bool),
        above_mask=int_array(arrays, "above_mask", (n, P, L), 0, 1).astype(bool))


@dataclass(frozen=True, eq=False)
class StructureTable:
    """What the ranking needs of every structure of a list, as arrays (pure functions of (order, levels)).

    prefix_id[i, o]: the loops above operand o's buffer, as an index into `prefixes`;
    bound_id[i]: (reload-loop counts of weight and output, input-bound key) as an index into `bound_keys`;
    mirror[i]: the index of the structure with rows and columns swapped (-1: not in the list).
    """

    prefixes: list[tuple[str, tuple[str, ...]]]
    prefix_id: np.ndarray
    bound_keys: list[tuple[tuple[int, int], tuple]]
    bound_id: np.ndarray
    loops: np.ndarray
    mirror: np.ndarray
    reload_mask: np.ndarray     # [i, o, d]: loop d multiplies weight (o=0) / output (o=1) traffic (F1)
    above_mask: np.ndarray      # [i, p, d]: loop d is above operand p's buffer (p in OPERANDS order)

    @functools.cached_property
    def index_mask(self) -> np.ndarray:
        """[i, o, d]: loop d is above the weight (o=0) / output (o=1) buffer and indexes that operand."""
        ops = ("weight", "output")
        indexes = np.array([[d in RELEVANT[op] for d in DIMS] for op in ops])
        return self.above_mask[:, [OPERANDS.index(op) for op in ops], :] & indexes


def build_structure_table(structs: Sequence[Structure]) -> StructureTable:
    """The `StructureTable` of a list of structures, computed."""
    prefixes: dict[tuple, int] = {}
    bound_keys: dict[tuple, int] = {}
    pid = np.zeros((len(structs), len(OPERANDS)), dtype=np.int64)
    bid = np.zeros(len(structs), dtype=np.int64)
    reload_mask = np.zeros((len(structs), 2, len(DIMS)), dtype=bool)
    above_mask = np.zeros((len(structs), len(OPERANDS), len(DIMS)), dtype=bool)
    index = {}
    for i, (order, levels) in enumerate(structs):
        for o, op in enumerate(OPERANDS):
            pid[i, o] = prefixes.setdefault((op, tuple(order[:levels[op]])), len(prefixes))
        k = tuple(len(reload_loops(order, levels[op], op)) for op in ("weight", "output"))
        bid[i] = bound_keys.setdefault((k, input_bound_key(order, levels)), len(bound_keys))
        index[(order, tuple(levels[op] for op in OPERANDS))] = i
        for p, op in enumerate(OPERANDS):
            for d in order[:levels[op]]:
                above_mask[i, p, _DIM_INDEX[d]] = True
        for o, op in enumerate(("weight", "output")):
            for d in reload_loops(order, levels[op], op):
                reload_mask[i, o, _DIM_INDEX[d]] = True
    mirror = np.full(len(structs), -1, dtype=np.int64)
    for (order, lv), i in index.items():
        mirror[i] = index.get((tuple(MIRROR.get(d, d) for d in order), lv), -1)
    return StructureTable(list(prefixes), pid, list(bound_keys), bid,
                          np.array([len(o) for o, _ in structs], dtype=np.int64), mirror,
                          reload_mask, above_mask)


_DIM_INDEX = {d: i for i, d in enumerate(DIMS)}


@functools.lru_cache(maxsize=1)
def _table_fingerprint() -> str | None:
    """A hash of the code the structure table follows from (None: source unavailable)."""
    try:
        src = "".join(inspect.getsource(f) for f in (build_structure_table, StructureTable, reload_loops,
                                                     input_bound_key))
    except (OSError, TypeError):
        return None
    return hashlib.sha256((src + repr(sorted(MIRROR.items()))).encode()).hexdigest()


@functools.lru_cache(maxsize=1 << 16)
def reload_loops(order: tuple[str, ...], level: int, op: str) -> tuple[str, ...]:
    """The loops whose trips multiply a weight or output buffer's traffic (F1).

    Those above the buffer that the operand does not depend on and that lie
    outside its innermost loop it does depend on: a loop inside that one
    only repeats the resident block (rule 3 moves buffers past such loops,
    but fixed buffer levels need not be canonical).
    """
    above = order[:level]
    inner = max((j for j, d in enumerate(above) if d in RELEVANT[op]), default=0)
    return tuple(d for d in above[:inner] if d not in RELEVANT[op])


def input_bound_key(order: tuple[str, ...], levels: Mapping[str, int]) -> tuple:
    """What the input-reads bound (`prune.input_reads_bound`) looks at in a structure: () when K is
    not above the input buffer, else (K outermost, K right above the buffer, an N/G/C loop inside K)."""
    return _input_key(order, levels["input"])


@functools.lru_cache(maxsize=1 << 16)
def _input_key(order: tuple[str, ...], level: int) -> tuple:
    above = order[:level]
    if "K" not in above:
        return ()
    pk = above.index("K")
    return (pk == 0, pk == len(above) - 1, any(d in _NGC for d in above[pk + 1:]))
