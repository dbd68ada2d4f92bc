"""HWC vs the HWCE-style engine on the paper's kind of networks (issue: HWC accelerator).

For each network and HWC total buffer size (split in the default
configuration's 3:2:3 input:weight:output proportions), the optimal schedule
of every distinct layer under the HWC's per-operand capacities is executed on
the HWC and compared with the HWCE-style engine (default configuration:
16-bit words, 4 planes per pass, 3x3/5x5/4x7 modes). Results are merged into
benchmarks/results/hwc.json after every (network, size), so a long run can be
stopped and resumed.

    .venv/bin/python benchmarks/bench_hwc.py [--networks zfnet,alexnet,...] [--sizes 64KiB,16KiB]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from convsched.hwc import HWCConfig, compare_network, totals
from convsched.hwc.hwce import hwce_layer
from convsched.networks import load_target
from convsched.units import parse_size

RESULTS = Path(__file__).parent / "results" / "hwc.json"
NETWORKS = ["zfnet", "alexnet", "vgg16", "resnet18", "resnet50", "mobilenet_v2"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--networks", default=",".join(NETWORKS))
    ap.add_argument("--sizes", default="64KiB")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
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
            runs[key] = {"network": net, "buffer_bytes": size, "buffers": list(cfg.buffers),
                         "seconds": round(time.time() - t0, 1), "layers": layers, "totals": tot,
                         "totals_conv_only": conv_only,
                         "hwce_native_stride_bytes": nat}
            RESULTS.write_text(json.dumps(data, indent=1) + "\n")
            print(f"{key}: ratio {tot['ratio']:.2f} (conv only {conv_only['ratio']:.2f}), "
                  f"max layer {tot['max_layer_ratio']:.2f}, {time.time() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
