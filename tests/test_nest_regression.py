"""Hand-computed multi-level cases (docs/multilevel.md, worked examples), each also walked by the simulator.

Default word sizes: 8-bit input, weight and output, 32-bit partial sums, no DMA granularity. A
boundary is named by its inner level: L2 = main memory <-> L2, L1 = L2 <-> L1.
"""

from __future__ import annotations

from convsched.core.arch import Architecture
from convsched.core.hierarchy import Hierarchy, Level
from convsched.core.nest import Nest
from convsched.model.nest_model import evaluate_nest
from convsched.model.nest_simulate import simulate_nest
from convsched.model.nest_traffic import MAIN, NestTraffic

TWO = Hierarchy((Level("L2"), Level("L1")))
ONE = Hierarchy.from_architecture(Architecture())


def nest(layer: dict, loops: list, buffers: dict) -> Nest:
    return Nest.from_dict({"layer": layer, "loops": loops, "buffers": buffers})


def words(t: NestTraffic, level: str) -> dict[str, tuple[int, int]]:
    b = t.boundary(level)
    return {op: (b.operand(op).read, b.operand(op).write) for op in ("input", "weight", "output")}


def agrees_with_walk(n: Nest, h: Hierarchy) -> NestTraffic:
    t = evaluate_nest(n, h)
    sim = simulate_nest(n, h)
    assert sim.output_ok and sim.traffic == t
    return t


def test_a_two_level_sliding_window():
    # K=C=1, output 6x5, filter 3x3, no padding: input 8x7 = 56 words. Loops OY/4, OY/2 (OY tiled
    # twice); the L2 input buffer below OY/4, the L1 one below OY/2.
    # L2 blocks: OY [0,4) reads rows [0,6) = 42 words, [4,6) rows [4,8): rows 4,5 kept, 14 new: 56.
    # L1 blocks (inside): [0,2) rows [0,4) = 28, [2,4) rows [2,6): 14 new, [4,6) rows [4,8) after
    # rows [2,6): 14 new: 56, though the L1 block slides across the edge of an L2 block.
    # Weights at 0 in both: 9 and 9. Output: L2 holds the whole output (one run, 30 final words to
    # main memory); L1 blocks of 2 rows x 5 = 10 words, one run each: 30 final words to L2.
    n = nest({"K": 1, "C": 1, "OY": 6, "OX": 5, "FY": 3, "FX": 3}, [["OY", 4], ["OY", 2]],
             {"L2": {"input": 1, "weight": 0, "output": 0}, "L1": {"input": 2, "weight": 0, "output": 2}})
    t = agrees_with_walk(n, TWO)
    assert words(t, "L2") == {"input": (56, 0), "weight": (9, 0), "output": (0, 30)}
    assert words(t, "L1") == {"input": (56, 0), "weight": (9, 0), "output": (0, 30)}
    assert t.buffer_words == {"L2": {"input": 42, "weight": 9, "output": 30},
                              "L1": {"input": 28, "weight": 9, "output": 10}}
    assert t.total_bytes == 95
    assert t.energy == 95 * 200 + 95 * 6


def test_b_a_dimension_split_twice_in_one_level():
    # K=4, C=2, 2x2 map, 1x1 filter (input 8, weights 8, output 16 words); loops K/2 C/1 K/1, every
    # buffer one tile. Iterations (k1, c, k2) give output channels 0,1,0,1,2,3,2,3: 8 runs of 4
    # words = 32 written, 16 read back. Input channel 0,0,1,1,0,0,1,1: 4 loads of 4 = 16. Weights:
    # 8 distinct words. Bytes: 16 + 8 + 16*4 (read-backs) + (16*4 + 16) (writes) = 168.
    n = nest({"K": 4, "C": 2, "OY": 2, "OX": 2}, [["K", 2], ["C", 1], ["K", 1]],
             {"L1": {"input": 3, "weight": 3, "output": 3}})
    t = agrees_with_walk(n, ONE)
    assert words(t, "L1") == {"input": (16, 0), "weight": (8, 0), "output": (16, 32)}
    assert t.total_bytes == 168
    assert t.buffer_words == {"L1": {"input": 4, "weight": 1, "output": 4}}


def test_c_partial_sums_spill_to_L2_never_to_main_memory():
    # K=2, C=4, 2x2, 1x1 (input 16, weights 8, output 8 words); loops C/2 K/1. L2 holds whole
    # tensors (buffers at 0); L1 one tile (2 channels x 4 pixels of input, 2 weights, 1 output
    # channel x 4 pixels). L1 output blocks k0,k1,k0,k1: 16 words written to L2, 8 read back (the
    # second visits); the writes at c=1 are final (8 bytes), the others partial sums (8 x 4).
    # L2's output block is the whole output, one run: 8 final words to main memory, no read-back.
    n = nest({"K": 2, "C": 4, "OY": 2, "OX": 2}, [["C", 2], ["K", 1]],
             {"L2": {"input": 0, "weight": 0, "output": 0}, "L1": {"input": 2, "weight": 2, "output": 2}})
    t = agrees_with_walk(n, TWO)
    assert words(t, "L2") == {"input": (16, 0), "weight": (8, 0), "output": (0, 8)}
    assert words(t, "L1") == {"input": (16, 0), "weight": (8, 0), "output": (8, 16)}
    out = t.boundary("L1").operand("output")
    assert (out.read_bytes, out.write_bytes) == (8 * 4, 8 * 4 + 8)
    assert t.total_bytes == 16 + 8 + 8
    assert t.boundary("L1").bytes == 16 + 8 + 32 + 40
    assert t.energy == 32 * 200 + 96 * 6


def test_d_weights_bypass_L2():
    # Case c with L2 holding only input and output: the 8 weight words go from main memory straight
    # to L1. They appear at the L1 boundary with main memory as their source: main-memory bytes are
    # still 16 + 8 + 8 = 32, and their energy is a main-memory byte's (200), not an on-chip one's.
    h = Hierarchy((Level("L2", holds=("input", "output")), Level("L1")))
    n = nest({"K": 2, "C": 4, "OY": 2, "OX": 2}, [["C", 2], ["K", 1]],
             {"L2": {"input": 0, "output": 0}, "L1": {"input": 2, "weight": 2, "output": 2}})
    t = agrees_with_walk(n, h)
    assert words(t, "L2") == {"input": (16, 0), "weight": (0, 0), "output": (0, 8)}
    assert words(t, "L1")["weight"] == (8, 0)
    assert t.boundary("L1").sources == {"input": "L2", "weight": MAIN, "output": "L2"}
    assert t.total_bytes == 32
    assert t.energy == (16 + 8) * 200 + (16 + 32 + 40) * 6 + 8 * 200
    assert t.buffer_words["L2"] == {"input": 16, "output": 8}


def test_e_fewer_inner_trips_under_the_edge_outer_tile():
    # K=5, C=2, 1x1 map and filter (input 2, weights 10, output 5 words); loops K/4 C/1 K/2.
    # Under K [0,4) the inner K loop runs 2 trips, under the edge tile [4,5) one. Output blocks:
    # [0,2) [2,4) [0,2) [2,4) [4,5) [4,5): the last two are one run, so block [4,5) has one run and
    # the others two: 9 words written, 4 read back. Input channels 0,0,1,1,0,1: 4 loads. Weights:
    # 2+2+2+2+1+1 = 10. Bytes: 4 + 10 + 4*4 + (4*4 + 5) = 51.
    n = nest({"K": 5, "C": 2, "OY": 1, "OX": 1}, [["K", 4], ["C", 1], ["K", 2]],
             {"L1": {"input": 3, "weight": 3, "output": 3}})
    t = agrees_with_walk(n, ONE)
    assert words(t, "L1") == {"input": (4, 0), "weight": (10, 0), "output": (4, 9)}
    assert t.total_bytes == 51
    # With a 16-byte DMA granularity every step rounds up to 16 bytes: read-backs 2 steps (32);
    # writes: 2 partial-sum steps (32) and 3 final steps (48); input 4 steps (64); weights 6 (96).
    g = agrees_with_walk(n, Hierarchy.from_architecture(Architecture(dma_granularity=16)))
    out = g.boundary("L1").operand("output")
    assert (out.read_bytes, out.write_bytes) == (32, 80)
    assert g.total_bytes == 32 + 80 + 64 + 96


def test_the_model_never_walks_the_tiles():
    # 224x224, 64 -> 64 channels, 3x3, every dimension tiled to 1 in two levels: ~1.85e9 tiles.
    layer = {"K": 64, "C": 64, "OY": 224, "OX": 224, "FY": 3, "FX": 3, "PY": 1, "PX": 1}
    loops = [["K", 16], ["C", 16], ["OY", 28], ["OX", 28], ["K", 1], ["C", 1], ["OY", 1], ["OX", 1],
             ["FY", 1], ["FX", 1]]
    n = nest(layer, loops, {"L2": {"input": 4, "weight": 2, "output": 4},
                            "L1": {"input": 10, "weight": 10, "output": 10}})
    assert n.n_tiles == 64 * 64 * 224 * 224 * 9
    t = evaluate_nest(n, TWO)
    assert t.macs == 64 * 64 * 224 * 224 * 9
    assert t.boundary("L1").operand("weight").read == t.macs      # a new weight word at every MAC
