"""Generated C at scale (issue: the real implementation): more schedules than the test suite runs.

1. Random layers (plain, grouped, depthwise; stride, dilation, padding, batch)
   with random schedules (any order, tiles, buffer levels) and random word
   sizes and DMA granularities, compiled in batches of 6 per C program.
2. The optimizer's schedules for every distinct layer of ResNet-18 and
   MobileNetV2, shrunk to at most 8x8 outputs and 64 channels so the C runs
   in seconds, at a tight (2 KiB) and a roomy (16 KiB) buffer.

Every schedule is checked exactly as `convsched run-c` checks it: the output
equals the reference bit for bit, the bytes and words copied per operand equal
the model's prediction, and no local buffer is overrun (checked build, with
AddressSanitizer/UBSan when the compiler has them). Writes
benchmarks/results/codegen.json and prints a summary.

    .venv/bin/python benchmarks/bench_codegen.py [--batches 100] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

from convsched.core.arch import OPERANDS, Architecture
from convsched.codegen import run_cases
from convsched.codegen.harness import find_compiler
from convsched.core.errors import ConvschedError
from convsched.core.layer import DIMS, Layer
from convsched.networks import load_target
from convsched.core.schedule import Schedule
from convsched.search.optimizer import optimize_layer

RESULTS = Path(__file__).parent / "results" / "codegen.json"
BATCH = 6


def random_layer(rng: random.Random) -> Layer:
    while True:
        kind = rng.choice(["plain", "plain", "grouped", "depthwise"])
        if kind == "depthwise":
            G = rng.randint(2, 5)
            K = C = G
        else:
            G = 1 if kind == "plain" else rng.randint(2, 3)
            K, C = G * rng.randint(1, 4), G * rng.randint(1, 4)
        kw = dict(K=K, C=C, G=G, N=rng.randint(1, 2))
        for a in ("Y", "X"):
            o, f, s, d = rng.randint(1, 8), rng.randint(1, 5), rng.randint(1, 3), rng.randint(1, 2)
            p = rng.randint(0, min(3, ((o - 1) * s + (f - 1) * d) // 2))
            kw.update({"O" + a: o, "F" + a: f, "S" + a: s, "D" + a: d, "P" + a: p})
        try:
            return Layer(**kw)
        except ConvschedError:
            continue


def random_case(rng: random.Random) -> tuple[Schedule, Architecture]:
    layer = random_layer(rng)
    order = tuple(rng.sample(DIMS, rng.randint(0, len(DIMS))))
    tiles = {d: rng.randint(1, layer.dim_size(d)) for d in order}
    buffers = {op: rng.randint(0, len(order)) for op in OPERANDS}
    gran = rng.choice([0, 0, 0, 4, 3])
    if rng.random() < 0.5:
        arch = Architecture(dma_granularity=gran)
    else:
        bits = rng.choice([4, 8, 12, 16])
        arch = Architecture(input_bits=bits, weight_bits=rng.choice([bits, 8]), psum_bits=rng.choice([32, 24, 16]),
                            output_bits=rng.choice([bits, 8, 16]), dma_granularity=gran)
    return Schedule(layer, order, tiles, buffers), arch


def shrink(layer: Layer, max_out: int = 8, max_ch: int = 64) -> Layer:
    """The same layer kind with at most `max_out` outputs per axis and `max_ch` channels per group set."""
    G = layer.G
    if G > 1 and G == layer.K == layer.C:          # depthwise stays depthwise
        G = K = C = min(G, max_ch)
    else:
        K = max(G, min(layer.K, max_ch) // G * G)
        C = max(G, min(layer.C, max_ch) // G * G)
    return Layer(N=layer.N, G=G, K=K, C=C, OY=min(layer.OY, max_out), OX=min(layer.OX, max_out),
                 FY=layer.FY, FX=layer.FX, SY=layer.SY, SX=layer.SX, DY=layer.DY, DX=layer.DX,
                 PY=layer.PY, PX=layer.PX)


def summarise(results, seconds: float) -> dict:
    bad = [r for r in results if not r.passed]
    return {
        "schedules": len(results), "passed": len(results) - len(bad),
        "output_bit_exact": sum(r.output_matches for r in results),
        "bytes_equal_model": sum(r.measured_bytes() == r.predicted_bytes() for r in results),
        "sanitized": sum(r.sanitized for r in results),
        "words_moved_checked": sum(sum(v.values()) for r in results for v in r.measured_words().values()),
        "seconds": round(seconds, 1),
        "failures": [{"schedule": r.schedule.to_json(), "problems": r.problems} for r in bad],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batches", type=int, default=100, help=f"random batches of {BATCH} schedules")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    try:
        cc = find_compiler()
    except ConvschedError as e:
        print(f"skipped: {e}")
        return
    rng = random.Random(args.seed)
    out: dict = {"compiler": cc}

    t0 = time.perf_counter()
    results = []
    for b in range(args.batches):
        results += run_cases([random_case(rng) for _ in range(BATCH)], seed=args.seed + b)
    out["random_schedules"] = summarise(results, time.perf_counter() - t0)
    print("random:", {k: v for k, v in out["random_schedules"].items() if k != "failures"}, flush=True)

    t0 = time.perf_counter()
    cases, names = [], []
    for net in ("resnet18", "mobilenet_v2"):
        seen = set()
        for nl in load_target(net).layers:
            small = shrink(nl.layer)
            if small in seen:
                continue
            seen.add(small)
            for cap in (2048, 16384):
                arch = Architecture(capacity=cap)
                try:
                    sched = optimize_layer(small, arch).schedule
                except ConvschedError:      # nothing fits the tight buffer
                    continue
                cases.append((sched, arch))
                names.append(f"{net}/{nl.name}@{cap}")
    results = []
    for i in range(0, len(cases), BATCH):
        results += run_cases(cases[i:i + BATCH], seed=args.seed + i)
    opt = summarise(results, time.perf_counter() - t0)
    opt["cases"] = [{"name": n, "order": list(r.schedule.order), "tiles": dict(r.schedule.tiles),
                     "buffers": dict(r.schedule.buffers), "total_bytes": r.predicted.total_bytes,
                     "passed": r.passed} for n, r in zip(names, results)]
    out["optimizer_schedules_shrunk_layers"] = opt
    print("optimizer:", {k: v for k, v in opt.items() if k not in ("failures", "cases")}, flush=True)

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
