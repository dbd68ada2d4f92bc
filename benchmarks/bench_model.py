"""Model benchmarks (issue: foundation).

1. Vectorised model throughput: schedule evaluations per second on one core
   for a 4-loop order (K, C, OY, OX) over a grid of tile candidates, as the
   optimizer uses it (numpy broadcasting over the candidate grid), and over a
   flat array of random candidates (no broadcasting help).
2. The scalar closed-form model against the walking simulator on a mid-size
   layer: same numbers, and how much faster.

Writes benchmarks/results/model.json and prints it.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from convsched.core.layer import Layer
from convsched.model.closed_form import evaluate
from convsched.core.schedule import Schedule
from convsched.model.simulate import simulate
from convsched.model.vectorised import evaluate_many

from timing import best_of  # benchmarks/timing.py, beside this script

RESULTS = Path(__file__).parent / "results" / "model.json"


def vectorised_throughput() -> dict:
    layer = Layer(K=256, C=256, OY=56, OX=56, FY=3, FX=3, PY=1, PX=1)
    order = ("K", "C", "OY", "OX")
    levels = {"input": 4, "weight": 2, "output": 4}
    ks, cs = np.arange(1, 65), np.arange(1, 65)
    oys, oxs = np.arange(1, 57), np.arange(1, 57)
    grid = {"K": ks.reshape(-1, 1, 1, 1), "C": cs.reshape(1, -1, 1, 1),
            "OY": oys.reshape(1, 1, -1, 1), "OX": oxs.reshape(1, 1, 1, -1)}
    n_grid = ks.size * cs.size * oys.size * oxs.size
    evaluate_many(layer, order, levels, grid)  # warm the per-layer tables
    t_grid = best_of(lambda: evaluate_many(layer, order, levels, grid))
    rng = np.random.default_rng(0)
    n_flat = 1_000_000
    flat = {"K": rng.integers(1, 257, n_flat), "C": rng.integers(1, 257, n_flat),
            "OY": rng.integers(1, 57, n_flat), "OX": rng.integers(1, 57, n_flat)}
    t_flat = best_of(lambda: evaluate_many(layer, order, levels, flat))
    return {
        "layer": str(layer), "order": list(order),
        "grid_candidates": n_grid, "grid_seconds": t_grid, "grid_evals_per_second": n_grid / t_grid,
        "flat_candidates": n_flat, "flat_seconds": t_flat, "flat_evals_per_second": n_flat / t_flat,
        "target_evals_per_second": 5_000_000,
    }


def model_vs_simulator() -> dict:
    layer = Layer(K=32, C=32, OY=28, OX=28, FY=3, FX=3, PY=1, PX=1)
    sched = Schedule(layer, ("K", "OY", "C", "OX"), {"K": 8, "OY": 4, "C": 8, "OX": 14},
                     {"input": 2, "weight": 1, "output": 4})
    t_model = best_of(lambda: evaluate(sched), repeat=5)
    t0 = time.perf_counter()
    sim = simulate(sched)
    t_sim = time.perf_counter() - t0
    return {
        "layer": str(layer), "schedule": sched.to_dict(), "tiles": sched.n_tiles,
        "model_seconds": t_model, "simulator_seconds": t_sim, "speedup": t_sim / t_model,
        "model_equals_simulator": sim.traffic == evaluate(sched), "output_correct": sim.output_ok,
    }


def main() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    res = {"vectorised_model": vectorised_throughput(), "model_vs_simulator": model_vs_simulator()}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
