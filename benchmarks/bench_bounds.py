"""Bounds and earlier models on whole networks (issue: lower bounds, earlier models, report).

For ResNet-50, VGG-16 and MobileNetV2 at 16, 64 and 256 KiB (default word
sizes: 8-bit data, 32-bit partial sums): the optimal network traffic over
the sum of the per-layer lower bounds (`bounds.lower_bound_bytes`), which
bound was the largest per layer, and for each earlier model
(`convsched.analysis.baselines`) its mean and worst prediction error against the exact
model and the exact traffic of the schedules it chooses over the optimum.

Slow (the optimizer solves every distinct layer; minutes per network):
run in the background. Results are written to benchmarks/results/bounds.json
after every (network, size), so a partial run leaves what finished.

    .venv/bin/python benchmarks/bench_bounds.py [--nets resnet50,vgg16,mobilenet_v2] [--sizes 16KiB,64KiB,256KiB]
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

from convsched.core.arch import Architecture
from convsched.analysis.baselines.compare import compare_result
from convsched.model.bounds import layer_bounds
from convsched.search.network import optimize_network
from convsched.networks import load_target
from convsched.core.units import parse_size

RESULTS = Path(__file__).parent / "results" / "bounds.json"


def run_one(net_name: str, size: int, workers: int) -> dict:
    net = load_target(net_name)
    arch = Architecture(capacity=size)
    t0 = time.perf_counter()
    res = optimize_network(net, arch, workers=workers)
    t_opt = time.perf_counter() - t0
    lbs = [layer_bounds(e.net_layer.layer, e.arch) for e in res.entries]
    lb_total = sum(b.best for b in lbs)
    t1 = time.perf_counter()
    cmp = compare_result(res)
    t_cmp = time.perf_counter() - t1
    worst = max(zip(res.entries, lbs), key=lambda eb: eb[0].traffic.total_bytes / eb[1].best)
    return {
        "network": net.name, "buffer_bytes": size, "layers": len(res.entries), "unique_layers": res.unique_layers,
        "total_bytes": res.total_bytes, "lower_bound_bytes": lb_total,
        "compulsory_bytes": sum(b.compulsory for b in lbs),
        "ratio_to_bound": res.total_bytes / lb_total,
        "bound_kinds": dict(Counter(b.best_name for b in lbs)),
        "worst_layer_ratio": {"name": worst[0].name, "ratio": worst[0].traffic.total_bytes / worst[1].best},
        "textbook_total_bytes": res.textbook_total_bytes, "textbook_saving": res.saving,
        "models": cmp.summary(),
        "optimize_seconds": t_opt, "compare_seconds": t_cmp,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nets", default="resnet50,mobilenet_v2,vgg16")
    ap.add_argument("--sizes", default="16KiB,64KiB,256KiB")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args()
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {}
    for net in args.nets.split(","):
        for s in args.sizes.split(","):
            key = f"{net}_{s}"
            try:
                results[key] = run_one(net, parse_size(s), args.workers)
            except Exception as e:  # record and go on: a partial run still reports what finished
                results[key] = {"error": f"{type(e).__name__}: {e}"}
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(results, indent=2) + "\n")
            print(key, json.dumps({k: results[key].get(k) for k in ("total_bytes", "lower_bound_bytes",
                                                                    "ratio_to_bound", "error")}), flush=True)


if __name__ == "__main__":
    main()
