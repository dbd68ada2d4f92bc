"""convsched side by side with ZigZag (issue: peer comparison).

Runs ZigZag (``zigzag-dse`` from PyPI, its LOMA and SALSA temporal mappers)
and convsched's exact optimizer on the same layers with a matched memory:
one MAC, one shared on-chip buffer of C bytes holding input, weights and
outputs, and DRAM; 8-bit input/weight/output words and 32-bit partial sums.

ZigZag has no "DRAM traffic" objective, so the accelerator given to it makes
its energy equal to DRAM traffic: MAC energy 0, on-chip buffer reads and
writes cost 0, each DRAM access (one 32-bit port word) costs 1. Minimising
ZigZag's energy is then minimising ZigZag's own count of DRAM bits.

For every (layer, capacity) it reports:

* convsched's optimum (bytes, search time);
* for LOMA and SALSA: ZigZag's own DRAM count (bytes, per operand), its
  search time, its chosen temporal mapping, and -- where that mapping can be
  written as a convsched schedule -- convsched's exact model applied to it;
* the ratios zigzag_bytes / optimum, model(zigzag mapping) / optimum and
  zigzag time / convsched time.

Writes benchmarks/results/zigzag.json and prints a table. Needs the optional
``bench`` extra (``pip install -e .[bench]``); without ZigZag it prints a
note and exits 0. docs/zigzag.md lists every way the two set-ups differ.

    .venv/bin/python benchmarks/bench_zigzag.py            # full run (~5 min)
    .venv/bin/python benchmarks/bench_zigzag.py --quick    # small layer only
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import math
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results" / "zigzag.json"

#: ZigZag's loop dimension names -> convsched's.
ZZ_TO_CS = {"B": "N", "G": "G", "K": "K", "C": "C", "OY": "OY", "OX": "OX", "FY": "FY", "FX": "FX"}
OPERANDS = {"I": "input", "W": "weight", "O": "output"}
DRAM_PORT_BITS = 32   # one DRAM "access" in ZigZag's count = one port word of this many bits


def zigzag_missing() -> str:
    """Why ZigZag cannot be used here ("" when it can)."""
    try:
        if importlib.util.find_spec("zigzag") is None:
            return "ZigZag (zigzag-dse) is not installed"
        import zigzag.stages.main  # noqa: F401 -- fails when a dependency it does not declare (six) is missing
    except (ImportError, ValueError) as exc:
        return f"ZigZag cannot be imported ({exc})"
    return ""


# ---------------------------------------------------------------------------
# the layers and capacities


def bench_layers(quick: bool) -> list[tuple[str, Any]]:
    from convsched import networks
    from convsched.core.layer import Layer

    small = ("small 3x3 K=C=16 14x14", Layer(K=16, C=16, OY=14, OX=14, FY=3, FX=3, PY=1, PX=1))
    if quick:
        return [small]
    net = networks.load_target("resnet18")
    pick = {1: "resnet18 layer1.0.conv1 (3x3, 64ch, 56x56)",
            5: "resnet18 layer2.0.conv1 (3x3, stride 2)",
            7: "resnet18 layer2.0.downsample.0 (1x1, stride 2)"}
    return [(label, net.layers[i].layer) for i, label in pick.items()] + [small]


def parse_capacity(text: str) -> int:
    from convsched.core.units import parse_size
    return parse_size(text)


# ---------------------------------------------------------------------------
# ZigZag inputs (written to a temporary directory at run time)


def zigzag_accelerator(capacity_bytes: int) -> dict[str, Any]:
    """1 MAC, one shared SRAM of `capacity_bytes` for I, W, O, and DRAM; DRAM accesses cost 1, all else 0."""
    def port(allocation: list[str], bw_max: int, bw_min: int) -> dict[str, Any]:
        return {"name": "rw_port_1", "type": "read_write", "bandwidth_min": bw_min,
                "bandwidth_max": bw_max, "allocation": allocation}

    every_direction = ["I1, fh", "I1, tl", "I2, fh", "I2, tl", "O, fh", "O, tl", "O, fl", "O, th"]
    return {
        "name": "one_mac_one_shared_buffer",
        # Order matters: memories are listed innermost first.
        "memories": {
            "buffer": {"size": capacity_bytes * 8, "r_cost": 0.0, "w_cost": 0.0, "area": 0.0, "latency": 1,
                       "operands": ["I1", "I2", "O"], "ports": [port(every_direction, 64, 8)],
                       "served_dimensions": ["D1"], "force_double_buffering": False},
            "dram": {"size": 1 << 44, "r_cost": 1.0, "w_cost": 1.0, "area": 0.0, "latency": 1,
                     "operands": ["I1", "I2", "O"], "ports": [port(every_direction, DRAM_PORT_BITS, 8)],
                     "served_dimensions": ["D1"]},
        },
        "operational_array": {"input_precision": [8, 8], "unit_energy": 0.0, "unit_area": 1.0,
                              "dimensions": ["D1"], "sizes": [1]},
    }


def zigzag_mapping() -> list[dict[str, Any]]:
    # A 1x1 array: the only spatial unrolling is K by 1. No temporal ordering: the mapper searches it.
    return [{"name": "default", "spatial_mapping": {"D1": ["K, 1"]},
             "memory_operand_links": {"O": "O", "W": "I2", "I": "I1"}}]


def zigzag_layer(layer: Any, arch: Any) -> dict[str, Any]:
    """convsched Layer -> one ZigZag workload entry (the dict form its YAML parser takes)."""
    pad_bottom = (layer.OY - 1) * layer.SY + (layer.FY - 1) * layer.DY + 1 - layer.PY - layer.IY
    pad_right = (layer.OX - 1) * layer.SX + (layer.FX - 1) * layer.DX + 1 - layer.PX - layer.IX
    return {
        "id": 0, "name": "layer", "operator_type": "Conv",
        "equation": "O[b][g][k][oy][ox]+=W[g][k][c][fy][fx]*I[b][g][c][iy][ix]",
        "dimension_relations": [f"ix={layer.SX}*ox+{layer.DX}*fx", f"iy={layer.SY}*oy+{layer.DY}*fy"],
        "loop_dims": ["B", "K", "G", "OX", "OY", "C", "FX", "FY"],
        "loop_sizes": [layer.N, layer.Kg, layer.G, layer.OX, layer.OY, layer.Cg, layer.FX, layer.FY],
        "operand_precision": {"I": arch.input_bits, "W": arch.weight_bits,
                              "O": arch.psum_bits, "O_final": arch.output_bits},
        "operand_source": {"I": 0, "W": 0},
        "pr_loop_dims": ["IX", "IY"], "pr_loop_sizes": [layer.IX, layer.IY],
        "padding": [[layer.PX, max(0, pad_right)], [layer.PY, max(0, pad_bottom)]],
    }


def run_zigzag(layer: Any, arch: Any, engine: str, workdir: Path, lpf_limit: int,
               salsa_iterations: int, seed: int) -> dict[str, Any]:
    import yaml
    from zigzag.mapping.temporal_mapping import TemporalMappingType
    from zigzag.stages.evaluation.cost_model_evaluation import CostModelStage
    from zigzag.stages.main import MainStage
    from zigzag.stages.mapping.salsa import SalsaStage
    from zigzag.stages.mapping.spatial_mapping_generation import SpatialMappingGeneratorStage
    from zigzag.stages.mapping.temporal_mapping_generator_stage import TemporalMappingGeneratorStage
    from zigzag.stages.parser.accelerator_parser import AcceleratorParserStage
    from zigzag.stages.parser.workload_parser import WorkloadParserStage
    from zigzag.stages.results.reduce_stages import MinimalEnergyStage
    from zigzag.stages.workload_iterator import WorkloadStage

    acc_path = workdir / f"accelerator_{arch.capacity}.yaml"
    map_path = workdir / "mapping.yaml"
    acc_path.write_text(yaml.safe_dump(zigzag_accelerator(arch.capacity), sort_keys=False))
    map_path.write_text(yaml.safe_dump(zigzag_mapping(), sort_keys=False))
    mapper = SalsaStage if engine == "salsa" else TemporalMappingGeneratorStage
    stages = [WorkloadParserStage, AcceleratorParserStage, WorkloadStage, MinimalEnergyStage,
              SpatialMappingGeneratorStage, MinimalEnergyStage, mapper, CostModelStage]
    random.seed(seed)
    import numpy as np
    np.random.seed(seed)   # SALSA draws from numpy's global generator (in a forked worker)
    main = MainStage(stages, accelerator=str(acc_path), workload=[zigzag_layer(layer, arch)],
                     mapping=str(map_path), loma_lpf_limit=lpf_limit, loma_show_progress_bar=False,
                     nb_mappings_generated=1, enable_mix_spatial_mapping_generation=False,
                     access_same_data_considered_as_no_access=True,
                     temporal_mapping_type=TemporalMappingType.UNEVEN,
                     salsa_iteration_number=salsa_iterations, salsa_start_temperature=0.05,
                     salsa_opt_criterion="energy", salsa_number_of_core=1)
    t0 = time.perf_counter()
    answers = main.run()
    seconds = time.perf_counter() - t0
    cme = answers[0][0]
    return {"seconds": seconds, **zigzag_counts(cme)}


def zigzag_counts(cme: Any) -> dict[str, Any]:
    """ZigZag's own DRAM traffic (per operand, bytes) and its temporal mapping, from a CostModelEvaluation."""
    from zigzag.hardware.architecture.memory_port import DataDirection
    from zigzag.mapping.data_movement import DataMoveAttr

    per_op: dict[str, dict[str, float]] = {}
    port_words = 0
    for op, levels in cme.mapping.unit_mem_data_movement.items():
        name = OPERANDS[str(op)]
        top = levels[-1]                       # the DRAM level
        count = top.get_attribute(DataMoveAttr.DATA_ELEM_MOVE_COUNT)
        prec = top.get_attribute(DataMoveAttr.DATA_PRECISION)
        # Reads out of DRAM towards the buffer; writes into DRAM from the buffer.
        rd = count.get(DataDirection.RD_OUT_TO_LOW) * prec.get(DataDirection.RD_OUT_TO_LOW)
        wr = count.get(DataDirection.WR_IN_BY_LOW) * prec.get(DataDirection.WR_IN_BY_LOW)
        per_op[name] = {"read_bytes": rd / 8, "write_bytes": wr / 8,
                        "read_words": count.get(DataDirection.RD_OUT_TO_LOW),
                        "write_words": count.get(DataDirection.WR_IN_BY_LOW)}
        acc = cme.memory_word_access[op][-1]
        port_words += acc.get(DataDirection.RD_OUT_TO_LOW) + acc.get(DataDirection.WR_IN_BY_LOW)
    tm = cme.temporal_mapping.mapping_dic_origin
    mapping = {OPERANDS[str(op)]: [[[ZZ_TO_CS.get(str(d), str(d)), int(f)] for d, f in level] for level in lvls]
               for op, lvls in tm.items()}
    total = sum(v["read_bytes"] + v["write_bytes"] for v in per_op.values())
    return {"bytes": total, "operands": per_op, "energy": cme.energy_total,
            "dram_port_accesses": port_words, "port_access_bytes": port_words * DRAM_PORT_BITS / 8,
            "temporal_mapping": mapping}


# ---------------------------------------------------------------------------
# ZigZag temporal mapping -> convsched schedule


def mapping_to_schedule(layer: Any, mapping: dict[str, list[list[list[Any]]]]) -> tuple[Any | None, str]:
    """Express ZigZag's temporal mapping (per operand: [buffer loops, DRAM loops], innermost first) as a
    convsched Schedule, or say why it cannot be.

    The full loop nest is the same for every operand; an operand's buffer sits below its DRAM loops.
    Loops below every buffer run inside one tile and are dropped; adjacent loops of one dimension with
    no buffer between them are merged; a dimension left with two tile loops cannot be expressed
    (convsched tiles each dimension once)."""
    from convsched.core.schedule import Schedule

    nests = {op: [tuple(x) for lvl in lvls for x in lvl] for op, lvls in mapping.items()}
    first = next(iter(nests.values()))
    if any(n != first for n in nests.values()):
        return None, "the operands' loop nests differ"
    if any(len(lvls) != 2 for lvls in mapping.values()):
        return None, "an operand does not have exactly two memory levels (buffer, DRAM)"
    inner = {op: len(lvls[0]) for op, lvls in mapping.items()}      # loops inside each operand's buffer
    cut = min(inner.values())
    boundaries = set(inner.values())
    outer = [(d, f, i) for i, (d, f) in enumerate(first) if i >= cut and f > 1]   # inner-first
    merged: list[list[Any]] = []    # [dim, trips, lowest index, highest index], inner-first
    for d, f, i in outer:
        if merged and merged[-1][0] == d and not any(merged[-1][3] < b <= i for b in boundaries):
            merged[-1][1] *= f
            merged[-1][3] = i
        else:
            merged.append([d, f, i, i])
    dims = [m[0] for m in merged]
    dup = sorted({d for d in dims if dims.count(d) > 1})
    if dup:
        return None, f"dimension(s) {', '.join(dup)} split over two or more tile loops"
    order = tuple(reversed(dims))                         # outermost first
    tiles = {d: layer.dim_size(d) // trips for d, trips, _, _ in merged}
    buffers = {op: sum(1 for m in merged if m[2] >= inner[op]) for op in inner}
    return Schedule(layer, order, tiles, buffers), ""



# ---------------------------------------------------------------------------
# the benchmark


def one_case(label: str, layer: Any, capacity: int, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    from convsched.core.arch import Architecture
    from convsched.model.closed_form import evaluate
    from convsched.search.optimizer import optimize_layer

    arch = Architecture(input_bits=8, weight_bits=8, psum_bits=32, output_bits=8, capacity=capacity)
    t0 = time.perf_counter()
    best = optimize_layer(layer, arch)
    cs_seconds = time.perf_counter() - t0
    opt = best.traffic.total_bytes
    row: dict[str, Any] = {
        "layer": label, "layer_fields": layer.to_dict(), "capacity_bytes": capacity, "macs": layer.macs,
        "convsched": {"bytes": opt, "seconds": cs_seconds,
                      "operands": {op: {"read_bytes": best.traffic.operand(op).read_bytes,
                                        "write_bytes": best.traffic.operand(op).write_bytes}
                                   for op in ("input", "weight", "output")},
                      "schedule": best.schedule.to_dict(), "buffer_bytes": best.traffic.buffer_bytes},
    }
    for engine in ("loma", "salsa"):
        try:
            zz = run_zigzag(layer, arch, engine, workdir, args.lpf_limit, args.salsa_iterations, args.seed)
        except Exception as exc:  # noqa: BLE001 -- a failed ZigZag run is a result to report, not a crash
            row[engine] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        zz["bytes_ratio"] = zz["bytes"] / opt
        zz["time_ratio"] = zz["seconds"] / cs_seconds
        sched, why = mapping_to_schedule(layer, zz["temporal_mapping"])
        if sched is None:
            zz["convsched_model"] = {"expressible": False, "reason": why}
        else:
            tr = evaluate(sched, arch)
            zz["convsched_model"] = {
                "expressible": True, "schedule": sched.to_dict(), "bytes": tr.total_bytes,
                "ratio": tr.total_bytes / opt,
                "operands": {op: {"read_bytes": tr.operand(op).read_bytes, "write_bytes": tr.operand(op).write_bytes}
                             for op in ("input", "weight", "output")},
                "buffer_bytes": tr.buffer_bytes, "fits_convsched_capacity": arch.fits(tr.buffer_words)}
        row[engine] = zz
    return row


def table(rows: list[dict[str, Any]]) -> str:
    head = (f"{'layer':48} {'cap':>6} {'convsched B':>12} {'t_cs s':>7} | {'mapper':6} {'zigzag B':>12} "
            f"{'zz/opt':>7} {'model(zz)/opt':>13} {'t_zz s':>7} {'t_zz/t_cs':>9}")
    lines = [head, "-" * len(head)]
    for r in rows:
        cs = r["convsched"]
        for engine in ("loma", "salsa"):
            z = r[engine]
            left = f"{r['layer'][:48]:48} {r['capacity_bytes'] // 1024:>5}K {cs['bytes']:>12} {cs['seconds']:>7.2f}"
            if "error" in z:
                lines.append(f"{left} | {engine:6} failed: {z['error'][:60]}")
                continue
            m = z["convsched_model"]
            mod = (f"{m['ratio']:.3f}" + ("" if m["fits_convsched_capacity"] else "*")) if m["expressible"] else "n/a"
            lines.append(f"{left} | {engine:6} {z['bytes']:>12.0f} {z['bytes_ratio']:>7.3f} {mod:>13} "
                         f"{z['seconds']:>7.2f} {z['time_ratio']:>9.2f}")
    lines.append("* ZigZag's mapping needs more buffer than the capacity under convsched's sizing "
                 "(output buffer at partial-sum width)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    # Checked before the arguments, so benchmarks/run.sh skips this script cleanly whatever it passes.
    missing = zigzag_missing()
    if missing:
        print(f"bench_zigzag: {missing}; skipping. Install the optional extra: pip install -e '.[bench]'")
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--capacities", default="16KiB,64KiB", help="comma-separated buffer sizes")
    ap.add_argument("--lpf-limit", type=int, default=6,
                    help="LOMA: at most this many loop prime factors (ZigZag's API default is 6)")
    ap.add_argument("--salsa-iterations", type=int, default=500,
                    help="SALSA annealing iterations (ZigZag's own default is 1000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="only the small layer")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)

    logging.disable(logging.CRITICAL)   # ZigZag logs every stage at INFO/WARNING
    from importlib.metadata import version

    caps = [parse_capacity(c.strip()) for c in args.capacities.split(",") if c.strip()]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_zigzag_") as tmp:
        for label, layer in bench_layers(args.quick):
            for cap in caps:
                print(f"... {label}, {cap // 1024} KiB", file=sys.stderr, flush=True)
                rows.append(one_case(label, layer, cap, args, Path(tmp)))
    result = {
        "zigzag_version": version("zigzag-dse"),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU(s)",
        "settings": {"loma_lpf_limit": args.lpf_limit, "salsa_iterations": args.salsa_iterations,
                     "salsa_start_temperature": 0.05, "salsa_cores": 1, "seed": args.seed,
                     "temporal_mapping_type": "uneven", "zigzag_objective": "energy = DRAM port accesses",
                     "word_bits": {"input": 8, "weight": 8, "psum": 32, "output": 8}},
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=_json_default) + "\n", encoding="utf-8")
    print(table(rows))
    print(f"wrote {args.out}")
    return 0


def _json_default(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    try:
        return int(x) if float(x).is_integer() else float(x)
    except (TypeError, ValueError):
        return str(x)


if __name__ == "__main__":
    sys.exit(main())
