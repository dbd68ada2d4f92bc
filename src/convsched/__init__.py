"""convsched: off-chip-memory-optimal schedules for CNN convolutions on scratchpad accelerators.

The public face of the library. A layer, an architecture and a schedule go in; the words and bytes
moved between main memory and the on-chip buffers come out, from one exact semantics
(docs/semantics.md) computed three ways: the closed-form model (`evaluate`), the walking simulator
(`simulate`) and generated C (`convsched.codegen`). The optimizer finds the schedule that moves the
fewest bytes, per layer (`optimize_layer`), per network (`optimize_network`) and over buffer sizes
(`sweep`)::

    >>> import convsched as cs
    >>> layer = cs.Layer(K=64, C=64, OY=56, OX=56, FY=3, FX=3, PY=1, PX=1)
    >>> best = cs.optimize_layer(layer, cs.Architecture(capacity=64 * 1024))
    >>> best.traffic.total_bytes, best.schedule.order
    (438272, ('OY', 'OX', 'K'))
    >>> cs.evaluate(best.schedule, cs.Architecture(capacity=64 * 1024)) == best.traffic
    True
    >>> net = cs.load_target("K=16,C=8,OY=8,OX=8,FY=3,FX=3,PY=1,PX=1")
    >>> cs.optimize_network(net, cs.Architecture(capacity=1024), workers=1).total_bytes
    2688

Everything else lives in the package's folders (core, model, search, analysis, report, codegen,
hwc, networks, cli; see the README's Architecture section); the names below are the ones a library
user needs, and they stay where they are.
"""

from __future__ import annotations

from .core.arch import Architecture
from .core.errors import ConvschedError, NoFeasibleSchedule
from .core.layer import Layer
from .core.schedule import Schedule
from .model.closed_form import Traffic, evaluate
from .model.simulate import SimResult, simulate
from .networks import NetLayer, Network, load_target
from .search.network import NetworkResult, SweepResult, optimize_network, sweep
from .search.optimizer import Constraints, LayerResult, optimize_layer

__all__ = [
    # the domain types
    "Layer", "Architecture", "Schedule", "Network", "NetLayer", "Constraints",
    # traffic of a given schedule: the exact model and the walking simulator
    "evaluate", "Traffic", "simulate", "SimResult",
    # the optimizer
    "optimize_layer", "LayerResult", "optimize_network", "NetworkResult", "sweep", "SweepResult",
    # networks from built-in names, layer files, ONNX models and inline specs
    "load_target",
    # errors
    "ConvschedError", "NoFeasibleSchedule",
]

try:
    from importlib.metadata import version as _version
    __version__ = _version("convsched")
except Exception:        # running from a source tree that was never installed
    __version__ = "0+unknown"
