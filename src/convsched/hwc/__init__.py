"""The HWC accelerator model and its HWCE-style baseline.

* `config.HWCConfig` -- the machine (MACs/cycle, buffers, word sizes, port,
  DMA set-up, double buffering, clock) from YAML;
* `cycles` -- executes a schedule tile by tile (traffic equal to the model)
  and counts cycles analytically;
* `eventsim` -- an event-level simulation of the same machine (checks `cycles`);
* `hwce` -- the fixed-schedule HWCE-style engine on the same memory port;
* `compare_layer` / `compare_network` -- the optimal schedule per layer under
  the HWC's per-operand buffer capacities, executed, side by side with the
  HWCE-style engine.
"""

from __future__ import annotations

from concurrent.futures import as_completed
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

from ..core.arch import OPERANDS
from ..core.dims import DIMS, ceil_div
from ..core.errors import ConvschedError, NoFeasibleSchedule
from ..core.layer import Layer
from ..core.limits import available_cpus, cap_workers
from ..core.procs import worker_pool
from ..core.schedule import Schedule
from ..model.closed_form import Traffic
from ..networks import Network
from ..search.optimizer import optimize_layer
from ..search.ranking import least_buffer_words, least_bytes
from ..search.space import Constraints, tile_candidates
from ..search.structures import structures
from .config import HWCConfig, HWCEConfig
from .cycles import CycleReport, execute
from .hwce import HWCEResult, hwce_layer


@dataclass(frozen=True)
class HWCRun:
    """The optimal schedule of one layer executed on the HWC."""

    schedule: Schedule
    traffic: Traffic
    report: CycleReport


def run_hwc(layer: Layer, cfg: HWCConfig, schedule: Schedule | None = None) -> HWCRun:
    """Optimise `layer` under the HWC's per-operand capacities (unless `schedule` is given) and execute it."""
    arch = cfg.architecture()
    if schedule is None:
        try:
            schedule = optimize_layer(layer, arch).schedule
        except NoFeasibleSchedule:
            need = smallest_total_buffer(layer, cfg)
            raise ConvschedError(
                f"HWC buffers {'/'.join(map(str, cfg.buffers))} B (input/weight/output"
                f"{', double-buffered' if cfg.double_buffer else ''}) are too small for layer {layer}: "
                f"the smallest total HWC buffer in these proportions that fits is {need} B "
                f"(try --buffer {need}B or more)") from None
    ex = execute(schedule, cfg, arch)
    return HWCRun(schedule, ex.traffic, ex.report)


def smallest_total_buffer(layer: Layer, cfg: HWCConfig) -> int:
    """Least total buffer (split in `cfg`'s proportions) under which some schedule of `layer` fits."""
    arch = cfg.architecture()
    cons = Constraints()
    cands = {d: tile_candidates(layer, d, cons) for d in DIMS}
    need = None
    for row in least_bytes(arch, least_buffer_words(layer, structures(layer, cons, cands), cands)).tolist():
        b = dict(zip(OPERANDS, row))
        # the split gives floor(total * share / S) to input and weight, the rest to the output
        shares = cfg.proportions
        lo = max(ceil_div(b[op] * sum(shares), share) for op, share in zip(OPERANDS, shares))
        total = max(lo, 3)
        while True:   # floors may leave a buffer a byte short: step up until the split fits
            i, w, o = cfg.with_total_buffer(total).buffers
            if i >= b["input"] and w >= b["weight"] and o >= b["output"]:
                break
            total += 1
        need = total if need is None else min(need, total)
    return int(need)


@dataclass(frozen=True)
class LayerComparison:
    name: str
    kind: str
    layer: Layer
    hwc: HWCRun
    hwce: HWCEResult

    @property
    def supported(self) -> bool:
        return self.hwce.supported

    @property
    def ratio(self) -> float | None:
        return self.hwce.bytes / self.hwc.traffic.total_bytes if self.supported else None

    def to_dict(self, cfg: HWCConfig) -> dict[str, Any]:
        r, t = self.hwc.report, self.hwc.traffic
        return {
            "name": self.name, "kind": self.kind, "layer": self.layer.to_dict(),
            "hwc_bytes": t.total_bytes, "hwce_bytes": self.hwce.bytes if self.supported else None,
            "ratio": self.ratio,
            "hwc_cycles": r.cycles, "hwce_cycles": self.hwce.cycles if self.supported else None,
            "macs": self.layer.macs,
            "hwc_bandwidth_gbs": r.full_speed_bandwidth_gbs,
            "hwce_bandwidth_gbs": cfg.gbs(self.hwce.bytes, self.hwce.compute_cycles) if self.supported else None,
            "hwc_avg_bandwidth_gbs": r.avg_bandwidth_gbs,
            "hwc_peak_bandwidth_gbs": r.peak_bandwidth_gbs,
            "hwc_mac_utilisation": r.mac_utilisation,
            "hwc_stall_cycles": r.stall_cycles,
            "hwc_words": {op: {"read": t.operand(op).read, "write": t.operand(op).write}
                          for op in OPERANDS},
            "hwc_buffer_bytes": dict(t.buffer_bytes),
            "schedule": self.hwc.schedule.to_dict(),
            "hwce_mode": self.hwce.mode, "hwce_supported": self.supported,
            "hwce_words": {"input": self.hwce.input_words, "weight": self.hwce.weight_words,
                           "psum_read": self.hwce.psum_read_words, "write": self.hwce.psum_write_words},
            "hwce_notes": list(self.hwce.notes),
        }


def compare_layer(layer: Layer, cfg: HWCConfig, name: str = "layer", kind: str = "conv",
                  schedule: Schedule | None = None) -> LayerComparison:
    return LayerComparison(name, kind, layer, run_hwc(layer, cfg, schedule), hwce_layer(layer, cfg, kind))


def _run_one(args: tuple[Layer, HWCConfig]) -> HWCRun:
    return run_hwc(*args)


def run_distinct(layers: Sequence[Layer], cfg: HWCConfig, jobs: int | None = None,
                 progress: Callable[[int, int], None] | None = None) -> dict[Layer, HWCRun]:
    """HWC runs of each distinct layer (identical layers optimised once), in `jobs` processes;
    `progress(done, total)` is called as distinct layers finish (after the workers are forked)."""
    distinct = list(dict.fromkeys(layers))
    jobs = cap_workers(jobs if jobs is not None else min(2, available_cpus()))
    report = progress or (lambda done, total: None)
    runs: dict[Layer, HWCRun] = {}
    if jobs <= 1 or len(distinct) <= 1:
        report(0, len(distinct))
        for L in distinct:
            runs[L] = run_hwc(L, cfg)
            report(len(runs), len(distinct))
        return runs
    with worker_pool(min(jobs, len(distinct))) as pool:      # stopped at once on an error or a signal
        futures = {pool.submit(_run_one, (L, cfg)): L for L in distinct}
        report(0, len(distinct))
        for f in as_completed(futures):
            runs[futures[f]] = f.result()
            report(len(runs), len(distinct))
    return {L: runs[L] for L in distinct}


def compare_network(network: Network, cfg: HWCConfig, jobs: int | None = None,
                    progress: Callable[[int, int], None] | None = None) -> list[LayerComparison]:
    """Every layer of `network` on the HWC and the HWCE-style engine."""
    runs = run_distinct([nl.layer for nl in network.layers], cfg, jobs, progress)
    return [LayerComparison(nl.name, nl.kind, nl.layer, runs[nl.layer], hwce_layer(nl.layer, cfg, nl.kind))
            for nl in network.layers]


def totals(rows: Iterable[LayerComparison], cfg: HWCConfig) -> dict[str, Any]:
    """Network totals over the layers the HWCE-style engine supports (both engines on the same layers)."""
    rows = [r for r in rows if r.supported]
    hb = sum(r.hwc.traffic.total_bytes for r in rows)
    eb = sum(r.hwce.bytes for r in rows)
    hc = sum(r.hwc.report.cycles for r in rows)
    ec = sum(r.hwce.cycles for r in rows)
    hcomp = sum(r.hwc.report.compute_cycles for r in rows)
    ecomp = sum(r.hwce.compute_cycles for r in rows)
    return {"hwc_bytes": hb, "hwce_bytes": eb, "ratio": eb / hb if hb else None,
            "hwc_cycles": hc, "hwce_cycles": ec,
            "hwc_bandwidth_gbs": cfg.gbs(hb, hcomp), "hwce_bandwidth_gbs": cfg.gbs(eb, ecomp),
            "max_layer_ratio": max((r.ratio for r in rows), default=None),
            "layers_compared": len(rows)}


__all__ = ["HWCConfig", "HWCEConfig", "HWCRun", "LayerComparison", "run_hwc", "compare_layer",
           "compare_network", "run_distinct", "totals", "hwce_layer", "execute"]
