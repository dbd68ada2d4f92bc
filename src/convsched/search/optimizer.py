"""The optimizer: a provably optimal schedule per layer, by exhaustive-equivalent search.

The space is every schedule of the semantics: any order of the tiled
dimensions, any tile sizes (no divisibility), any buffer level per operand,
subject to the capacity. It is reduced only by exact equivalences and
dominance arguments, rules 1-9 of docs/optimizer.md, and every remaining
candidate is evaluated exactly with the vectorised model. The objective is
least total bytes (or input + weight reads), ties broken by the smaller total
buffer, then by fewer tiles.

`optimize_capacities` searches several capacities (a sweep) in one pass over
the structures, with the same answer for each as `optimize_layer` gives it
alone. It reads as five steps:

1. check   -- the layer, constraints, objective and architectures are searchable;
2. seed    -- each capacity's best starts from its incumbent, if given;
3. rank    -- every canonical structure (`structures`) ranked best-first with its
              bounds (`ranking`);
4. screen  -- walk the ranking, skipping structures no capacity can win with,
              and search the others' tiles (`tiling`, over `gridaxes` and `grid`,
              pruned with `prune`);
5. collect -- each capacity's best as a `LayerResult` (`NoFeasibleSchedule` where none fits).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Mapping, Sequence

import numpy as np

from ..core.arch import OPERANDS, Architecture
from ..core.errors import ConvschedError, NoFeasibleSchedule
from ..core.layer import Layer
from ..core.limits import check_optimizer_layer
from ..core.schedule import Schedule
from ..model.closed_form import Traffic, evaluate
from .alloc import tune_allocator
from .best import Best
from .gridaxes import NO_BAR
from .prune import capacity_mask
from .ranking import Ranking, least_buffer_words, least_bytes, mirror_twins, rank_structures
from .space import OBJECTIVES, Constraints, Objective, StructureContext, TileCandidates, check_searchable
from .structures import structures
from .tiling import Slot, search_structure


@dataclass(frozen=True)
class LayerResult:
    """The optimal schedule of a layer, its exact traffic and how much the search evaluated.

    >>> from convsched import Architecture, Layer, optimize_layer
    >>> best = optimize_layer(Layer(K=16, C=8, OY=8, OX=8, FY=3, FX=3, PY=1, PX=1), Architecture(capacity=1024))
    >>> best.traffic.total_bytes, best.schedule.buffers, best.candidates > 0
    (2688, {'input': 0, 'weight': 1, 'output': 3}, True)
    """

    layer: Layer
    schedule: Schedule
    traffic: Traffic
    candidates: int      # tile candidates evaluated
    structures: int      # (order, buffer placement) pairs searched


def no_schedule_fits(layer: Layer, arch: Architecture, smallest: int, prefix: str = "") -> NoFeasibleSchedule:
    """The error for a `layer` no schedule of which fits `arch`, `smallest` being the least capacity
    (bytes) at which one does; its message after `prefix` (e.g. "layer conv1: ")."""
    return NoFeasibleSchedule(
        f"{prefix}no schedule of layer {layer} fits the buffer capacity; the smallest that fits is {smallest} "
        f"bytes ({'double-buffered, ' if arch.double_buffer else ''}try --buffer {smallest}B or more)",
        layer, smallest)


def optimize_layer(layer: Layer, arch: Architecture, constraints: Constraints | None = None,
                   objective: Objective = "bytes", incumbent: Schedule | None = None) -> LayerResult:
    """The optimal schedule of `layer` on `arch` (whose capacity must be set).

    `incumbent`, a schedule of the searched space known to fit (e.g. the best
    textbook dataflow), lets the bounds prune from the start; the answer is
    the same with or without it. Raises NoFeasibleSchedule when no schedule fits:

    >>> layer = Layer(K=16, C=8, OY=8, OX=8, FY=3, FX=3, PY=1, PX=1)
    >>> best = optimize_layer(layer, Architecture(capacity=1024))
    >>> best.traffic.total_bytes, best.schedule.order, best.schedule.buffers
    (2688, ('K', 'OX', 'OY'), {'input': 0, 'weight': 1, 'output': 3})
    >>> try:
    ...     optimize_layer(layer, Architecture(capacity=4))
    ... except NoFeasibleSchedule as e:
    ...     e.smallest_capacity
    6
    """
    (result,) = optimize_capacities(layer, [arch], constraints, objective, [incumbent])
    return result


def optimize_capacities(layer: Layer, archs: Sequence[Architecture], constraints: Constraints | None = None,
                        objective: Objective = "bytes", incumbents: Sequence[Schedule | None] | None = None
                        ) -> list[LayerResult]:
    """`optimize_layer` for each of `archs` at once (a sweep): the same answers, in one pass.

    The architectures may differ only in their shared capacity. Each
    structure is searched once for all capacities whose bounds it passes, so
    its set-up and every pruning step are shared. Raises NoFeasibleSchedule
    when no schedule fits one of them (`fits_some` tells which fit).
    """
    cons = constraints or Constraints()
    archs = list(archs)
    incumbents = list(incumbents) if incumbents is not None else [None] * len(archs)
    _check(layer, archs, cons, objective, incumbents)
    tune_allocator()            # large grid steps: reuse heap memory instead of re-faulting it
    cands = TileCandidates.of(layer, cons)
    slots = _seed(archs, objective, incumbents)
    structs = structures(layer, cons, cands)
    ranking = rank_structures(cands, archs, objective, structs, mirror_twins(layer, cons, structs),
                              [s.best.bar for s in slots])
    # the vectorised steps take each capacity as a per-point byte limit
    word_arch = archs[0].with_capacity(None) if archs[0].capacity is not None else archs[0]
    n_struct = np.zeros(len(archs), dtype=np.int64)
    n_cand = np.zeros(len(archs), dtype=np.int64)
    for p, active, bounds in _screen(ranking, slots):
        order, levels = structs[ranking.index[p]]
        ctx = StructureContext(layer, word_arch, objective, order, levels, cands, p)
        found = search_structure(ctx, [slots[k] for k in active], bounds,
                                 dict(zip(OPERANDS, ranking.words[p].tolist())))
        n_struct[active] += 1
        n_cand[active] += found
    return _collect(layer, cons, cands, slots, incumbents, n_cand, n_struct)


def _check(layer: Layer, archs: list[Architecture], cons: Constraints, objective: str,
           incumbents: list[Schedule | None]) -> None:
    """Refuse what the search cannot take, before any work."""
    cons.check(layer)
    try:
        check_optimizer_layer(layer)      # its per-axis tables stay within docs/limits.md
    except ConvschedError as e:
        raise ConvschedError(f"layer {layer}: {e}") from None
    if objective not in OBJECTIVES:
        raise ConvschedError(f"unknown objective {objective!r}; use one of {', '.join(OBJECTIVES)}")
    for a in archs:
        check_searchable(a)
    if len(archs) > 1 and any(a.capacity is None or a.with_capacity(None) != archs[0].with_capacity(None)
                              for a in archs):
        raise ValueError("architectures searched together may differ only in their shared capacity")
    if len(incumbents) != len(archs):
        raise ValueError(f"{len(incumbents)} incumbents for {len(archs)} architectures; give one (or None) each")


def _seed(archs: list[Architecture], objective: Objective, incumbents: list[Schedule | None]) -> list[Slot]:
    """One slot per capacity, its best seeded with its incumbent."""
    slots = []
    for arch, inc in zip(archs, incumbents):
        best = Best()
        if inc is not None:
            best.seed(inc, arch, objective)
        slots.append(Slot(arch, arch.capacity if arch.capacity is not None else int(NO_BAR), best))
    return slots


def _screen(ranking: Ranking, slots: list[Slot], block: int = 256) -> Iterator[tuple[int, list[int], list[int]]]:
    """The ranking's positions worth searching: (position, slots to search it for, their bounds).

    Best-first (rule 8 of docs/optimizer.md): once a structure's capacity-free
    bound exceeds a slot's best, no later one can win there. Positions are
    screened a block at a time against the bests as they stand (a superset of
    what the exact check keeps, since the bests only improve); the exact check
    then runs per position, as the bests improve while the caller searches.
    """
    bests = [s.best for s in slots]
    live = list(range(len(slots)))
    for start in range(0, len(ranking.index), block):
        bars = np.array([NO_BAR if b.key is None else b.key[0] for b in bests], dtype=np.int64)
        live = [k for k in live if ranking.bound0[start] <= bars[k]]
        if not live:
            return
        end = min(start + block, len(ranking.index))
        lk = np.array(live)
        screen = (ranking.fits[lk, start:end] & (ranking.bound[lk, start:end] <= bars[lk, None])
                  & (ranking.bound0[start:end] <= bars[lk, None])).any(axis=0)
        at = np.nonzero(screen)[0]
        # plain lists for the exact check, which runs once per screened position
        fits, bounds = ranking.fits[:, start + at].T.tolist(), ranking.bound[:, start + at].T.tolist()
        bound0, least_buf = ranking.bound0[start + at].tolist(), ranking.buf[start + at].tolist()
        for j, p in enumerate((start + at).tolist()):
            active = []
            for k in list(live):
                key = bests[k].key
                if key is not None and bound0[j] > key[0]:
                    live.remove(k)
                    continue
                bound = bounds[j][k]
                if not fits[j][k] or key is not None and (
                        bound > key[0] or (bound == key[0] and least_buf[j] > key[1])):
                    continue   # the capacity's trips cost more than the best, or at best a tie with more buffer
                active.append(k)
            if active:
                yield p, active, [bounds[j][k] for k in active]


def _collect(layer: Layer, cons: Constraints, cands: TileCandidates, slots: list[Slot],
             incumbents: list[Schedule | None], n_cand: np.ndarray, n_struct: np.ndarray) -> list[LayerResult]:
    """Each slot's best as a LayerResult; NoFeasibleSchedule for a slot where nothing fits."""
    out: list[LayerResult] = []
    for k, slot in enumerate(slots):
        found = slot.best.found
        if found is None and slot.best.seeded:
            raise ConvschedError(f"the incumbent schedule {incumbents[k]} is not in the searched space")
        if found is None:
            raise no_schedule_fits(layer, slot.arch, smallest_capacity(layer, slot.arch, cons, cands))
        sched = Schedule(layer, tuple(found.order), found.tiles, found.levels)
        out.append(LayerResult(layer, sched, evaluate(sched, slot.arch), int(n_cand[k]), int(n_struct[k])))
    return out


def smallest_capacity(layer: Layer, arch: Architecture, cons: Constraints,
                      cands: Mapping[str, np.ndarray] | None = None) -> int:
    """Least on-chip bytes any schedule of the constrained space needs on `arch` (its capacity aside):
    the least buffers of the structures, every tile at its smallest (F3 of docs/optimizer.md)."""
    return int(least_structure_bytes(layer, arch, cons, cands).sum(axis=1).min())


def fits_some(layer: Layer, archs: Sequence[Architecture], cons: Constraints) -> list[bool]:
    """Per architecture, whether some schedule of the constrained space fits its capacity (shared
    or per operand): one structure's least buffers do (F3)."""
    return [bool(np.any(capacity_mask(a, dict(zip(OPERANDS, least_structure_bytes(layer, a, cons).T)))))
            for a in archs]


def least_structure_bytes(layer: Layer, arch: Architecture, cons: Constraints,
                          cands: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
    """Bytes (structures x OPERANDS) of every structure's buffers with every tile at its smallest
    (`cands`: the tile candidates, default those of `cons`)."""
    if cands is None:
        cands = TileCandidates.of(layer, cons)
    elif not isinstance(cands, TileCandidates):
        cands = TileCandidates(layer, cands)
    return least_bytes(arch, least_buffer_words(layer, structures(layer, cons, cands), cands))


# ---------------------------------------------------------------------------
# textbook dataflows: fixed loop order and buffer placement, best tiles

#: name -> (loop order, buffer levels). Filters are not tiled. The stationary
#: operand's buffer sits above the loops it does not depend on, so its block
#: stays on chip while those loops run; the other two buffers hold one tile.
TEXTBOOK: dict[str, tuple[tuple[str, ...], dict[str, int]]] = {
    "weight-stationary": (("G", "K", "C", "N", "OY", "OX"), {"weight": 3, "input": 6, "output": 6}),
    "output-stationary": (("N", "G", "K", "OY", "OX", "C"), {"output": 5, "input": 6, "weight": 6}),
    "input-stationary": (("N", "G", "C", "OY", "OX", "K"), {"input": 5, "weight": 6, "output": 6}),
}


def textbook_dataflow(layer: Layer, arch: Architecture, name: str, objective: Objective = "bytes"
                      ) -> LayerResult | None:
    """The best schedule of one textbook dataflow (None when none of its schedules fits)."""
    return textbook_dataflows(layer, [arch], name, objective)[0]


def textbook_dataflows(layer: Layer, archs: Sequence[Architecture], name: str,
                       objective: Objective = "bytes") -> list[LayerResult | None]:
    """`textbook_dataflow` for architectures that differ only in their shared capacity, in one pass."""
    order, levels = TEXTBOOK[name]
    cons = Constraints(orders=(order,), buffers=levels, untiled=frozenset({"FY", "FX"}))
    fits = fits_some(layer, archs, cons)
    found = iter(optimize_capacities(layer, [a for a, f in zip(archs, fits) if f], cons, objective)
                 if any(fits) else [])
    return [next(found) if f else None for f in fits]


def best_textbook(layer: Layer, arch: Architecture, objective: Objective = "bytes"
                  ) -> tuple[str, LayerResult] | None:
    """The best of the textbook dataflows (by total bytes, then buffer), with its name."""
    found = [(name, r) for name in TEXTBOOK if (r := textbook_dataflow(layer, arch, name, objective)) is not None]
    if not found:
        return None
    return min(found, key=lambda nr: (nr[1].traffic.total_bytes, nr[1].traffic.total_buffer_bytes))
