"""Earlier published traffic models: hand-checked predictions, their spaces, choices and the comparison."""

import pytest

from convsched.core.arch import OPERANDS, Architecture
from convsched.analysis.baselines import (MODELS, peemen2013, peemen2015, textbook, wolflam, yang2016,
                                          zhang2015)
from convsched.analysis.baselines.compare import NetworkComparison, compare_layer, compare_network
from convsched.core.layer import Layer
from convsched.model.closed_form import evaluate
from convsched.core.schedule import Schedule
from convsched.search.optimizer import optimize_layer

L = Layer(K=4, C=2, OY=4, OX=4, FY=3, FX=3, PY=1, PX=1)   # input 4x4, 'same' padding
A = Architecture(input_bits=8, weight_bits=8, psum_bits=32, output_bits=8)


def zhang_schedule():
    return Schedule(L, ("OY", "OX", "K", "C"), {"OY": 2, "OX": 4, "K": 2, "C": 1},
                    {"input": 4, "weight": 4, "output": 3})


def test_zhang_by_hand():
    s = zhang_schedule()
    assert zhang2015.MODEL.expresses(s)
    p = zhang2015.MODEL.predict(s, A)
    # 2*1*2*2 = 8 tiles; input tile 1 x (1*1+3) x (3*1+3) = 24 words; weight tile 2*1*9 = 18; 4 output tiles of 16
    assert (p.input, p.weight, p.output) == (8 * 24, 8 * 18, 4 * 16)
    exact = evaluate(s, A)
    assert exact.total_bytes != p.total   # padding clipped, unchanged blocks not reloaded


def test_spaces():
    s = zhang_schedule()
    assert peemen2013.MODEL.expresses(s)                # Zhang's loop nest is one of Peemen's
    assert not zhang2015.MODEL.expresses(Schedule(L, ("K", "OY"), {"K": 2, "OY": 2}, {"input": 2, "weight": 1, "output": 2}))
    assert peemen2013.MODEL.expresses(Schedule(L, ("K", "OY"), {"K": 2, "OY": 2}, {"input": 2, "weight": 1, "output": 2}))
    assert not zhang2015.MODEL.expresses(Schedule(L, ("FY",), {"FY": 1}, {"input": 1, "weight": 1, "output": 0}))
    assert wolflam.MODEL.expresses(Schedule(L, ("K", "OY"), {"K": 2, "OY": 2}, {op: 1 for op in OPERANDS}))
    assert not wolflam.MODEL.expresses(Schedule(L, ("K", "OY"), {"K": 2, "OY": 2}, {"input": 2, "weight": 1, "output": 2}))
    assert yang2016.MODEL.expresses(Schedule(L, ("K", "OY"), {"K": 2, "OY": 2}, {"input": 0, "weight": 1, "output": 2}))


def test_where_the_assumptions_hold_the_models_are_exact():
    layer = Layer(K=4, C=3, OY=6, OX=6, FY=3, FX=3)          # no padding, stride 1
    untiled = Schedule(layer, (), {}, {op: 0 for op in OPERANDS})
    exact = evaluate(untiled, A).total_bytes
    for mod in (yang2016.MODEL, wolflam.MODEL):
        assert mod.expresses(untiled)
        assert mod.predict(untiled, A).total == exact


def test_overlap_and_halo():
    layer = Layer(K=2, C=2, OY=8, OX=8, FY=3, FX=3)
    s = Schedule(layer, ("K", "OY"), {"K": 1, "OY": 2}, {"input": 2, "weight": 1, "output": 2})
    p13, p15 = peemen2013.MODEL.predict(s, A), peemen2015.MODEL.predict(s, A)
    assert p15.input < p13.input and p15.weight == p13.weight
    # Peemen'15 reloads only the t*S new rows along the innermost input loop: 2 K x (4 rows + 3 * 2 rows) x 10 x 2
    assert p15.input == 2 * (4 + 3 * 2) * 10 * 2
    assert p15.input == evaluate(s, A).input.read_bytes     # here that is exactly what is moved
    wl = Schedule(layer, ("K", "OY"), {"K": 1, "OY": 2}, {op: 2 for op in OPERANDS})
    assert wolflam.MODEL.predict(wl, A).input == 2 * 4 * (2 * 10 * 2)   # t*S = 2 rows per tile, no halo


def test_choices_fit_and_are_expressible():
    arch = A.with_capacity(256)
    for key, mod in MODELS.items():
        s = mod.choose(L, arch)
        assert s is not None, key
        assert mod.expresses(s), key
        assert arch.fits(evaluate(s, arch).buffer_words), key
        for t in mod.sample(L, arch, 5):
            assert mod.expresses(t) and arch.fits(evaluate(t, arch).buffer_words)
    assert textbook.expresses(textbook.choose(L, arch))
    assert MODELS["zhang2015"].choose(L, A.with_capacity(1)) is None


def test_compare_layer_and_network():
    arch = A.with_capacity(256)
    opt = optimize_layer(L, arch)
    c = compare_layer(L, arch, opt, samples=6)
    assert set(c) == set(MODELS) | {"textbook"}
    for key, r in c.items():
        assert r.optimum == opt.traffic.total_bytes
        assert r.loss is None or r.loss >= 1.0          # nothing beats the optimum
        if key != "textbook":
            assert r.errors and r.errors[0].kind == "chosen"
            assert r.mean_error >= 0 and abs(r.worst_error) >= r.mean_error - 1e-12
    assert c["textbook"].errors == () and c["textbook"].loss >= 1.0
    net = compare_network(["a", "b"], [L, L], [arch, arch], [opt, opt], samples=6)
    s = net.summary()
    assert s["zhang2015"]["optimum_total_bytes"] == 2 * opt.traffic.total_bytes
    assert s["zhang2015"]["loss"] == pytest.approx(c["zhang2015"].loss)
    assert isinstance(net, NetworkComparison) and len(net.to_json()["layers"]) == 2
