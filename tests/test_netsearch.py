"""The per-network optimizer and buffer sweeps (library API). Layers are kept tiny: the per-layer search is exact."""

from __future__ import annotations

import json

import pytest

from convsched.search import network as netsearch, optimizer as search
from convsched.core.arch import OPERANDS, Architecture
from convsched.core.errors import ConvschedError, NoFeasibleSchedule
from convsched.core.layer import Layer
from convsched.search.optimizer import Constraints
from convsched.search.network import optimize_network, sweep, sweep_sizes, task_batches
from convsched.networks import NetLayer, Network, load_target
from convsched.report.plot import plot_sweep

LAYER_FILE = """\
name: tiny
layers:
  - {name: a, K: 8, C: 8, OY: 4, OX: 4}
  - {name: b, K: 4, C: 8, OY: 2, OX: 2}
  - {name: a2, K: 8, C: 8, OY: 4, OX: 4}
  - {name: fc, K: 10, C: 16, OY: 1, OX: 1}
"""


@pytest.fixture
def tiny(tmp_path) -> Network:
    p = tmp_path / "tiny.yaml"
    p.write_text(LAYER_FILE)
    return load_target(str(p))


ARCH = Architecture(capacity=96)


def test_equals_per_layer_optimizer(tiny):
    res = optimize_network(tiny, ARCH, workers=1)
    assert [e.name for e in res.entries] == ["a", "b", "a2", "fc"]
    for e, nl in zip(res.entries, tiny.layers):
        ref = search.optimize_layer(nl.layer, ARCH)
        assert e.result.schedule == ref.schedule
        assert e.result.traffic == ref.traffic
        tb = search.best_textbook(nl.layer, ARCH)
        assert (e.textbook_name, e.textbook.traffic.total_bytes) == (tb[0], tb[1].traffic.total_bytes)
        assert e.saving == tb[1].traffic.total_bytes / ref.traffic.total_bytes >= 1.0
    assert res.total_bytes == sum(e.traffic.total_bytes for e in res.entries)
    assert res.macs == tiny.macs
    assert res.bytes_per_mac == res.total_bytes / res.macs
    assert res.textbook_total_bytes == sum(e.textbook.traffic.total_bytes for e in res.entries)
    assert res.saving == res.textbook_total_bytes / res.total_bytes
    assert sum(res.operand_bytes().values()) == res.total_bytes


def test_processes_give_the_same_result(tiny):
    one = optimize_network(tiny, ARCH, workers=1)
    two = optimize_network(tiny, ARCH, workers=2)
    assert [e.result.schedule for e in one.entries] == [e.result.schedule for e in two.entries]
    assert [e.result.traffic for e in one.entries] == [e.result.traffic for e in two.entries]
    assert one.to_json()["total_bytes"] == two.to_json()["total_bytes"]


def test_identical_layers_solved_once(tiny, monkeypatch):
    calls = []
    real = netsearch.solve_capacities

    def counting(layer, *args):
        calls.append(layer)
        return real(layer, *args)

    monkeypatch.setattr(netsearch, "solve_capacities", counting)
    seen = []
    res = optimize_network(tiny, ARCH, workers=1, progress=lambda d, t: seen.append((d, t)))
    assert len(calls) == 3 == res.unique_layers            # a and a2 share one solve
    assert len(set(calls)) == 3
    assert seen[0] == (0, 3) and seen[-1] == (3, 3)
    assert res.entries[0].result is res.entries[2].result


def test_layer_word_sizes_split_equal_shapes():
    L = Layer(K=8, C=8, OY=4, OX=4)
    net = Network("n", (NetLayer("x", "conv", L), NetLayer("y", "conv", L, input_bits=4, weight_bits=4)))
    res = optimize_network(net, Architecture(capacity=256), workers=1)
    assert res.unique_layers == 2
    x, y = res.entries
    assert y.arch.input_bits == 4 and x.arch.input_bits == 8
    assert y.traffic.input.read_bytes == -(-y.traffic.input.read * 4 // 8)
    assert x.traffic.input.read_bytes == x.traffic.input.read


def test_json_contract(tiny):
    obj = json.loads(json.dumps(optimize_network(tiny, ARCH, workers=1).to_json()))
    assert {"layers", "total_bytes", "macs", "bytes_per_mac", "textbook_total_bytes"} <= set(obj)
    assert [row["name"] for row in obj["layers"]] == ["a", "b", "a2", "fc"]
    for row, nl in zip(obj["layers"], tiny.layers):
        assert row["layer"] == nl.layer.to_dict()
        assert set(row["schedule"]) == {"order", "tiles", "buffers"}
        assert set(row["traffic"]) == set(OPERANDS)
        assert all(set(row["traffic"][op]) == {"read", "write"} for op in OPERANDS)
        assert set(row["buffer_words"]) == set(OPERANDS)
        assert row["macs"] == nl.layer.macs
        assert row["textbook"]["name"] in search.TEXTBOOK
    assert obj["total_bytes"] == sum(row["total_bytes"] for row in obj["layers"])


def test_csv_one_row_per_layer(tiny):
    text = optimize_network(tiny, ARCH, workers=1).to_csv()
    lines = text.strip().splitlines()
    assert len(lines) == 1 + len(tiny.layers)
    assert lines[0].startswith("name,kind,") and lines[2].startswith("b,")


def test_objectives(tiny):
    by_bytes = optimize_network(tiny, ARCH, workers=1)
    by_reads = optimize_network(tiny, ARCH, objective="reads", workers=1)
    per_mac = optimize_network(tiny, ARCH, objective="bytes-per-mac", workers=1)
    assert per_mac.total_bytes == by_bytes.total_bytes
    assert by_reads.objective_bytes <= sum(e.traffic.input.read_bytes + e.traffic.weight.read_bytes
                                           for e in by_bytes.entries)
    with pytest.raises(ConvschedError, match="unknown objective"):
        optimize_network(tiny, ARCH, objective="joules")


def test_infeasible_layer_is_named(tiny):
    with pytest.raises(NoFeasibleSchedule, match=r"layer (a|b|fc): .*smallest that fits") as e:
        optimize_network(tiny, Architecture(capacity=4), workers=2)
    assert e.value.layer in {nl.layer for nl in tiny.layers}
    assert e.value.smallest_capacity == search.smallest_capacity(e.value.layer, Architecture(capacity=4),
                                                                 Constraints()) > 4


def test_constraint_errors_name_the_layer(tiny):
    cons = Constraints(tile_min={"K": 6}, tile_max={"K": 6})
    with pytest.raises(ConvschedError, match=r"layer b: .*K"):
        optimize_network(tiny, ARCH, cons, workers=1)


def test_constraints_are_applied(tiny):
    cons = Constraints(orders=(("K", "C", "OY", "OX"),), tile_max={"K": 4})
    res = optimize_network(tiny, ARCH, cons, workers=1)
    for e in res.entries:
        s = e.result.schedule
        assert s.tiles["K"] <= 4
        assert list(s.order) == [d for d in ("K", "C", "OY", "OX") if d in s.order]


def test_resnet18_two_smallest_unique_layers():
    net = load_target("resnet18")
    unique = list(dict.fromkeys(nl.layer for nl in net.layers))
    small = sorted(unique, key=lambda L: L.macs)[:2]
    sub = Network("resnet18-small", tuple(next(nl for nl in net.layers if nl.layer == L) for L in small))
    arch = Architecture(capacity=64 * 1024)
    res = optimize_network(sub, arch, workers=2)
    for e, L in zip(res.entries, small):
        assert e.result.traffic == search.optimize_layer(L, arch).traffic
        assert e.saving is not None and e.saving >= 1.0


# ---- sweeps -------------------------------------------------------------------------------


def test_sweep_sizes():
    assert sweep_sizes(8, 8, 5) == [8]
    assert sweep_sizes(1, 4, 16) == [1, 2, 3, 4]
    s = sweep_sizes(8 * 1024, 1024 * 1024, 16)
    assert s[0] == 8 * 1024 and s[-1] == 1024 * 1024 and len(s) == 16 and s == sorted(set(s))
    ratios = [b / a for a, b in zip(s, s[1:])]
    assert max(ratios) / min(ratios) < 1.01
    with pytest.raises(ConvschedError):
        sweep_sizes(8, 4, 3)
    with pytest.raises(ConvschedError):
        sweep_sizes(4, 8, 0)


def test_sweep_monotone_and_breakdown():
    L = Layer(K=8, C=8, OY=4, OX=4)
    res = sweep(L, Architecture(), 4, 2048, 9, workers=2)
    sizes = [p.capacity for p in res.points]
    assert sizes == sweep_sizes(4, 2048, 9)
    assert not res.points[0].feasible and "smallest that fits" in res.points[0].error
    feas = res.feasible_points
    assert len(feas) >= 6
    totals = [p.total_bytes for p in feas]
    assert all(b <= a for a, b in zip(totals, totals[1:]))        # never more traffic with a larger buffer
    for p in feas:
        assert sum(p.operand_bytes().values()) == p.total_bytes
        alone = search.optimize_layer(L, Architecture(capacity=p.capacity))
        (entry,) = p.result.entries
        assert entry.result.schedule == alone.schedule          # the one-pass search answers as one at a time
        assert p.total_bytes == alone.traffic.total_bytes
        for name, v in p.dataflow_bytes().items():
            r = search.textbook_dataflow(L, Architecture(capacity=p.capacity), name)
            assert v == (r.traffic.total_bytes if r else None)
            assert v is None or v >= p.total_bytes
    for name in search.TEXTBOOK:
        vals = [p.dataflow_bytes()[name] for p in feas if p.dataflow_bytes()[name] is not None]
        assert all(b <= a for a, b in zip(vals, vals[1:]))
    obj = json.loads(json.dumps(res.to_json()))
    assert [p["buffer_bytes"] for p in obj["points"]] == sizes
    assert obj["points"][0]["feasible"] is False
    assert len(res.to_csv().strip().splitlines()) == 1 + len(sizes)


def test_sweep_all_infeasible():
    with pytest.raises(NoFeasibleSchedule, match="no buffer size from 1 to 4 bytes fits: layer layer1: ") as e:
        sweep(Layer(K=8, C=8, OY=4, OX=4), Architecture(), 1, 4, 3, workers=1)
    assert e.value.smallest_capacity > 4


def test_plot_written(tmp_path):
    pytest.importorskip("matplotlib")
    res = sweep(Layer(K=8, C=8, OY=4, OX=4), Architecture(), 16, 1024, 4, workers=1)
    for name in ("curve.png", "curve.svg"):
        out = plot_sweep(res, tmp_path / name)
        assert out.stat().st_size > 1000
    assert (tmp_path / "curve.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ConvschedError, match="must end in"):
        plot_sweep(res, tmp_path / "curve.txt")


def test_a_sweeps_sizes_are_one_task_per_layer_split_only_to_fill_the_workers():
    A, B = Layer(K=8, C=8, OY=4, OX=4), Layer(K=4, C=4, OY=4, OX=4)
    keys = [(L, Architecture(capacity=c)) for L in (A, B) for c in (64, 128, 256, 512)]
    two = task_batches(keys, workers=2)
    assert [len(b) for b in two] == [4, 4] and {b[0][0] for b in two} == {A, B}
    one_layer = task_batches(keys[:4], workers=2)             # one layer: its sizes split over both workers
    assert sorted(map(len, one_layer)) == [2, 2]
    assert sorted(k[1].capacity for b in one_layer for k in b) == [64, 128, 256, 512]
    assert {k[1].capacity for k in one_layer[0]} in ({64, 256}, {128, 512})   # small and large in each
    per_operand = [(A, Architecture(capacity_per_operand=(64, 64, 64))), (A, Architecture(capacity=64))]
    assert sorted(map(len, task_batches(per_operand, workers=1))) == [1, 1]     # only shared capacities batch
