"""The optimizer against brute force: every schedule of the space, checked by the simulator."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, example, given, settings, strategies as st

from convsched.core.arch import OPERANDS, Architecture
from convsched.core.errors import ConvschedError, NoFeasibleSchedule
from convsched.core.layer import DIMS, Layer
from convsched.model.closed_form import evaluate
from convsched.core.schedule import Schedule
from convsched.model.simulate import simulate
from convsched.model.vectorised import buffer_bytes_many, evaluate_many
from convsched.search import prune
from convsched.search.best import schedule_key
from convsched.search.grid import InputFloor, SolvedDim, TripGroups
from convsched.search.gridaxes import undominated
from convsched.search.optimizer import best_textbook, fits_some, optimize_capacities, optimize_layer
from convsched.search.ranking import least_words, rank_structures
from convsched.search.space import Constraints, StructureContext, TileCandidates
from convsched.search.structures import build_structure_table, structures


def brute_force(layer: Layer, arch: Architecture, objective: str = "bytes"):
    """(bytes, buffer bytes, tiles) of the best schedule over EVERY order, level and tile (no reduction)."""
    dims = [d for d in DIMS if layer.dim_size(d) > 1]
    best = None
    for k in range(len(dims) + 1):
        for order in itertools.permutations(dims, k):
            grids = np.meshgrid(*[np.arange(1, layer.dim_size(d) + 1) for d in order], indexing="ij")
            tiles = {d: g.ravel() for d, g in zip(order, grids)}
            ntiles = np.ones(len(grids[0].ravel()) if order else 1, dtype=np.int64)
            for d in order:
                ntiles = ntiles * (-(-layer.dim_size(d) // tiles[d]))
            for lv in itertools.product(range(k + 1), repeat=3):
                levels = dict(zip(OPERANDS, lv))
                v = evaluate_many(layer, order, levels, tiles, arch)
                shape = ntiles.shape
                if arch.capacity is not None:
                    fits = np.broadcast_to(v.buffer_bytes <= arch.capacity, shape)
                else:                  # one capacity per operand
                    per = buffer_bytes_many(v.buffer_words, arch)
                    fits = np.ones(shape, dtype=bool)
                    for op, cap in zip(OPERANDS, arch.capacity_per_operand):
                        fits = fits & np.broadcast_to(per[op] <= cap, shape)
                if not fits.any():
                    continue
                obj = v.total_bytes if objective == "bytes" else v.input_read * arch.input_bits // 8 + v.weight_read * arch.weight_bits // 8
                keys = zip(np.broadcast_to(obj, shape)[fits], np.broadcast_to(v.buffer_bytes, shape)[fits], ntiles[fits])
                m = min(keys)
                best = m if best is None or m < best else best
    return best


@st.composite
def small_case(draw):
    G = draw(st.sampled_from([1, 1, 2]))
    while True:
        try:
            layer = Layer(K=G * draw(st.integers(1, 3)), C=G * draw(st.integers(1, 3)), G=G,
                          OY=draw(st.integers(1, 5)), OX=draw(st.integers(1, 3)), FY=draw(st.integers(1, 3)),
                          FX=draw(st.integers(1, 2)), SY=draw(st.integers(1, 2)), PY=draw(st.integers(0, 1)),
                          PX=draw(st.integers(0, 1)), DY=draw(st.integers(1, 2)))
            break
        except ConvschedError:
            continue
    if sum(layer.dim_size(d) > 1 for d in DIMS) > 5:
        layer = Layer(K=layer.K, C=layer.C, G=layer.G, OY=layer.OY, OX=1, FY=layer.FY, SY=layer.SY, PY=layer.PY)
    full = evaluate(Schedule(layer, (), {}, {op: 0 for op in OPERANDS}), Architecture()).total_buffer_bytes
    cap = draw(st.integers(max(4, full // 12), full + 8))
    return layer, cap


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_case())
@example((Layer(K=2, C=2, OY=1, OX=1, FX=2), 9))  # the optimum has a spatial loop before C below the input buffer
def test_optimum_equals_brute_force(case):
    layer, cap = case
    arch = Architecture(capacity=cap)
    expected = brute_force(layer, arch)
    if expected is None:
        with pytest.raises(ConvschedError, match="smallest that fits"):
            optimize_layer(layer, arch)
        return
    res = optimize_layer(layer, arch)
    got = (res.traffic.total_bytes, res.traffic.total_buffer_bytes, res.schedule.n_tiles)
    assert got == tuple(int(x) for x in expected)
    sim = simulate(res.schedule, arch)
    assert sim.output_ok and sim.traffic == res.traffic
    assert arch.fits(res.traffic.buffer_words)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layer=st.builds(Layer, K=st.sampled_from([4, 8, 12]), C=st.sampled_from([3, 8, 16]),
                       OY=st.integers(3, 12), OX=st.integers(3, 12), FY=st.sampled_from([1, 3]),
                       FX=st.sampled_from([1, 3]), SY=st.sampled_from([1, 2]), PY=st.sampled_from([0, 1])),
       cap=st.sampled_from([96, 256, 1024]), objective=st.sampled_from(["bytes", "reads"]))
def test_an_incumbent_changes_nothing(layer, cap, objective):
    """Seeding the search with a known schedule (the best textbook one) only prunes sooner."""
    arch = Architecture(capacity=cap)
    try:
        plain = optimize_layer(layer, arch, objective=objective)
    except ConvschedError:
        return
    seed = best_textbook(layer, arch, objective)
    for incumbent in ([seed[1].schedule] if seed else []) + [plain.schedule]:
        seeded = optimize_layer(layer, arch, objective=objective, incumbent=incumbent)
        assert seeded.schedule == plain.schedule
        assert seeded.structures <= plain.structures
    assert schedule_key(plain.traffic, plain.schedule, objective) <= (
        schedule_key(seed[1].traffic, seed[1].schedule, objective) if seed else (math.inf,))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layer=st.builds(lambda g, k, c, **kw: Layer(K=g * k, C=g * c, G=g, **kw), st.sampled_from([1, 1, 1, 2]),
                       k=st.sampled_from([2, 4, 6]), c=st.sampled_from([3, 4, 8]),
                       OY=st.integers(3, 12), OX=st.integers(3, 12), FY=st.sampled_from([1, 3]),
                       FX=st.sampled_from([1, 3]), SY=st.sampled_from([1, 2]), PY=st.sampled_from([0, 1])),
       caps=st.lists(st.integers(16, 4096), min_size=2, max_size=5),
       word=st.sampled_from([(8, 32), (8, 32), (4, 12)]), double=st.booleans(),
       objective=st.sampled_from(["bytes", "reads"]), seeded=st.booleans())
def test_capacities_in_one_pass_equal_one_at_a_time(layer, caps, word, double, objective, seeded):
    """`optimize_capacities` (a sweep's one pass over the structures, every capacity a slot with its
    own best and byte limit) gives each capacity exactly what `optimize_layer` gives it alone: the
    same schedule, or (searched with one that does not fit) the same no-fit error; with or without
    textbook incumbents."""
    archs = [Architecture(capacity=c, input_bits=word[0], weight_bits=word[0], psum_bits=word[1],
                          double_buffer=double) for c in caps]
    seeds = [None] * len(archs)
    if seeded:
        seeds = [(tb[1].schedule if (tb := best_textbook(layer, a, objective)) else None) for a in archs]
    fits = fits_some(layer, archs, Constraints())
    fitting = [(a, s) for a, s, f in zip(archs, seeds, fits) if f]
    together = optimize_capacities(layer, [a for a, _ in fitting], objective=objective,
                                   incumbents=[s for _, s in fitting]) if fitting else []
    for (arch, seed), got in zip(fitting, together):
        alone = optimize_layer(layer, arch, objective=objective, incumbent=seed)
        assert got.schedule == alone.schedule and got.traffic == alone.traffic
    for arch, fit in zip(archs, fits):
        if not fit:
            with pytest.raises(NoFeasibleSchedule) as alone:
                optimize_layer(layer, arch, objective=objective)
            with pytest.raises(NoFeasibleSchedule) as together:
                optimize_capacities(layer, archs, objective=objective)
            assert str(together.value) == str(alone.value)
            assert together.value.smallest_capacity == alone.value.smallest_capacity > arch.capacity
            break


def test_capacities_searched_together_must_differ_only_in_capacity():
    layer = Layer(K=4, C=4, OY=4, OX=4)
    with pytest.raises(ValueError, match="differ only"):
        optimize_capacities(layer, [Architecture(capacity=64), Architecture(capacity=128, double_buffer=True)])


def test_an_incumbent_that_does_not_fit_is_refused():
    layer = Layer(K=8, C=8, OY=6, OX=6, FY=3, FX=3, PY=1, PX=1)
    big = optimize_layer(layer, Architecture(capacity=4096)).schedule
    with pytest.raises(ConvschedError, match="does not fit"):
        optimize_layer(layer, Architecture(capacity=64), incumbent=big)


@pytest.mark.parametrize("layer, cap", [
    (Layer(K=3, C=2, OY=4, OX=1, FY=3, PY=1), 14),
    (Layer(K=4, C=3, OY=3, OX=3), 11),
    (Layer(K=2, C=4, OY=5, OX=1, FY=3, SY=2, PY=1), 9),
])
def test_word_sizes_that_are_not_whole_bytes_equal_brute_force(layer, cap):
    """4-bit data and 12-bit partial sums: the solved tile is found by checking every candidate."""
    arch = Architecture(capacity=cap, input_bits=4, weight_bits=4, psum_bits=12)
    res = optimize_layer(layer, arch)
    got = (res.traffic.total_bytes, res.traffic.total_buffer_bytes, res.schedule.n_tiles)
    assert got == tuple(int(x) for x in brute_force(layer, arch))
    assert arch.fits(res.traffic.buffer_words)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_case(), st.tuples(st.integers(1, 12), st.integers(1, 12), st.integers(4, 48)))
@example((Layer(K=3, C=2, OY=4, OX=1, FY=3, PY=1), 0), (2, 4, 16))
def test_capacity_per_operand_equals_brute_force(case, caps):
    """One capacity per operand (input, weight, output bytes) instead of a shared one."""
    layer, _ = case
    assume(sum(layer.dim_size(d) > 1 for d in DIMS) <= 4)     # brute force stays quick
    arch = Architecture(capacity_per_operand=caps)
    expected = brute_force(layer, arch)
    if expected is None:
        with pytest.raises(ConvschedError):
            optimize_layer(layer, arch)
        return
    res = optimize_layer(layer, arch)
    assert (res.traffic.total_bytes, res.traffic.total_buffer_bytes, res.schedule.n_tiles) == \
        tuple(int(x) for x in expected)
    assert arch.fits(res.traffic.buffer_words)


def test_reads_objective_equals_brute_force():
    layer = Layer(K=4, C=2, OY=4, OX=1, FY=3, PY=1)
    arch = Architecture(capacity=40)
    res = optimize_layer(layer, arch, objective="reads")
    got = res.traffic.input.read_bytes + res.traffic.weight.read_bytes
    assert got == brute_force(layer, arch, "reads")[0]


def test_no_schedule_fits_names_the_smallest_capacity():
    layer = Layer(K=4, C=4, OY=4, OX=4, FY=3, FX=3, PY=1, PX=1)
    with pytest.raises(NoFeasibleSchedule) as e:
        optimize_layer(layer, Architecture(capacity=3))
    assert "smallest that fits is 6 bytes" in str(e.value)  # 1 input + 1 weight byte + one 4-byte partial sum
    assert e.value.smallest_capacity == 6 and e.value.layer == layer
    optimize_layer(layer, Architecture(capacity=6))


def test_constraints_fixed_order_and_untiled():
    layer = Layer(K=8, C=8, OY=6, OX=6, FY=3, FX=3, PY=1, PX=1)
    arch = Architecture(capacity=300)
    res = optimize_layer(layer, arch, Constraints(orders=(("K", "C", "OY", "OX"),), untiled=frozenset({"FY", "FX"})))
    assert set(res.schedule.order) <= {"K", "C", "OY", "OX"}
    assert list(res.schedule.order) == [d for d in ("K", "C", "OY", "OX") if d in res.schedule.order]
    free = optimize_layer(layer, arch)
    assert free.traffic.total_bytes <= res.traffic.total_bytes


def test_contradicting_constraints_are_refused():
    layer = Layer(K=8, C=8, OY=6, OX=6)
    with pytest.raises(ConvschedError, match="contradict"):
        optimize_layer(layer, Architecture(capacity=300), Constraints(tile_min={"K": 4}, tile_max={"K": 2}))
    with pytest.raises(ConvschedError, match="untiled"):
        optimize_layer(layer, Architecture(capacity=300), Constraints(untiled=frozenset({"K"}), tile_max={"K": 2}))


@st.composite
def structure_and_tiles(draw):
    """A random layer, a random schedule of it and a capacity the schedule fits (with some slack)."""
    G = draw(st.sampled_from([1, 1, 2]))
    while True:
        try:
            layer = Layer(K=G * draw(st.integers(1, 6)), C=G * draw(st.integers(1, 4)), G=G,
                          N=draw(st.sampled_from([1, 1, 2])), OY=draw(st.integers(1, 7)), OX=draw(st.integers(1, 7)),
                          FY=draw(st.integers(1, 3)), FX=draw(st.integers(1, 3)), SY=draw(st.integers(1, 3)),
                          SX=draw(st.integers(1, 2)), PY=draw(st.integers(0, 2)), PX=draw(st.integers(0, 1)),
                          DY=draw(st.integers(1, 2)))
            break
        except ConvschedError:
            continue
    dims = [d for d in DIMS if layer.dim_size(d) > 1]
    order = tuple(draw(st.permutations(dims))[:draw(st.integers(0, len(dims)))])
    tiles = {d: draw(st.integers(1, layer.dim_size(d) - 1)) for d in order}
    levels = {op: draw(st.integers(0, len(order))) for op in OPERANDS}
    if order:
        levels[draw(st.sampled_from(OPERANDS))] = len(order)
    arch = Architecture(psum_bits=draw(st.sampled_from([8, 16, 32])), double_buffer=draw(st.booleans()))
    sched = Schedule(layer, order, tiles, levels)
    need = sum(arch.buffer_bytes(evaluate(sched, arch).buffer_words).values())
    shared = draw(st.booleans())
    slack = draw(st.integers(0, need))
    if shared:
        arch = Architecture(psum_bits=arch.psum_bits, double_buffer=arch.double_buffer, capacity=need + slack)
    else:
        per = arch.buffer_bytes(evaluate(sched, arch).buffer_words)
        arch = Architecture(psum_bits=arch.psum_bits, double_buffer=arch.double_buffer,
                            capacity_per_operand=tuple(max(1, per[op] + slack) for op in OPERANDS))
    return sched, arch


@settings(max_examples=300, deadline=None)
@given(structure_and_tiles())
def test_pruning_bounds_never_exceed_a_fitting_schedule(case):
    """Each bound the search prunes with is at most the exact traffic of every fitting schedule."""
    sched, arch = case
    layer, order, levels = sched.layer, sched.order, dict(sched.buffers)
    ctx = StructureContext(layer, arch, "bytes", order, levels, TileCandidates.of(layer, Constraints()))
    t = evaluate(sched, arch)
    assert arch.fits(t.buffer_words)
    trips = {d: -(-layer.dim_size(d) // sched.tiles[d]) for d in order}
    # trips actually taken lie in the range the bound is given
    assert prune.input_reads_bound(layer, arch, order, levels, trips.get("K", 1)) <= t.input.read
    assert prune.trips_lower_bound(ctx, arch, trips, trips) <= t.total_bytes
    np_trips = {d: np.int64(n) for d, n in trips.items()}
    assert int(prune.point_bound(ctx, np_trips)) <= t.total_bytes
    # with the point's own input block and outer trips
    point = prune.point_bound(ctx, np_trips, np.int64(t.buffer_words["input"]))
    assert int(point) <= t.total_bytes
    assert prune.input_reads_bound(layer, arch, order, levels, trips.get("K", 1), t.buffer_words["input"],
                               math.prod(trips[d] for d in order[:order.index("K")]) if "K" in order else 1
                               ) <= t.input.read
    if all(n >= 2 for n in trips.values()):
        assert prune.structure_lower_bound(layer, arch, "bytes", order, levels) <= t.total_bytes


@settings(max_examples=200, deadline=None)
@given(structure_and_tiles(), st.booleans())
def test_input_floor_is_exact_on_one_point_and_below_it_on_groups(case, solve_e):
    """The interval model of the input's traffic equals the model on a single point and bounds
    it from below when axes stand as trip-count groups, are not chosen yet, or e is solved."""
    sched, arch = case
    layer, order, levels = sched.layer, sched.order, dict(sched.buffers)
    exact = evaluate(sched, arch).input.read
    above = set(order[:levels["input"]])
    axes, done = [], set()
    for d in order:                      # the search's grid axes, with every tile a candidate
        if d in done:
            continue
        pair = next((p for p in (("OY", "FY"), ("OX", "FX")) if d in p), None)
        dims = [x for x in pair if x in order and x in above] if pair and d in above else [d]
        done.update(dims)
        grid = np.meshgrid(*[np.arange(1, layer.dim_size(x)) for x in dims], indexing="ij")
        axes.append((dims, np.stack([g.ravel() for g in grid], axis=1)))
    e = next((a for a in axes if solve_e and len(a[0]) == 1 and a[0][0] in ("N", "G", "K", "C")), None)
    grid = [a for a in axes if a is not e]
    e_dim, e_cands = (e[0][0], e[1][:, 0]) if e else (None, None)
    groups = [TripGroups.of(layer, dims, arr) for dims, arr in grid]
    trips = {d: -(-layer.dim_size(d) // sched.tiles[d]) for d in order}
    at = [int(np.nonzero((arr == [sched.tiles[d] for d in dims]).all(axis=1))[0][0]) for dims, arr in grid]
    ctx = StructureContext(layer, arch, "bytes", order, levels, TileCandidates.of(layer, Constraints()))
    floor = InputFloor(ctx, groups, SolvedDim(e_dim, e_cands) if e_dim else None)
    t_e = sched.tiles[e_dim] if e_dim else None
    one = floor.words(0, [np.array([i]) for i in at], {}, t_e, trips)
    if e_dim is None:
        assert int(np.asarray(one).reshape(-1)[0]) == exact
    assert int(np.asarray(one).reshape(-1)[0]) <= exact
    # each axis as the trip-count group holding the point (opened only at a later step)
    grouped = [np.array([int(np.searchsorted(g.starts, int(np.nonzero(g.members == i)[0][0]), side="right") - 1)])
               for g, i in zip(groups, at)]
    as_groups = floor.words(0, grouped, {k: 1 for k in range(len(groups))}, t_e, trips)
    assert int(np.asarray(as_groups).reshape(-1)[0]) <= exact
    for k in range(len(groups) + 1):     # the first k axes chosen, the others not yet
        part = floor.words(0, [np.array([i]) for i in at[:k]], {}, t_e, trips)
        assert int(np.asarray(part).reshape(-1)[0]) <= exact


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 600), st.integers(1, 9), st.integers(0, 2**32 - 1))
def test_undominated_rows_match_the_all_pairs_check(n, m, seed):
    """The front-based dominance filter keeps exactly the rows no other row is <= everywhere
    (of equal rows, the first)."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 5, size=(n, m)) - rng.integers(0, 3, size=(n, 1))
    want = np.ones(n, dtype=bool)
    for b in range(n):
        le = (X <= X[b]).all(axis=1)
        lt = (X < X[b]).any(axis=1)
        want[b] = not (le & (lt | (np.arange(n) < b))).any()
    np.testing.assert_array_equal(undominated(X), want)


@settings(max_examples=25, deadline=None)
@given(structure_and_tiles())
def test_trip_bounds_of_all_structures_are_at_least_the_one_by_one_bound(case):
    """The ranking's vectorised capacity/trips bound is `trips_lower_bound` with, per structure,
    the fewest trips that fit: never below it with the candidates' fewest trips."""
    sched, arch = case
    layer = sched.layer
    assume(sum(layer.dim_size(d) > 1 for d in DIMS) <= 6)     # seven loops: 86,305 structures
    cons = Constraints()
    cands = TileCandidates.of(layer, cons)
    structs = structures(layer, cons, cands)
    rank = rank_structures(cands, [arch], "bytes", structs, np.zeros(len(structs), dtype=bool), [None])
    n_min, n_max = cands.trip_range()
    tab = structs.table
    rows = rank.index[:400]
    words = rank.words[:400]
    bits = np.array([arch.buffer_bits(op) for op in OPERANDS])
    nbytes = -(-(words * bits) // 8) * arch.buffer_factor
    tlb = prune.table_trips_bounds(layer, arch, "bytes", tab, nbytes,
                                   prune.fewest_fitting_trips(layer, arch, tab, words, cands, rows), n_max, rows)
    assert (rank.bound[0, :400] >= tlb).all()              # the ranking's bound includes it
    for i, least, t in zip(rows, words, tlb):
        order, levels = structs[i]
        need = dict(zip(OPERANDS, map(int, least)))
        ctx = StructureContext(layer, arch, "bytes", order, levels, cands)
        assert t >= prune.trips_lower_bound(ctx, arch, n_min, n_max, need)


@settings(max_examples=300, deadline=None)
@given(structure_and_tiles())
def test_fewest_fitting_trips_and_their_bound_hold_for_a_fitting_schedule(case):
    """No fitting schedule has fewer trips than `fewest_fitting_trips` gives its structure, and its
    traffic is at least the ranking's bound."""
    sched, arch = case
    layer, order, levels = sched.layer, sched.order, dict(sched.buffers)
    cands = TileCandidates.of(layer, Constraints())
    tab = build_structure_table([(order, levels)])
    words = least_words(cands, tab.prefixes)[tab.prefix_id]
    fewest = prune.fewest_fitting_trips(layer, arch, tab, words, cands)[0]
    for d in order:
        assert fewest[DIMS.index(d)] <= -(-layer.dim_size(d) // sched.tiles[d])
    bits = np.array([arch.buffer_bits(op) for op in OPERANDS])
    nbytes = -(-(words * bits) // 8) * arch.buffer_factor
    _, n_max = cands.trip_range()
    bound = prune.table_trips_bounds(layer, arch, "bytes", tab, nbytes, fewest[None, :], n_max)[0]
    assert bound <= evaluate(sched, arch).total_bytes
