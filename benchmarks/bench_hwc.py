"""HWC vs the HWCE-style engine on the paper's kind of networks (issue: HWC accelerator).

For each network and HWC total buffer size (split in the default
configuration's 3:2:3 input:weight:output proportions), the optimal schedule
of every distinct layer under the HWC's per-operand capacities is executed on
the HWC and compared with the HWCE-style engine (default configuration:
16-bit words, 4 planes per pass, 3x3/5x5/4x7 modes). Results are merged into
benchmarks/results/hwc.json after every (network, size), so a long run can be
stopped and resumed; the per-layer buffer sweep (--layer-sweep) goes to
benchmarks/results/hwc_layer_sweep.json.

    .venv/bin/python benchmarks/bench_hwc.py [--networks zfnet,alexnet,...] [--sizes 64KiB,16KiB]
    .venv/bin/python benchmarks/bench_hwc.py --summary     # markdown tables of what hwc.json holds
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from convsched.hwc import HWCConfig, compare_network, totals
from convsched.hwc.hwce import hwce_layer
from convsched.networks import load_target
from convsched.core.units import parse_size

RESULTS = Path(__file__).parent / "results" / "hwc.json"
SWEEP_RESULTS = Path(__file__).parent / "results" / "hwc_layer_sweep.json"
NETWORKS = ["zfnet", "alexnet", "vgg16", "resnet18", "resnet50", "mobilenet_v2"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--networks", default=",".join(NETWORKS))
    ap.add_argument("--sizes", default="64KiB")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--summary", action="store_true")
    ap.add_argument("--bounds", action="store_true",
                    help="HWCE bytes vs compulsory traffic (the best any HWC schedule could do), instantly")
    ap.add_argument("--layer-sweep", default=None,
                    help="sizes for the per-layer sweep of SWEEP_LAYERS, e.g. 4KiB,16KiB,64KiB,256KiB")
    args = ap.parse_args()
    if args.summary:
        summary()
        return
    if args.bounds:
        bounds()
        return
    if args.layer_sweep:
        layer_sweep([parse_size(x) for x in args.layer_sweep.split(",")])
        return
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    base = HWCConfig.default()
    data["config"] = base.to_dict()
    runs = data.setdefault("runs", {})
    for size_text in args.sizes.split(","):
        size = parse_size(size_text)
        cfg = base.with_total_buffer(size)
        for net in args.networks.split(","):
            key = f"{net}@{size}"
            if key in runs:
                continue
            t0 = time.time()
            network = load_target(net)
            rows = compare_network(network, cfg, jobs=args.jobs)
            layers = [r.to_dict(cfg) for r in rows]
            for d in layers:      # keep the file small
                d.pop("layer", None)
            tot = totals(rows, cfg)
            conv_only = totals([r for r in rows if r.kind == "conv"], cfg)
            # sensitivity: the HWCE-style engine striding natively, and with FC layers excluded
            native = HWCConfig.from_dict({"hwce": {"stride": "native"}}, base=cfg)
            nat = {r.name: hwce_layer(r.layer, native, r.kind).bytes for r in rows}
            entry = {"network": net, "buffer_bytes": size, "buffers": list(cfg.buffers),
                     "seconds": round(time.time() - t0, 1), "layers": layers, "totals": tot,
                     "totals_conv_only": conv_only, "hwce_native_stride_bytes": nat}
            data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}   # merge with the other run
            data["config"] = base.to_dict()
            data.setdefault("runs", {})[key] = entry
            RESULTS.write_text(json.dumps(data, indent=1) + "\n")
            tot = entry["totals"]
            print(f"{key}: ratio {tot['ratio']:.2f} (conv only {conv_only['ratio']:.2f}), "
                  f"max layer {tot['max_layer_ratio']:.2f}, {time.time() - t0:.0f}s", flush=True)


#: representative layers for the buffer sweep: (network, layer name)
SWEEP_LAYERS = [("resnet18", "layer1.0.conv1"), ("alexnet", "conv2"), ("resnet18", "layer4.0.conv2"),
                ("resnet50", "layer3.0.conv1"), ("mobilenet_v2", "features.2.conv.1.0"), ("vgg16", "conv1_2")]


def layer_sweep(sizes: list[int]) -> None:
    """HWC bytes of single layers over HWC buffer sizes (the HWCE's bytes do not depend on it)."""
    from convsched.hwc import compare_layer
    base = HWCConfig.default()
    for net, name in SWEEP_LAYERS:
        nl = next(n for n in load_target(net).layers if n.name == name)
        for size in sizes:
            data = json.loads(SWEEP_RESULTS.read_text()) if SWEEP_RESULTS.exists() else {}
            key = f"{net}/{name}@{size}"
            if key in data:
                continue
            t0 = time.time()
            cfg = base.with_total_buffer(size)
            try:
                d = compare_layer(nl.layer, cfg, name, nl.kind).to_dict(cfg)
                d.pop("layer", None)
            except Exception as e:  # buffers too small: record it
                d = {"error": str(e)}
            d.update(network=net, buffer_bytes=size, seconds=round(time.time() - t0, 1))
            data = json.loads(SWEEP_RESULTS.read_text()) if SWEEP_RESULTS.exists() else {}
            data[key] = d
            SWEEP_RESULTS.write_text(json.dumps(data, indent=1) + "\n")
            print(key, d.get("ratio"), d.get("error", ""), f"{d['seconds']}s", flush=True)


def compulsory_bytes(layer, cfg: HWCConfig) -> int:
    """Every input element some output reads, every weight and every output moved exactly once."""
    from convsched.search.prune import compulsory_input_words
    return (-(-compulsory_input_words(layer) * cfg.input_bits // 8) - (-layer.weight_words * cfg.weight_bits // 8)
            - (-layer.output_words * cfg.output_bits // 8))


def bounds() -> None:
    """Per network: HWCE bytes and the ratio's ceiling hwce / compulsory (no HWC schedule can beat it)."""
    cfg = HWCConfig.default()
    out = {}
    for net in NETWORKS:
        network = load_target(net)
        layers = []
        for nl in network.layers:
            h = hwce_layer(nl.layer, cfg, nl.kind)
            c = compulsory_bytes(nl.layer, cfg)
            layers.append({"name": nl.name, "kind": nl.kind, "hwce_bytes": h.bytes, "compulsory_bytes": c,
                           "ratio_ceiling": h.bytes / c, "hwce_mode": h.mode})
        hb = sum(d["hwce_bytes"] for d in layers)
        cb = sum(d["compulsory_bytes"] for d in layers)
        conv = [d for d in layers if d["kind"] == "conv"]
        out[net] = {"hwce_bytes": hb, "compulsory_bytes": cb, "ratio_ceiling": hb / cb,
                    "conv_ratio_ceiling": sum(d["hwce_bytes"] for d in conv) / sum(d["compulsory_bytes"] for d in conv),
                    "max_layer_ceiling": max(layers, key=lambda d: d["ratio_ceiling"]), "layers": layers}
        print(f"{net}: HWCE {hb / 1e6:.1f} MB, compulsory {cb / 1e6:.1f} MB, ceiling {hb / cb:.2f}x "
              f"(conv only {out[net]['conv_ratio_ceiling']:.2f}x), best layer "
              f"{out[net]['max_layer_ceiling']['name']} {out[net]['max_layer_ceiling']['ratio_ceiling']:.2f}x")
    (RESULTS.parent / "hwc_bounds.json").write_text(json.dumps(out, indent=1) + "\n")


def summary() -> None:
    """Markdown: per (network, size) totals, then per-layer ratios, from hwc.json."""
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"runs": {}}
    runs = data["runs"]
    print("| network | HWC buffer | HWC MB | HWCE MB | ratio | conv-only ratio | max layer ratio (layer) | layers >= 14x |")
    print("|---|---|---|---|---|---|---|---|")
    for key, r in runs.items():
        t, tc = r["totals"], r["totals_conv_only"]
        rated = [d for d in r["layers"] if d["ratio"] is not None]
        best = max(rated, key=lambda d: d["ratio"])
        over = sum(1 for d in rated if d["ratio"] >= 14)
        print(f"| {r['network']} | {r['buffer_bytes'] // 1024} KiB | {t['hwc_bytes'] / 1e6:.2f} | "
              f"{t['hwce_bytes'] / 1e6:.2f} | {t['ratio']:.2f} | {tc['ratio']:.2f} | "
              f"{best['ratio']:.2f} ({best['name']}) | {over}/{len(rated)} |")
    for key, r in runs.items():
        print(f"\n#### {r['network']}, HWC buffer {r['buffer_bytes'] // 1024} KiB\n")
        print("| layer | HWCE mode | HWC bytes | HWCE bytes | ratio | ratio, HWCE striding natively | "
              "HWC GB/s | HWCE GB/s | HWC cycles | HWCE cycles |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for d in r["layers"]:
            nat = r["hwce_native_stride_bytes"].get(d["name"])
            nr = f"{nat / d['hwc_bytes']:.2f}" if nat and d["ratio"] is not None else "-"
            print(f"| {d['name']} | {d['hwce_mode']} | {d['hwc_bytes']:,} | {d['hwce_bytes'] or 0:,} | "
                  f"{d['ratio']:.2f} | {nr} | {d['hwc_bandwidth_gbs']:.3f} | {d['hwce_bandwidth_gbs']:.3f} | "
                  f"{d['hwc_cycles']:,} | {d['hwce_cycles']:,} |")
    if SWEEP_RESULTS.exists():
        sw = json.loads(SWEEP_RESULTS.read_text())
        print("\n| layer | HWC buffer | HWC bytes | HWCE bytes | ratio | HWC schedule (order / tiles) |")
        print("|---|---|---|---|---|---|")
        for key, d in sorted(sw.items(), key=lambda kv: (kv[0].split("@")[0], kv[1]["buffer_bytes"])):
            if "error" in d:
                print(f"| {key.split('@')[0]} | {d['buffer_bytes'] // 1024} KiB | - | - | - | {d['error']} |")
                continue
            s = d["schedule"]
            print(f"| {key.split('@')[0]} | {d['buffer_bytes'] // 1024} KiB | {d['hwc_bytes']:,} | "
                  f"{d['hwce_bytes']:,} | {d['ratio']:.2f} | {' '.join(s['order'])} / "
                  f"{' '.join(f'{k}{v}' for k, v in s['tiles'].items())} |")


if __name__ == "__main__":
    main()
