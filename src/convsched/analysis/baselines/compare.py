"""The earlier models side by side with the exact model.

For one layer (or every layer of a network) at one architecture:

(a) **prediction error** of each model against the exact model on schedules
    it can express: the schedule it chooses, the convsched optimum when it is
    in the model's space, and a reproducible random sample of its space
    (schedules that really fit). Relative error = (predicted - exact) / exact
    bytes; reported as the mean of |error| and the worst (largest |error|,
    with its sign: negative means the model promised less traffic than the
    schedule moves).
(b) **loss**: the exact traffic of the schedule the model chooses over the
    convsched optimum's (>= 1; what a designer loses by trusting the model).

The textbook dataflows are spaces searched with the exact model, so their
error is 0 by construction and only their loss is reported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Literal, Mapping, Sequence

from ...core.arch import Architecture
from ...core.layer import Layer
from ...core.schedule import Schedule
from ...model.closed_form import evaluate
from ...search.network import NetworkResult
from ...search.optimizer import LayerResult, best_textbook, optimize_layer
from . import MODELS, NAMES

DEFAULT_SAMPLES = 12


@dataclass(frozen=True)
class ScheduleError:
    """A model's predicted bytes of one schedule of its space against the exact model's."""

    kind: Literal["chosen", "optimum", "sample"]   # the schedule it chose, the optimum, or one of its sample
    predicted: int       # bytes
    exact: int           # bytes

    @property
    def error(self) -> float:
        if self.exact == 0:
            return 0.0 if self.predicted == 0 else math.inf
        return (self.predicted - self.exact) / self.exact


@dataclass(frozen=True)
class ModelOnLayer:
    """One model on one layer: its errors and the exact cost of its choice."""

    model: str
    errors: tuple[ScheduleError, ...]
    chosen: Schedule | None
    chosen_exact: int | None       # exact bytes of the chosen schedule (None: nothing of its space fits)
    optimum: int                   # exact bytes of the convsched optimum

    @property
    def mean_error(self) -> float | None:
        if not self.errors:
            return None
        return sum(abs(e.error) for e in self.errors) / len(self.errors)

    @property
    def worst_error(self) -> float | None:
        if not self.errors:
            return None
        return max((e.error for e in self.errors), key=abs)

    @property
    def loss(self) -> float | None:
        if self.chosen_exact is None:
            return None
        return self.chosen_exact / self.optimum if self.optimum else 1.0

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "name": NAMES.get(self.model, self.model),
                "mean_error": self.mean_error, "worst_error": self.worst_error,
                "schedules": len(self.errors), "optimum_expressible": any(e.kind == "optimum" for e in self.errors),
                "chosen": None if self.chosen is None else _sched_json(self.chosen),
                "chosen_exact_bytes": self.chosen_exact, "optimum_bytes": self.optimum, "loss": self.loss}


def _sched_json(s: Schedule) -> dict[str, Any]:
    d = s.to_dict()
    return {"order": d["order"], "tiles": d["tiles"], "buffers": d["buffers"]}


def compare_layer(layer: Layer, arch: Architecture, optimum: LayerResult | None = None,
                  textbook: LayerResult | None | Literal["compute"] = "compute", samples: int = DEFAULT_SAMPLES,
                  seed: int = 0, models: Sequence[str] | None = None) -> dict[str, ModelOnLayer]:
    """Every model (and the textbook dataflows) on one layer; `optimum` is solved when not given, the best
    textbook dataflow when `textbook` is "compute" (None: no textbook dataflow fits)."""
    if optimum is None:
        optimum = optimize_layer(layer, arch)
    opt_bytes = optimum.traffic.total_bytes
    out: dict[str, ModelOnLayer] = {}
    for key in (models or list(MODELS)):
        model = MODELS[key]
        errs: list[ScheduleError] = []
        chosen = model.choose(layer, arch)
        chosen_exact = None
        if chosen is not None:
            chosen_exact = evaluate(chosen, arch).total_bytes
            errs.append(ScheduleError("chosen", model.predict(chosen, arch).total, chosen_exact))
        if model.expresses(optimum.schedule):
            errs.append(ScheduleError("optimum", model.predict(optimum.schedule, arch).total, opt_bytes))
        for s in model.sample(layer, arch, samples, seed):
            errs.append(ScheduleError("sample", model.predict(s, arch).total, evaluate(s, arch).total_bytes))
        out[key] = ModelOnLayer(key, tuple(errs), chosen, chosen_exact, opt_bytes)
    if textbook == "compute":
        found = best_textbook(layer, arch)
        textbook = None if found is None else found[1]
    tb = textbook if isinstance(textbook, LayerResult) else None
    out["textbook"] = ModelOnLayer("textbook", (), None if tb is None else tb.schedule,
                                   None if tb is None else tb.traffic.total_bytes, opt_bytes)
    return out


@dataclass(frozen=True)
class NetworkComparison:
    """Per-layer comparisons (network order) and per-network summaries of each model."""

    names: list[str]
    layers: list[dict[str, ModelOnLayer]]

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per model: mean |error| over all its (layer, schedule) pairs, worst error, network loss."""
        out: dict[str, dict[str, Any]] = {}
        keys = list(self.layers[0]) if self.layers else []
        for key in keys:
            rows = [lc[key] for lc in self.layers]
            errs = [e.error for r in rows for e in r.errors]
            chosen = [r.chosen_exact for r in rows]
            opt = sum(r.optimum for r in rows)
            loss = None if any(c is None for c in chosen) else (sum(chosen) / opt if opt else 1.0)  # type: ignore[arg-type]
            out[key] = {"name": NAMES.get(key, key),
                        "mean_error": (sum(abs(e) for e in errs) / len(errs)) if errs else None,
                        "worst_error": max(errs, key=abs) if errs else None,
                        "schedules": len(errs),
                        "chosen_total_bytes": None if loss is None else sum(chosen),  # type: ignore[arg-type]
                        "optimum_total_bytes": opt, "loss": loss,
                        "worst_layer_loss": max((r.loss for r in rows if r.loss is not None), default=None)}
        return out

    def to_json(self) -> dict[str, Any]:
        return {"layers": [{"name": n, "models": {k: v.to_json() for k, v in lc.items()}}
                           for n, lc in zip(self.names, self.layers)],
                "summary": self.summary()}


def compare_network(names: Sequence[str], layers: Sequence[Layer], archs: Sequence[Architecture],
                    optima: Sequence[LayerResult], textbooks: Sequence[LayerResult | None] | None = None,
                    samples: int = DEFAULT_SAMPLES, seed: int = 0,
                    progress: Callable[[int, int], None] | None = None) -> NetworkComparison:
    """`compare_layer` for each layer (equal layers on equal architectures are compared once);
    `progress(done, total)` is called as layers are done."""
    cache: dict[tuple[Layer, Architecture], dict[str, ModelOnLayer]] = {}
    rows = []
    for i, (layer, arch, opt) in enumerate(zip(layers, archs, optima)):
        if progress:
            progress(i, len(layers))
        key = (layer, arch)
        if key not in cache:
            tb: LayerResult | None | Literal["compute"] = "compute" if textbooks is None else textbooks[i]
            cache[key] = compare_layer(layer, arch, opt, tb, samples, seed)
        rows.append(cache[key])
    if progress:
        progress(len(layers), len(layers))
    return NetworkComparison(list(names), rows)


def compare_result(result: NetworkResult, samples: int = DEFAULT_SAMPLES, seed: int = 0,
                   progress: Callable[[int, int], None] | None = None) -> NetworkComparison:
    """Compare on a network's optimization result (its optima and best textbook dataflows)."""
    entries = result.entries
    return compare_network([e.name for e in entries], [e.net_layer.layer for e in entries],
                           [e.arch for e in entries], [e.result for e in entries],
                           [e.textbook for e in entries], samples, seed, progress)


def format_error(x: float | None) -> str:
    if x is None:
        return "n/a"
    if math.isinf(x):
        return "inf"
    return f"{x * 100:+.1f}%"


def summary_rows(summary: Mapping[str, Mapping[str, Any]]) -> list[list[str]]:
    """Rows (model, mean |error|, worst error, loss) for tables."""
    rows = []
    for key, s in summary.items():
        mean = "0 (exact model)" if key == "textbook" else (
            "n/a" if s["mean_error"] is None else f"{s['mean_error'] * 100:.1f}%")
        worst = "0" if key == "textbook" else format_error(s["worst_error"])
        loss = "n/a" if s["loss"] is None else f"{s['loss']:.3f}x"
        rows.append([s["name"], mean, worst, loss])
    return rows
