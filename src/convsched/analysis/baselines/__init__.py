"""Earlier published traffic models and the textbook dataflows, side by side with
convsched's exact model.

Each model's module has a docstring with its citation and assumptions and
holds its `MODEL`, a `loopnest.LoopNestModel` with

* ``expresses(schedule) -> bool`` -- whether the schedule is in its space;
* ``predict(schedule, arch) -> Prediction`` -- its predicted traffic (bytes per
  operand, `.total`);
* ``choose(layer, arch) -> Schedule | None`` -- the schedule it would pick under
  the architecture's capacity (its own model as the objective, over the
  schedules of its space that really fit);
* ``sample(layer, arch, count, seed)`` -- schedules of its space that fit.

`textbook` has the first three for the textbook dataflows.

`compare` measures their prediction errors against the exact model and the
exact traffic of the schedules they choose against the convsched optimum.
"""

from __future__ import annotations

from . import peemen2013, peemen2015, textbook, wolflam, yang2016, zhang2015
from .loopnest import LoopNestModel, Prediction

#: key -> model, in the order reports list them.
MODELS: dict[str, LoopNestModel] = {
    "zhang2015": zhang2015.MODEL,
    "peemen2013": peemen2013.MODEL,
    "peemen2015": peemen2015.MODEL,
    "yang2016": yang2016.MODEL,
    "wolflam": wolflam.MODEL,
}

#: Display names.
NAMES: dict[str, str] = {k: m.name for k, m in MODELS.items()}
NAMES["textbook"] = "textbook dataflows"

__all__ = ["MODELS", "NAMES", "LoopNestModel", "Prediction", "textbook"]
