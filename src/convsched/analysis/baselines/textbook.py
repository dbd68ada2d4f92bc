"""The textbook fixed dataflows: weight-, output- and input-stationary
(`search.TEXTBOOK`: a fixed loop order and buffer placement each, filters
untiled, best tiles found by the exact optimizer restricted to that space).

They are spaces, not traffic models: convsched's exact model is their model,
so their prediction error is zero by construction; what they cost is the
traffic of the best textbook schedule against the unrestricted optimum.

Expressible convsched schedules: one of the `search.TEXTBOOK` orders and
buffer levels (dimensions with one trip may be left out), FY/FX untiled.
"""

from __future__ import annotations

from ...core.arch import Architecture
from ...core.layer import Layer
from ...core.schedule import Schedule
from ...model.closed_form import evaluate
from ...search.optimizer import TEXTBOOK, best_textbook
from .loopnest import Prediction

NAME = "textbook"


def expresses(schedule: Schedule) -> bool:
    if any(d in schedule.order for d in ("FY", "FX")):
        return False
    order = tuple(schedule.order)
    for full, levels in TEXTBOOK.values():
        if any(d not in full for d in order) or order != tuple(d for d in full if d in order):
            continue
        # loops the optimizer left out have one trip; map the textbook levels onto the kept loops
        mapped = {op: sum(1 for d in full[:b] if d in order) for op, b in levels.items()}
        if dict(schedule.buffers) == mapped and all(schedule.trips(d) == 1 for d in full if d not in order):
            return True
    return False


def predict(schedule: Schedule, arch: Architecture) -> Prediction:
    t = evaluate(schedule, arch)
    return Prediction(t.input.bytes, t.weight.bytes, t.output.bytes, t.total_words)


def choose(layer: Layer, arch: Architecture) -> Schedule | None:
    found = best_textbook(layer, arch)
    return None if found is None else found[1].schedule
