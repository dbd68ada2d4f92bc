"""Earlier published traffic models and the textbook dataflows, side by side with
convsched's exact model.

Each module has a docstring with its citation and assumptions and exposes

* ``expresses(schedule) -> bool`` -- whether the schedule is in its space;
* ``predict(schedule, arch) -> Prediction`` -- its predicted traffic (bytes per
  operand, `.total`);
* ``choose(layer, arch) -> Schedule | None`` -- the schedule it would pick under
  the architecture's capacity (its own model as the objective, over the
  schedules of its space that really fit).

`compare` measures their prediction errors against the exact model and the
exact traffic of the schedules they choose against the convsched optimum.
"""

from __future__ import annotations

from types import ModuleType

from . import peemen2013, peemen2015, textbook, wolflam, yang2016, zhang2015
from ._loopnest import Prediction

#: key -> module, in the order reports list them.
MODELS: dict[str, ModuleType] = {
    "zhang2015": zhang2015,
    "peemen2013": peemen2013,
    "peemen2015": peemen2015,
    "yang2016": yang2016,
    "wolflam": wolflam,
}

#: Display names.
NAMES: dict[str, str] = {k: m.MODEL.name for k, m in MODELS.items()}
NAMES["textbook"] = "textbook dataflows"

__all__ = ["MODELS", "NAMES", "Prediction", "textbook"]
