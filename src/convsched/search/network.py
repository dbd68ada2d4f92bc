"""The optimizer per network and sweeps over buffer sizes.

`optimize_network` solves every distinct layer shape of a network once (two
layers with equal `Layer` and equal effective word sizes share one solve),
in parallel worker processes, and maps the results back in network order.
Each layer also gets the three textbook dataflows with their best tiles
(`search.TEXTBOOK`), so the report can say how much the optimal schedule
saves over the best of them.

`sweep` repeats this over log-spaced buffer capacities, each distinct layer's
sizes searched in one pass (`search.optimize_capacities`, one task per
layer); sizes where some layer fits no schedule are reported as infeasible.

"No schedule fits" is raised as `NoFeasibleSchedule` (out of a worker
process too); `optimize_network` names the layer in it. A sweep searches each
layer only at the sizes where some schedule fits (`sweep_layer` finds the
least such size first) and records the smaller sizes as infeasible points.

Nothing here prints: progress is reported through an optional
`progress(done, total)` callback.
"""

from __future__ import annotations

import csv
import io
import math
import time
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterable, Mapping, Sequence, TypeVar

from ..core.arch import OPERANDS, Architecture
from ..core.errors import ConvschedError, NoFeasibleSchedule
from ..core.layer import DIMS, Layer
from ..core.limits import MAX_SWEEP_POINTS, available_cpus, cap_workers, check_optimizer_layer
from ..core.procs import worker_pool
from ..model import bounds
from ..model.closed_form import Traffic
from ..networks import NetLayer, Network
from .best import schedule_key
from .optimizer import (TEXTBOOK, Constraints, LayerResult, no_schedule_fits, optimize_capacities,
                        smallest_capacity, textbook_dataflows)
from .space import check_searchable

#: Objectives of `optimize_network`. "bytes-per-mac" ranks each layer exactly
#: like "bytes" (a layer's MAC count is fixed), with one capacity per layer.
OBJECTIVES: tuple[str, ...] = ("bytes", "reads", "bytes-per-mac")
_SEARCH_OBJECTIVE = {"bytes": "bytes", "reads": "reads", "bytes-per-mac": "bytes"}

Progress = Callable[[int, int], None]


# ---------------------------------------------------------------------------
# results


def objective_bytes(traffic: Traffic, objective: str) -> int:
    """The bytes an objective counts: all traffic, or input + weight reads only ("reads")."""
    if objective == "reads":
        return traffic.input.read_bytes + traffic.weight.read_bytes
    return traffic.total_bytes


@dataclass(frozen=True)
class LayerSolution:
    """What one solve of a distinct layer yields (picklable: it crosses process boundaries)."""

    result: LayerResult
    dataflows: dict[str, LayerResult | None]   # each textbook dataflow, None when none of it fits
    seconds: float


@dataclass(frozen=True)
class LayerEntry:
    """One layer of a network with its optimal schedule and the best textbook dataflow."""

    name: str
    net_layer: NetLayer
    arch: Architecture                       # the architecture it was solved on (layer word sizes applied)
    result: LayerResult
    textbook_name: str | None
    textbook: LayerResult | None
    dataflows: dict[str, LayerResult | None]
    objective: str = "bytes"
    # wall time of its solve (shared by equal layers; in a sweep, its share of the one-pass solve)
    solve_seconds: float = 0.0

    @property
    def traffic(self) -> Traffic:
        return self.result.traffic

    @property
    def saving(self) -> float | None:
        """Best textbook dataflow's objective bytes over the optimal schedule's (>= 1)."""
        if self.textbook is None:
            return None
        opt = objective_bytes(self.result.traffic, self.objective)
        tb = objective_bytes(self.textbook.traffic, self.objective)
        return tb / opt if opt else (1.0 if tb == 0 else math.inf)

    def to_json(self) -> dict[str, Any]:
        t = self.result.traffic
        s = self.result.schedule
        sd = s.to_dict()
        d: dict[str, Any] = {
            "name": self.name,
            "kind": self.net_layer.kind,
            "layer": self.net_layer.layer.to_dict(),
            "schedule": {"order": sd["order"], "tiles": sd["tiles"], "buffers": sd["buffers"]},
            # the word sizes it was solved with (a quantized layer's own may differ from the network's):
            # evaluate/simulate/codegen/run-c --layer NAME read them from here
            "arch": self.arch.to_dict(),
        }
        d.update(t.to_full_json())
        d["objective_bytes"] = objective_bytes(t, self.objective)
        d["candidates"] = self.result.candidates
        d["structures"] = self.result.structures
        d["solve_seconds"] = self.solve_seconds
        if self.textbook is not None:
            tsd = self.textbook.schedule.to_dict()
            d["textbook"] = {"name": self.textbook_name, "total_bytes": self.textbook.traffic.total_bytes,
                             "objective_bytes": objective_bytes(self.textbook.traffic, self.objective),
                             "schedule": {"order": tsd["order"], "tiles": tsd["tiles"],
                                          "buffers": tsd["buffers"]},
                             "saving": self.saving}
        else:
            d["textbook"] = None
        d["dataflows"] = {n: (r.traffic.total_bytes if r is not None else None) for n, r in self.dataflows.items()}
        d["lower_bound_bytes"] = self.lower_bound_bytes
        d["ratio_to_bound"] = t.total_bytes / self.lower_bound_bytes if self.lower_bound_bytes else None
        return d

    @property
    def lower_bound_bytes(self) -> int:
        """The largest valid lower bound on this layer's traffic at its capacity (docs/bounds.md)."""
        return bounds.lower_bound_bytes(self.net_layer.layer, self.arch)


def _sum_or_none(values: Iterable[int | None]) -> int | None:
    total = 0
    for v in values:
        if v is None:
            return None
        total += v
    return total


@dataclass(frozen=True)
class NetworkResult:
    """Per-layer optimal schedules (network order) and network totals.

    >>> from convsched import Architecture, load_target, optimize_network
    >>> res = optimize_network(load_target("K=16,C=8,OY=8,OX=8,FY=3,FX=3,PY=1,PX=1"), Architecture(capacity=1024),
    ...                        workers=1)
    >>> res.total_bytes, res.unique_layers, res.entries[0].result.schedule.buffers
    (2688, 1, {'input': 0, 'weight': 1, 'output': 3})
    """

    network: Network
    arch: Architecture
    objective: str
    entries: tuple[LayerEntry, ...]
    unique_layers: int
    seconds: float = 0.0

    @property
    def total_bytes(self) -> int:
        return sum(e.traffic.total_bytes for e in self.entries)

    @property
    def objective_bytes(self) -> int:
        return sum(objective_bytes(e.traffic, self.objective) for e in self.entries)

    @property
    def macs(self) -> int:
        return sum(e.traffic.macs for e in self.entries)

    @property
    def bytes_per_mac(self) -> float:
        return self.total_bytes / self.macs if self.macs else 0.0

    @property
    def lower_bound_bytes(self) -> int:
        """Sum of the layers' lower bounds: no schedule of the network moves less."""
        return sum(e.lower_bound_bytes for e in self.entries)

    def operand_bytes(self) -> dict[str, int]:
        """Network bytes per operand: input read, weight read, output read + write."""
        return {op: sum(e.traffic.operand(op).bytes for e in self.entries) for op in OPERANDS}

    @property
    def textbook_total_bytes(self) -> int | None:
        """Sum over layers of each layer's best textbook dataflow (None if some layer has none that fits)."""
        return _sum_or_none(e.textbook.traffic.total_bytes if e.textbook else None for e in self.entries)

    @property
    def textbook_objective_bytes(self) -> int | None:
        return _sum_or_none(objective_bytes(e.textbook.traffic, self.objective) if e.textbook else None
                            for e in self.entries)

    @property
    def saving(self) -> float | None:
        """Textbook objective bytes / optimal objective bytes over the network (total bytes by default)."""
        tb, opt = self.textbook_objective_bytes, self.objective_bytes
        if tb is None:
            return None
        return tb / opt if opt else 1.0

    def dataflow_total_bytes(self) -> dict[str, int | None]:
        """Network bytes of each textbook dataflow used for every layer (None if it does not fit somewhere)."""
        return {name: _sum_or_none(e.dataflows[name].traffic.total_bytes if e.dataflows.get(name) else None
                                   for e in self.entries) for name in TEXTBOOK}

    def to_json(self) -> dict[str, Any]:
        return {
            "network": self.network.name,
            "arch": self.arch.to_dict(),
            "objective": self.objective,
            "layers": [e.to_json() for e in self.entries],
            "total_bytes": self.total_bytes,
            "macs": self.macs,
            "bytes_per_mac": self.bytes_per_mac,
            "operand_bytes": self.operand_bytes(),
            "objective_bytes": self.objective_bytes,
            "textbook_total_bytes": self.textbook_total_bytes,
            "saving": self.saving,
            "dataflow_total_bytes": self.dataflow_total_bytes(),
            "lower_bound_bytes": self.lower_bound_bytes,
            "ratio_to_bound": self.total_bytes / self.lower_bound_bytes if self.lower_bound_bytes else None,
            "unique_layers": self.unique_layers,
            "seconds": self.seconds,
        }

    def to_csv(self) -> str:
        """One row per layer: shape, schedule, bytes per operand, totals, textbook and saving."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        shape = ["N", "G", "K", "C", "OY", "OX", "FY", "FX", "SY", "SX", "DY", "DX", "PY", "PX", "IY", "IX"]
        w.writerow(["name", "kind", *shape, "order", "tiles", "buffers", "input_read_bytes", "weight_read_bytes",
                    "output_read_bytes", "output_write_bytes", "total_bytes", "macs", "bytes_per_mac",
                    "buffer_bytes", "textbook", "textbook_bytes", "saving"])
        for e in self.entries:
            t, s = e.traffic, e.result.schedule
            w.writerow([e.name, e.net_layer.kind, *(getattr(e.net_layer.layer, f) for f in shape),
                        " ".join(s.order), " ".join(f"{d}={s.tiles[d]}" for d in s.order),
                        " ".join(f"{op}={s.buffers[op]}" for op in OPERANDS),
                        t.input.read_bytes, t.weight.read_bytes, t.output.read_bytes, t.output.write_bytes,
                        t.total_bytes, t.macs, f"{t.bytes_per_mac:.6g}", t.total_buffer_bytes,
                        e.textbook_name or "", e.textbook.traffic.total_bytes if e.textbook else "",
                        f"{e.saving:.6g}" if e.saving is not None else ""])
        return buf.getvalue()


# ---------------------------------------------------------------------------
# solving distinct layers, possibly in worker processes


def layer_arch(nl: NetLayer, arch: Architecture) -> Architecture:
    """The architecture a network layer runs on: word sizes its source gives (quantized ONNX) win."""
    kw = {}
    if nl.input_bits is not None:
        kw["input_bits"] = nl.input_bits
    if nl.weight_bits is not None:
        kw["weight_bits"] = nl.weight_bits
    return replace(arch, **kw) if kw else arch


def solve_layer(layer: Layer, arch: Architecture, constraints: Constraints | None, objective: str) -> LayerSolution:
    """The optimal schedule of one layer and each textbook dataflow's best (NoFeasibleSchedule when
    no schedule fits)."""
    (solved,) = solve_capacities(layer, [arch], constraints, objective)
    return solved


def solve_capacities(layer: Layer, archs: Sequence[Architecture], constraints: Constraints | None,
                     objective: str) -> list[LayerSolution]:
    """`solve_layer` for architectures that differ only in their shared capacity, in one pass
    (`search.optimize_capacities`; NoFeasibleSchedule when one of them fits no schedule). Each
    solution's `seconds` is its share of the batch's time. A worker process's task."""
    t0 = time.perf_counter()
    sobj = _SEARCH_OBJECTIVE[objective]
    flows = {name: textbook_dataflows(layer, archs, name, sobj) for name in TEXTBOOK}
    # the best textbook schedule is in the unconstrained space: the search starts from its traffic
    seeds: list[Any] = [None] * len(archs)
    if constraints is None or constraints == Constraints():
        for k in range(len(archs)):
            fitting = [per_arch[k] for per_arch in flows.values() if per_arch[k] is not None]
            if fitting:
                seeds[k] = min(fitting, key=lambda r: schedule_key(r.traffic, r.schedule, sobj)).schedule
    results = optimize_capacities(layer, archs, constraints, sobj, seeds)
    share = (time.perf_counter() - t0) / len(archs)
    return [LayerSolution(r, {name: per_arch[k] for name, per_arch in flows.items()}, share)
            for k, r in enumerate(results)]


@dataclass(frozen=True)
class SweptLayer:
    """One layer over some of a sweep's sizes (a worker's answer, picklable): the least capacity at
    which some schedule fits, and the solution at each size that large or larger."""

    smallest_capacity: int
    solutions: dict[Architecture, LayerSolution]


def sweep_layer(layer: Layer, archs: Sequence[Architecture], constraints: Constraints | None,
                objective: str) -> SweptLayer:
    """`solve_capacities` at the sizes of `archs` (shared capacities) where some schedule fits."""
    need = smallest_capacity(layer, archs[0], constraints or Constraints())
    fit = [a for a in archs if a.capacity is not None and a.capacity >= need]
    return SweptLayer(need, dict(zip(fit, solve_capacities(layer, fit, constraints, objective))) if fit else {})


def default_workers() -> int:
    return min(2, available_cpus())


Key = tuple[Layer, Architecture]
#: What a task gives for one batch of keys (a layer at several capacities).
R = TypeVar("R")


def task_batches(keys: Sequence[Key], workers: int = 1) -> list[list[Key]]:
    """Keys grouped into one task per layer and architecture but for the shared capacity (a sweep's
    sizes are searched in one pass); the largest layers first. With fewer tasks than workers, the
    largest task is split (every other size, so that both halves get small and large buffers)."""
    groups: dict[tuple, list[Key]] = {}
    for k in keys:
        layer, arch = k
        groups.setdefault((layer, arch.with_capacity(None)) if arch.capacity is not None else k, []).append(k)
    batches = list(groups.values())
    while len(batches) < workers and max(map(len, batches), default=0) > 1:
        big = max(batches, key=len)
        batches.remove(big)
        batches += [big[0::2], big[1::2]]
    return sorted(batches, key=lambda g: -g[0][0].macs)


def solve_many(keys: Sequence[Key], task: Callable[[Layer, list[Architecture], Constraints | None, str], R],
               constraints: Constraints | None = None, objective: str = "bytes", workers: int | None = None,
               progress: Progress | None = None) -> list[tuple[list[Key], R]]:
    """Run `task` (`solve_capacities` or `sweep_layer`) on distinct (layer, architecture) pairs,
    the largest layers first; returns each batch of keys with what the task gave for it.

    Pairs that differ only in the shared capacity are one batch, one task.
    Bad input is refused before (`check_constraints`); an error a task raises
    (NoFeasibleSchedule among them) stops the other tasks and is raised.
    """
    keys = list(dict.fromkeys(keys))
    # more workers than CPUs only add processes and memory (docs/limits.md)
    workers = cap_workers(default_workers() if workers is None else workers)
    total = len(keys)
    batches = task_batches(keys, workers)
    out: list[tuple[list[Key], R]] = []
    done_keys = 0

    def record(batch: list[Key], result: R) -> None:
        nonlocal done_keys
        out.append((batch, result))
        done_keys += len(batch)
        if progress:
            progress(done_keys, total)

    if workers == 1 or len(batches) <= 1:
        if progress:
            progress(0, total)
        for b in batches:
            record(b, task(b[0][0], [a for _, a in b], constraints, objective))
        return out
    # All workers are forked at the first submit, before `progress` is first called, so a caller
    # that starts a progress-bar thread from the callback forks no thread. An error, Ctrl-C or
    # SIGTERM (see core/procs.py) kills the workers at once.
    with worker_pool(min(workers, len(batches))) as pool:
        pending: dict[Future, list[Key]] = {
            pool.submit(task, b[0][0], [a for _, a in b], constraints, objective): b for b in batches}
        if progress:
            progress(0, total)
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for f in done:
                record(pending.pop(f), f.result())
    return out


def check_constraints(network: Network, arch: Architecture, constraints: Constraints | None,
                      objective: str) -> None:
    """Bad objective, architecture or constraints, before any work starts (naming the layer)."""
    if objective not in OBJECTIVES:
        raise ConvschedError(f"unknown objective {objective!r}; use one of {', '.join(OBJECTIVES)}")
    if arch.capacity is None and arch.capacity_per_operand is None:
        raise ConvschedError("the architecture has no buffer capacity; give --buffer SIZE "
                             "(or 'buffer' in the architecture file)")
    check_searchable(arch)
    if not network.layers:
        raise ConvschedError(f"network {network.name!r} has no conv or FC layers to optimize")
    for nl in network.layers:        # before any worker starts: the optimizer's size limits
        try:
            check_optimizer_layer(nl.layer)
        except ConvschedError as e:
            raise ConvschedError(f"layer {nl.name}: {e}") from None
    if constraints is None:
        return
    if constraints.buffers is not None:
        missing = [op for op in OPERANDS if op not in constraints.buffers]
        if missing:
            raise ConvschedError(f"fixed buffer levels need input, weight and output; missing {', '.join(missing)}")
    seen: set[Layer] = set()
    for nl in network.layers:
        if nl.layer in seen:
            continue
        seen.add(nl.layer)
        try:
            constraints.check(nl.layer)
            _check_orders_cover(nl.layer, constraints)
        except ConvschedError as e:
            raise ConvschedError(f"layer {nl.name}: {e}") from None


def _check_orders_cover(layer: Layer, cons: Constraints) -> None:
    """A dimension whose tile must be smaller than the layer's needs a loop in some allowed order."""
    if cons.orders is None:
        return
    must = {d for d in DIMS if cons.tile_max.get(d, layer.dim_size(d)) < layer.dim_size(d)}
    if not any(must <= set(o) for o in cons.orders):
        need = " ".join(d for d in DIMS if d in must)
        raise ConvschedError(f"tiles of {need} must be smaller than the layer's but no --order has a loop "
                             f"over all of them; add them to the order or drop the tile limits")


def _task_keys(network: Network, arch: Architecture) -> list[Key]:
    return [(nl.layer, layer_arch(nl, arch)) for nl in network.layers]


def _assemble(network: Network, arch: Architecture, objective: str, keys: Sequence[Key],
              solved: Mapping[Key, LayerSolution], seconds: float = 0.0) -> NetworkResult:
    """The network's result from its layers' solutions."""
    entries = []
    for nl, k in zip(network.layers, keys):
        sol = solved[k]
        found = [(n, r) for n, r in sol.dataflows.items() if r is not None]
        if found:
            tb_name, tb = min(found, key=lambda nr: (objective_bytes(nr[1].traffic, objective),
                                                     nr[1].traffic.total_bytes,
                                                     nr[1].traffic.total_buffer_bytes))
        else:
            tb_name, tb = None, None
        entries.append(LayerEntry(nl.name, nl, k[1], sol.result, tb_name, tb, dict(sol.dataflows), objective,
                                  sol.seconds))
    return NetworkResult(network, arch, objective, tuple(entries), len(set(keys)), seconds)


def _as_network(target: Network | NetLayer | Layer) -> Network:
    if isinstance(target, Network):
        return target
    if isinstance(target, NetLayer):
        return Network(target.name, (target,))
    if isinstance(target, Layer):
        return Network("layer", (NetLayer("layer1", "fc" if target.OY == target.OX == target.FY == target.FX == 1
                                          else "conv", target),))
    raise ConvschedError(f"cannot optimize {type(target).__name__}; give a Network, NetLayer or Layer")


def optimize_network(network: Network | NetLayer | Layer, arch: Architecture, constraints: Constraints | None = None,
                     objective: str = "bytes", workers: int | None = None,
                     progress: Progress | None = None) -> NetworkResult:
    """The optimal schedule of every layer, each distinct layer solved once, in parallel.

    `workers` processes (default min(2, CPUs); 1 solves in this process).
    `progress(done, total)` is called as distinct layers finish. Raises
    NoFeasibleSchedule naming a layer that fits no schedule (with several workers, the work
    stops at the first such layer to finish, so it need not be the first in network order).

    >>> from convsched.networks import load_target
    >>> net = load_target("K=16,C=8,OY=8,OX=8,FY=3,FX=3,PY=1,PX=1")
    >>> res = optimize_network(net, Architecture(capacity=1024), workers=1)
    >>> res.total_bytes, [e.name for e in res.entries], res.entries[0].textbook_name
    (2688, ['layer1'], 'weight-stationary')
    """
    network = _as_network(network)
    check_constraints(network, arch, constraints, objective)
    keys = _task_keys(network, arch)
    t0 = time.perf_counter()
    try:
        batches = solve_many(keys, solve_capacities, constraints, objective, workers, progress)
    except NoFeasibleSchedule as e:
        # the first layer of this shape in network order
        name = next(nl.name for nl in network.layers if nl.layer == e.layer)
        raise NoFeasibleSchedule(f"layer {name}: {e}", e.layer, e.smallest_capacity) from None
    solved = {k: sol for batch, sols in batches for k, sol in zip(batch, sols)}
    return _assemble(network, arch, objective, keys, solved, time.perf_counter() - t0)


# ---------------------------------------------------------------------------
# sweeps over the buffer capacity


def sweep_sizes(low: int, high: int, points: int) -> list[int]:
    """`points` log-spaced whole byte sizes from `low` to `high` inclusive (duplicates dropped)."""
    if isinstance(points, bool) or not isinstance(points, int) or points < 1:
        raise ConvschedError(f"points={points!r} must be a whole number of at least 1")
    if points > MAX_SWEEP_POINTS:
        raise ConvschedError(f"{points:,} sweep points are more than the limit of {MAX_SWEEP_POINTS:,} "
                             "(docs/limits.md); ask for fewer --points")
    if low < 1 or high < low:
        raise ConvschedError(f"sweep range {low}..{high} must be positive and run from small to large")
    if points == 1 or low == high:
        return [low]
    r = math.log(high / low)
    sizes = {low, high}
    for i in range(1, points - 1):
        sizes.add(int(round(low * math.exp(r * i / (points - 1)))))
    return sorted(sizes)


@dataclass(frozen=True)
class SweepPoint:
    capacity: int
    result: NetworkResult | None      # None when some layer fits no schedule
    error: str | None = None

    @property
    def feasible(self) -> bool:
        return self.result is not None

    @property
    def total_bytes(self) -> int | None:
        return self.result.total_bytes if self.result else None

    def operand_bytes(self) -> dict[str, int] | None:
        return self.result.operand_bytes() if self.result else None

    def dataflow_bytes(self) -> dict[str, int | None]:
        return self.result.dataflow_total_bytes() if self.result else {n: None for n in TEXTBOOK}

    @property
    def best_textbook_bytes(self) -> int | None:
        """The best single textbook dataflow used for the whole network."""
        vals = [v for v in self.dataflow_bytes().values() if v is not None]
        return min(vals) if vals else None

    @property
    def ratio(self) -> float | None:
        """Best single textbook dataflow's network bytes over the optimal network bytes."""
        tb, opt = self.best_textbook_bytes, self.total_bytes
        if tb is None or not opt:
            return None
        return tb / opt

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"buffer_bytes": self.capacity, "feasible": self.feasible}
        if self.result is None:
            d["error"] = self.error
            d["total_bytes"] = None
            d["operand_bytes"] = None
        else:
            d["total_bytes"] = self.total_bytes
            d["operand_bytes"] = self.operand_bytes()
            d["bytes_per_mac"] = self.result.bytes_per_mac
            d["layer_textbook_total_bytes"] = self.result.textbook_total_bytes
        d["dataflows"] = self.dataflow_bytes()
        d["best_textbook_bytes"] = self.best_textbook_bytes
        d["ratio"] = self.ratio
        return d


@dataclass(frozen=True)
class SweepResult:
    """The optimal network traffic at each capacity of a sweep (`points`, smallest first; a point no
    schedule fits carries its error instead of figures).

    >>> from convsched import Architecture, Layer, sweep
    >>> res = sweep(Layer(K=16, C=8, OY=8, OX=8, FY=3, FX=3, PY=1, PX=1), Architecture(), 64, 4096, 3, workers=1)
    >>> [(p.capacity, p.total_bytes) for p in res.feasible_points]
    [(64, 23296), (512, 3840), (4096, 2688)]
    """

    network: Network
    arch: Architecture
    points: tuple[SweepPoint, ...]
    seconds: float = 0.0
    objective: str = "bytes"

    @property
    def feasible_points(self) -> list[SweepPoint]:
        return [p for p in self.points if p.feasible]

    def to_json(self) -> dict[str, Any]:
        return {"network": self.network.name, "arch": self.arch.to_dict(), "objective": self.objective,
                "macs": self.network.macs, "dataflow_names": list(TEXTBOOK),
                "points": [p.to_json() for p in self.points], "seconds": self.seconds}

    def to_csv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["buffer_bytes", "feasible", "total_bytes", "input_read_bytes", "weight_read_bytes",
                    "output_bytes", *(f"{n}_bytes" for n in TEXTBOOK), "best_textbook_bytes", "ratio"])
        for p in self.points:
            ob = p.operand_bytes() or {}
            df = p.dataflow_bytes()
            w.writerow([p.capacity, int(p.feasible), _blank(p.total_bytes), *(_blank(ob.get(op)) for op in OPERANDS),
                        *(_blank(df[n]) for n in TEXTBOOK), _blank(p.best_textbook_bytes),
                        f"{p.ratio:.6g}" if p.ratio is not None else ""])
        return buf.getvalue()


def _blank(v: Any) -> Any:
    return "" if v is None else v


def sweep(network_or_layer: Network | NetLayer | Layer, arch: Architecture, low: int, high: int, points: int = 16,
          constraints: Constraints | None = None, objective: str = "bytes", workers: int | None = None,
          progress: Progress | None = None) -> SweepResult:
    """Optimal and textbook network traffic at `points` log-spaced shared buffer capacities.

    The capacity replaces the architecture's (one shared capacity). Each
    distinct layer is one task of the process pool that searches all the
    sizes in one pass. A size where some layer fits no schedule is a point
    with its `error`; NoFeasibleSchedule is raised only when no size fits.

    >>> layer = Layer(K=16, C=8, OY=8, OX=8, FY=3, FX=3, PY=1, PX=1)
    >>> res = sweep(layer, Architecture(), 4, 4096, 4, workers=1)
    >>> [(p.capacity, p.total_bytes) for p in res.points]
    [(4, None), (40, 32768), (406, 4992), (4096, 2688)]
    >>> res.points[0].error.split("; ")[1]
    'the smallest that fits is 6 bytes (try --buffer 6B or more)'
    """
    network = _as_network(network_or_layer)
    sizes = sweep_sizes(low, high, points)
    archs = [arch.with_capacity(c) for c in sizes]
    check_constraints(network, archs[0], constraints, objective)
    per_point = [_task_keys(network, a) for a in archs]
    t0 = time.perf_counter()
    batches = solve_many([k for keys in per_point for k in keys], sweep_layer, constraints, objective, workers,
                         progress)
    seconds = time.perf_counter() - t0
    solved = {k: swept.solutions[k[1]] for batch, swept in batches for k in batch if k[1] in swept.solutions}
    smallest = {k: swept.smallest_capacity for batch, swept in batches for k in batch}
    out = []
    for c, a, keys in zip(sizes, archs, per_point):
        # a size where some layer fits no schedule is a point with the first such layer's error
        unfit = next(((nl, k) for nl, k in zip(network.layers, keys) if k not in solved), None)
        if unfit is None:
            out.append(SweepPoint(c, _assemble(network, a, objective, keys, solved)))
        else:
            nl, key = unfit
            error = no_schedule_fits(*key, smallest[key], f"layer {nl.name}: ")
            out.append(SweepPoint(c, None, str(error)))
    if not any(p.feasible for p in out):
        raise NoFeasibleSchedule(f"no buffer size from {low} to {high} bytes fits: {out[-1].error}",
                                 error.layer, error.smallest_capacity)
    return SweepResult(network, arch, tuple(out), seconds, objective)


__all__ = ["OBJECTIVES", "LayerSolution", "LayerEntry", "NetworkResult", "SweepPoint", "SweepResult", "SweptLayer",
           "optimize_network", "sweep", "sweep_sizes", "solve_layer", "solve_capacities", "sweep_layer", "solve_many",
           "layer_arch",
           "objective_bytes", "check_constraints", "default_workers", "task_batches"]
