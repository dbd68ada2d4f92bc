"""Optimizer benchmarks (issue: the optimizer per network, sweeps).

1. `optimize_network` on every layer of ResNet-50 at a 64 KiB buffer
   (wall time, 2 worker processes; the median of three runs, and a first run
   with an empty disk cache, as on a machine that never ran convsched), with
   the slowest layers.
2. A VGG-16 sweep from 8 KiB to 1 MiB, 16 log-spaced sizes (wall time, 2 workers; the median
   of three runs), and side by side the same solves one capacity at a time.
3. The exact optimizer against a plain enumeration of the same space --
   every order of every subset of the dimensions with more than one
   element, every buffer level of each operand, every tile size of each
   loop -- evaluated with the vectorised model (`model.vectorised.evaluate_many`, one
   call per order and level triple over the whole tile grid):
   * on a small layer both run to completion and must find the same optimum;
   * on a mid-size layer (K=16,C=16,OY=8,OX=8,FY=FX=3 at 2 KiB) the plain
     enumeration would take hours, so it is timed on a random sample of
     (order, levels) pairs of each loop count and extrapolated to the exact
     number of pairs (stated as such in the output).

Writes benchmarks/results/optimize.json and prints it.
`python benchmarks/bench_optimize.py --only enumeration` runs one part.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import random
import tempfile
import time
from pathlib import Path

import numpy as np

from convsched.search import network as netsearch, optimizer as search
from convsched.core.arch import OPERANDS, Architecture
from convsched.core.layer import DIMS, Layer
from convsched.search.network import optimize_network, sweep
from convsched.networks import load_target
from convsched.core.procs import worker_pool
from convsched.model.vectorised import evaluate_many

RESULTS = Path(__file__).parent / "results" / "optimize.json"
PARTS = ("resnet50", "vgg16_sweep", "enumeration")


def resnet50_network(workers: int = 2, repeats: int = 3) -> dict:
    """Wall time of the whole network; the first run with an empty disk cache, then `repeats` runs."""
    net = load_target("resnet50")
    arch = Architecture(capacity=64 * 1024)

    def run():
        t0 = time.perf_counter()
        res = optimize_network(net, arch, workers=workers)
        return res, time.perf_counter() - t0

    saved = os.environ.get("CONVSCHED_CACHE_DIR")
    with tempfile.TemporaryDirectory() as empty:
        os.environ["CONVSCHED_CACHE_DIR"] = empty   # as on a machine that never ran convsched
        _, first = run()
    if saved is None:
        del os.environ["CONVSCHED_CACHE_DIR"]
    else:
        os.environ["CONVSCHED_CACHE_DIR"] = saved
    runs = [run() for _ in range(repeats)]
    walls = sorted(w for _, w in runs)
    res = runs[0][0]
    seen, slow = set(), []
    for e in res.entries:
        if e.net_layer.layer not in seen:
            seen.add(e.net_layer.layer)
            slow.append((e.solve_seconds, e.name, str(e.net_layer.layer)))
    slow.sort(reverse=True)
    return {
        "network": "resnet50", "buffer_bytes": arch.capacity, "workers": workers,
        "layers": len(res.entries), "unique_layers": res.unique_layers,
        "wall_seconds": walls[len(walls) // 2], "wall_seconds_runs": walls,
        "wall_seconds_first_run_empty_disk_cache": first,
        "sum_of_layer_solve_seconds": sum(s for s, _, _ in slow),
        "total_bytes": res.total_bytes, "bytes_per_mac": res.bytes_per_mac,
        "textbook_total_bytes": res.textbook_total_bytes, "saving": res.saving,
        "slowest_layers": [{"name": n, "layer": L, "seconds": s} for s, n, L in slow[:5]],
    }


def vgg16_sweep(workers: int = 2, repeats: int = 3) -> dict:
    """The sweep's wall time (median of `repeats`), and side by side the same 192 solves one
    capacity at a time (as before `optimize_capacities`) in the same process pool set-up."""
    net = load_target("vgg16")
    low, high, n = 8 * 1024, 1024 * 1024, 16
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        res = sweep(net, Architecture(), low, high, n, workers=workers)
        runs.append(time.perf_counter() - t0)
    wall = sorted(runs)[len(runs) // 2]
    pts = res.points
    # the same solves, each (layer, capacity) its own task and its own search
    keys = [(L, Architecture(capacity=c)) for c in netsearch.sweep_sizes(low, high, n)
            for L in dict.fromkeys(nl.layer for nl in net.layers)]
    keys.sort(key=lambda k: -k[0].macs)
    t0 = time.perf_counter()
    with worker_pool(workers) as pool:
        alone = list(pool.map(netsearch.solve_capacities, [k[0] for k in keys], [[k[1]] for k in keys],
                              [None] * len(keys), ["bytes"] * len(keys)))
    one_at_a_time = time.perf_counter() - t0
    by_key = {k: r[0].result.traffic.total_bytes for k, r in zip(keys, alone)}
    same = all(p.total_bytes == sum(by_key[(nl.layer, Architecture(capacity=p.capacity))] for nl in net.layers)
               for p in pts)
    return {
        "network": "vgg16", "low_bytes": low, "high_bytes": high, "points": len(pts),
        "workers": workers, "unique_layers": len({nl.layer for nl in net.layers}),
        "solves": len(pts) * len({nl.layer for nl in net.layers}),
        "wall_seconds": wall, "wall_seconds_runs": sorted(runs),
        "one_capacity_at_a_time_seconds": one_at_a_time,
        "one_pass_speedup": one_at_a_time / wall,
        "same_totals_one_at_a_time": same,
        "feasible_points": sum(p.feasible for p in pts),
        "curve": [{"buffer_bytes": p.capacity, "total_bytes": p.total_bytes, "ratio": p.ratio} for p in pts],
        "monotone": all(b.total_bytes <= a.total_bytes for a, b in
                        zip(res.feasible_points, res.feasible_points[1:])),
    }


# ---------------------------------------------------------------------------
# plain enumeration


def plain_structures(layer: Layer):
    """Every (order, levels) of the plain space: orders of subsets of the dims with > 1 element."""
    dims = [d for d in DIMS if layer.dim_size(d) > 1]
    for k in range(len(dims) + 1):
        for order in itertools.permutations(dims, k):
            for lv in itertools.product(range(k + 1), repeat=3):
                yield order, dict(zip(OPERANDS, lv))


def plain_space_size(layer: Layer) -> tuple[int, int, dict[int, int]]:
    """(number of (order, levels) pairs, number of schedules, pairs per loop count)."""
    dims = [d for d in DIMS if layer.dim_size(d) > 1]
    pairs = schedules = 0
    per_k: dict[int, int] = {}
    for k in range(len(dims) + 1):
        for subset in itertools.combinations(dims, k):
            n_orders = math.factorial(k)
            grid = math.prod(layer.dim_size(d) for d in subset)
            pairs += n_orders * (k + 1) ** 3
            schedules += n_orders * (k + 1) ** 3 * grid
            per_k[k] = per_k.get(k, 0) + n_orders * (k + 1) ** 3
    return pairs, schedules, per_k


def plain_best_of(layer: Layer, arch: Architecture, order, levels):
    """(bytes, buffer bytes, tiles) of the best fitting schedule of one (order, levels), over all tiles."""
    grids = np.meshgrid(*[np.arange(1, layer.dim_size(d) + 1) for d in order], indexing="ij")
    tiles = {d: g for d, g in zip(order, grids)}
    shape = grids[0].shape if order else ()
    v = evaluate_many(layer, order, levels, tiles, arch)
    fits = np.broadcast_to(v.buffer_bytes <= arch.capacity, shape)
    if not fits.any():
        return None
    tb = np.broadcast_to(v.total_bytes, shape)
    m = tb[fits].min()
    sel = fits & (tb == m)
    return int(m), int(np.broadcast_to(v.buffer_bytes, shape)[sel].min())


def plain_enumeration(layer: Layer, arch: Architecture):
    best = None
    for order, lv in plain_structures(layer):
        r = plain_best_of(layer, arch, order, lv)
        if r is not None and (best is None or r < best):
            best = r
    return best


def enumeration_speedup(sample_per_k: int = 24, seed: int = 0) -> dict:
    out: dict = {}
    # (a) a small layer, both to completion
    small = Layer(K=4, C=4, OY=4, OX=4, FY=3, PY=1)
    arch_s = Architecture(capacity=128)
    t0 = time.perf_counter()
    opt = search.optimize_layer(small, arch_s)
    t_opt = time.perf_counter() - t0
    t0 = time.perf_counter()
    plain = plain_enumeration(small, arch_s)
    t_plain = time.perf_counter() - t0
    pairs, schedules, _ = plain_space_size(small)
    out["small_layer_full"] = {
        "layer": str(small), "buffer_bytes": arch_s.capacity, "plain_pairs": pairs, "plain_schedules": schedules,
        "optimizer_seconds": t_opt, "plain_seconds": t_plain, "speedup": t_plain / t_opt,
        "optimizer_bytes": opt.traffic.total_bytes, "plain_bytes": plain[0],
        "same_optimum": opt.traffic.total_bytes == plain[0],
    }
    # (b) the mid-size layer: optimizer in full, enumeration sampled per loop count and extrapolated
    mid = Layer(K=16, C=16, OY=8, OX=8, FY=3, FX=3, PY=1, PX=1)
    arch_m = Architecture(capacity=2048)
    t0 = time.perf_counter()
    opt = search.optimize_layer(mid, arch_m)
    t_opt = time.perf_counter() - t0
    pairs, schedules, per_k = plain_space_size(mid)
    rng = random.Random(seed)
    dims = [d for d in DIMS if mid.dim_size(d) > 1]
    est = 0.0
    per_k_info = {}
    sampled_best = None
    for k, n_pairs in per_k.items():
        times = []
        for _ in range(min(sample_per_k, n_pairs)):
            order = tuple(rng.sample(dims, k))
            lv = {op: rng.randint(0, k) for op in OPERANDS}
            t = time.perf_counter()
            r = plain_best_of(mid, arch_m, order, lv)
            times.append(time.perf_counter() - t)
            if r is not None and (sampled_best is None or r < sampled_best):
                sampled_best = r
        mean = sum(times) / len(times)
        est += mean * n_pairs
        per_k_info[k] = {"pairs": n_pairs, "sampled": len(times), "mean_seconds_per_pair": mean}
    out["mid_layer_extrapolated"] = {
        "layer": str(mid), "buffer_bytes": arch_m.capacity, "plain_pairs": pairs, "plain_schedules": schedules,
        "optimizer_seconds": t_opt, "optimizer_bytes": opt.traffic.total_bytes,
        "optimizer_candidates": opt.candidates, "optimizer_structures": opt.structures,
        "plain_seconds_estimated": est, "speedup_estimated": est / t_opt,
        "sampled_best_bytes": sampled_best[0] if sampled_best else None,
        "sample_never_beats_optimizer": sampled_best is None or sampled_best[0] >= opt.traffic.total_bytes,
        "per_loop_count": per_k_info,
        "note": "plain enumeration time = mean measured time per (order, levels) of each loop count "
                "x the exact number of such pairs",
    }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts: {', '.join(PARTS)}")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    for p in parts:
        if p not in PARTS:
            ap.error(f"unknown part {p!r}; use {', '.join(PARTS)}")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    res: dict = json.loads(RESULTS.read_text()) if RESULTS.exists() and len(parts) < len(PARTS) else {}
    res["cpus"] = os.cpu_count()
    if "resnet50" in parts:
        res["resnet50_64KiB"] = resnet50_network(args.workers)
    if "vgg16_sweep" in parts:
        res["vgg16_sweep_8KiB_1MiB_16"] = vgg16_sweep(args.workers)
    if "enumeration" in parts:
        res["optimizer_vs_plain_enumeration"] = enumeration_speedup()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(res, indent=2) + "\n")
    os.replace(tmp, RESULTS)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
