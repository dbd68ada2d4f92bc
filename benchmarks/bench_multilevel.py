"""Multi-level model benchmarks (issue 16).

1. Vectorised throughput of the generalised model on one core: a two-level nest (gap8: L2 512 KiB,
   L1 64 KiB double-buffered) with 8 loops (K, C, OY, OX, then K, C, OY, OX again inside), over a grid
   of 6 tile candidates per loop (1,679,616 nests): main-memory bytes, energy and bytes per level for
   every candidate. Measured cold (the per-layer input-row tables empty) and warm (best of 3), beside
   today's single-level vectorised model on the same layer and a 4-loop grid of the same size.
2. The scalar generalised model against the walking simulator on a mid-size layer and a two-level
   nest: same counts, and how much faster.
3. The model's cost does not grow with the number of tiles: a nest of about 10^9 tiles.

Writes benchmarks/results/multilevel.json and prints it.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from convsched.core.hierarchy import PRESETS
from convsched.core.layer import Layer
from convsched.core.nest import Loop, Nest
from convsched.model import nest_vectorised
from convsched.model.nest_model import evaluate_nest
from convsched.model.nest_simulate import simulate_nest
from convsched.model.nest_vectorised import NestStructure, buffer_bytes_many, evaluate_nest_many, nest_bytes_many
from convsched.model.vectorised import evaluate_many

from timing import best_of  # benchmarks/timing.py, beside this script

RESULTS = Path(__file__).parent / "results" / "multilevel.json"
GAP8 = PRESETS["gap8"]


def vectorised_throughput() -> dict:
    layer = Layer(K=256, C=256, OY=56, OX=56, FY=3, FX=3, PY=1, PX=1)
    dims = ("K", "C", "OY", "OX", "K", "C", "OY", "OX")
    structure = NestStructure(dims, {"L2": {"input": 2, "weight": 2, "output": 2},
                                     "L1": {"input": 8, "weight": 8, "output": 8}})
    outer_kc, outer_xy = [256, 128, 96, 64, 48, 32], [56, 28, 20, 14, 10, 8]
    inner_kc, inner_xy = [32, 24, 16, 8, 4, 2], [8, 7, 4, 3, 2, 1]    # at most every outer tile: valid nests
    values = [outer_kc, outer_kc, outer_xy, outer_xy, inner_kc, inner_kc, inner_xy, inner_xy]
    tiles = [np.array(v).reshape([-1 if i == k else 1 for i in range(8)]) for k, v in enumerate(values)]
    n = int(np.prod([len(v) for v in values]))

    def run() -> tuple:
        words = evaluate_nest_many(layer, structure, tiles, GAP8)
        main, energy, per_level = nest_bytes_many(words, GAP8, layer)
        return main, energy, per_level, buffer_bytes_many(words, GAP8)

    nest_vectorised.clear_caches()
    t0 = time.perf_counter()
    main, energy, _, buffers = run()
    cold = time.perf_counter() - t0
    warm = best_of(run)
    # spot check: three candidates against the scalar model
    rng = np.random.default_rng(1)
    checked = 0
    for _ in range(3):
        idx = tuple(int(rng.integers(len(v))) for v in values)
        nest = Nest(layer, tuple(Loop(d, values[k][idx[k]]) for k, d in enumerate(dims)), structure.buffers)
        t = evaluate_nest(nest, GAP8)
        assert t.total_bytes == main[idx] and t.energy == energy[idx], idx
        checked += 1

    # today's single-level vectorised model on a 4-loop grid of about the same size, same run
    single_values = [np.arange(1, 37), np.arange(1, 37), np.arange(1, 37), np.arange(1, 37)]
    grid = {d: v.reshape([-1 if i == k else 1 for i in range(4)])
            for k, (d, v) in enumerate(zip(("K", "C", "OY", "OX"), single_values))}
    n_single = 36 ** 4
    single_levels = {"input": 4, "weight": 2, "output": 4}
    evaluate_many(layer, ("K", "C", "OY", "OX"), single_levels, grid)
    t_single = best_of(lambda: evaluate_many(layer, ("K", "C", "OY", "OX"), single_levels, grid))
    return {
        "layer": str(layer), "hierarchy": "gap8", "loops": list(dims), "buffers": structure.buffers,
        "candidates": n, "cold_seconds": cold, "warm_seconds": warm,
        "cold_evals_per_second": n / cold, "warm_evals_per_second": n / warm,
        "target_evals_per_second": 2_000_000, "checked_against_scalar_model": checked,
        "single_level_candidates": n_single, "single_level_seconds": t_single,
        "single_level_evals_per_second": n_single / t_single,
        "two_level_vs_single_level_time_per_candidate": (warm / n) / (t_single / n_single),
        "smallest_l1_bytes_of_grid": int(buffers["L1"].min()),
    }


def model_vs_simulator() -> dict:
    layer = Layer(K=32, C=32, OY=28, OX=28, FY=3, FX=3, PY=1, PX=1)
    nest = Nest(layer, (Loop("K", 16), Loop("OY", 14), Loop("C", 8), Loop("OY", 7), Loop("K", 8), Loop("OX", 14)),
                {"L2": {"input": 1, "weight": 1, "output": 2}, "L1": {"input": 4, "weight": 3, "output": 5}})
    t_model = best_of(lambda: evaluate_nest(nest, GAP8), repeat=5)
    t0 = time.perf_counter()
    sim = simulate_nest(nest, GAP8)
    t_sim = time.perf_counter() - t0
    return {
        "layer": str(layer), "nest": nest.to_dict(), "tiles": nest.n_tiles,
        "model_seconds": t_model, "simulator_seconds": t_sim, "speedup": t_sim / t_model,
        "model_equals_simulator": sim.traffic == evaluate_nest(nest, GAP8), "output_correct": sim.output_ok,
    }


def many_tiles() -> dict:
    layer = Layer(K=4096, C=4096, OY=224, OX=224, FY=3, FX=3, PY=1, PX=1)
    nest = Nest(layer, (Loop("K", 64), Loop("C", 64), Loop("OY", 28), Loop("OX", 28), Loop("K", 1), Loop("C", 1),
                        Loop("OY", 1), Loop("OX", 1)),
                {"L2": {"input": 4, "weight": 4, "output": 4}, "L1": {"input": 8, "weight": 8, "output": 8}})
    t = best_of(lambda: evaluate_nest(nest, GAP8), repeat=3)
    return {"layer": str(layer), "tiles": nest.n_tiles, "model_seconds": t}


def main() -> None:
    if hasattr(os, "sched_setaffinity"):   # one core, as the issue states the target
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    res = {"vectorised_model": vectorised_throughput(), "model_vs_simulator": model_vs_simulator(),
           "many_tiles": many_tiles()}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
