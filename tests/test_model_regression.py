"""Hand-computed traffic for small schedules, each with its arithmetic.

Every number here was worked out by hand from the semantics in
docs/semantics.md (not by running the model). Default architecture: 8-bit
input, weight and output words, 32-bit partial sums, no DMA granularity.
Each case is also walked by the simulator, which must agree.
"""

from __future__ import annotations

import pytest

from convsched.core.arch import Architecture
from convsched.model.closed_form import Traffic, evaluate
from convsched.core.schedule import Schedule
from convsched.model.simulate import simulate


def sched(layer: dict, order: list[str], tiles: dict, buffers: dict) -> Schedule:
    return Schedule.from_dict({"layer": layer, "order": order, "tiles": tiles, "buffers": buffers})


def words(t: Traffic) -> dict:
    return {"input": t.input.read, "weight": t.weight.read,
            "output_read": t.output.read, "output_write": t.output.write}


def nbytes(t: Traffic) -> dict:
    return {"input": t.input.read_bytes, "weight": t.weight.read_bytes,
            "output_read": t.output.read_bytes, "output_write": t.output.write_bytes}


def agree_with_walk(s: Schedule, arch: Architecture | None = None) -> None:
    sim = simulate(s, arch)
    assert sim.output_ok
    assert sim.traffic == evaluate(s, arch)


# (a) ---------------------------------------------------------------------------
def one_by_one() -> Schedule:
    # K=4, C=8, 4x4 map, 1x1 filter: input 8*16=128 words, weight 4*8=32, output 4*16=64.
    return sched({"K": 4, "C": 8, "OY": 4, "OX": 4}, ["K", "C"], {"K": 2, "C": 4},
                 {"input": 2, "weight": 2, "output": 1})


def test_a_one_by_one_convolution():
    t = evaluate(one_by_one())
    # input block at (k, c) = 4 channels x 16 pixels = 64 words. Sequence of C tiles:
    # c0, c1, c0, c1 -- consecutive blocks are disjoint, so each loads 64: 4*64 = 256.
    # weight block = 2 K x 4 C = 8 words; the 4 blocks are all different: 4*8 = 32.
    # output block (level 1, below K) = 2 channels x 16 = 32 words; K tiles k0, k1 are
    # one run each: 2 writes of 32 = 64 words, final, no read-back.
    assert words(t) == {"input": 256, "weight": 32, "output_read": 0, "output_write": 64}
    # 8-bit words: bytes = words; the output's only writes are final (8-bit).
    assert nbytes(t) == {"input": 256, "weight": 32, "output_read": 0, "output_write": 64}
    assert t.total_words == 256 + 32 + 64 == 352
    assert t.total_bytes == 352
    assert t.buffer_words == {"input": 64, "weight": 8, "output": 32}
    # the output buffer holds 32-bit partial sums: 32*4 = 128 bytes
    assert t.buffer_bytes == {"input": 64, "weight": 8, "output": 128}
    assert t.macs == 4 * 8 * 16 == 512
    assert t.bytes_per_mac == 352 / 512
    agree_with_walk(one_by_one())


# (b) ---------------------------------------------------------------------------
def test_b_three_by_three_stride_two_padded():
    # K=2, C=1, 4x4 output, 3x3 filter, stride 2, padding 1, input given as 8x8.
    # Rows read: oy*2 + fy - 1 for oy 0..3, fy 0..2 = -1..7 -> all of rows 0..7.
    s = sched({"K": 2, "C": 1, "OY": 4, "OX": 4, "FY": 3, "FX": 3, "SY": 2, "SX": 2,
               "PY": 1, "PX": 1, "IY": 8, "IX": 8},
              ["OY"], {"OY": 2}, {"input": 1, "weight": 0, "output": 1})
    t = evaluate(s)
    # input, OY tile [0,2): rows [0*2+0-1, 1*2+2-1+1) = [-1,4) -> [0,4): 4 rows x 8 cols = 32.
    #        OY tile [2,4): rows [2*2-1, 3*2+2-1+1) = [3,8): 5 rows = 40 words; row 3 is
    #        already there, so 4 new rows = 32 words.  Total 32 + 32 = 64 = the whole input.
    # weight at level 0: 2*1*3*3 = 18 words once.
    # output block = 2 K x 2 rows x 4 cols = 16 words, 2 blocks, one run each: 32 writes.
    assert words(t) == {"input": 64, "weight": 18, "output_read": 0, "output_write": 32}
    assert t.buffer_words == {"input": 40, "weight": 18, "output": 16}
    assert t.total_words == 64 + 18 + 32 == 114
    assert t.macs == 2 * 1 * 16 * 9 == 288
    agree_with_walk(s)


# (c) ---------------------------------------------------------------------------
def test_c_depthwise():
    # G=C=K=4, 4x4 output, 3x3 filter, padding 1 -> input 4x4 per channel (64 words).
    s = sched({"G": 4, "K": 4, "C": 4, "OY": 4, "OX": 4, "FY": 3, "FX": 3, "PY": 1, "PX": 1},
              ["OY", "G"], {"OY": 2, "G": 1}, {"input": 2, "weight": 0, "output": 2})
    t = evaluate(s)
    # input block at (oy, g): one channel; rows for OY [0,2): [-1, 3) -> [0,3) = 3 rows;
    # for OY [2,4): [1, 5) -> [1,4) = 3 rows; 4 cols -> 12 words each. G is the inner
    # loop, so consecutive blocks are different channels (disjoint): 2*4 blocks * 12 = 96.
    # weight at level 0: 4 groups * 1 * 1 * 9 = 36.
    # output block = 1 channel x 2 rows x 4 cols = 8 words; 8 blocks, one run each = 64.
    assert words(t) == {"input": 96, "weight": 36, "output_read": 0, "output_write": 64}
    assert t.buffer_words == {"input": 12, "weight": 36, "output": 8}
    assert t.macs == 4 * 1 * 16 * 9 == 576   # K * C/G * OY*OX * FY*FX
    assert t.total_bytes == 96 + 36 + 64
    agree_with_walk(s)


# (d) ---------------------------------------------------------------------------
def sliding() -> Schedule:
    # K=C=1, 6x5 output, 3x3 filter, no padding: input 8x7 = 56 words.
    return sched({"K": 1, "C": 1, "OY": 6, "OX": 5, "FY": 3, "FX": 3},
                 ["OY"], {"OY": 2}, {"input": 1, "weight": 0, "output": 1})


def test_d_sliding_window_loads_only_new_rows():
    t = evaluate(sliding())
    # input rows for OY tile [o0,o1) = [o0, o1+2):  [0,4), [2,6), [4,8).
    # first block: 4 rows x 7 cols = 28; then rows 4,5 new = 14; then rows 6,7 = 14.
    # 28 + 14 + 14 = 56 (each input word once; reloading whole blocks would be 84).
    # weight 9 once; output 3 blocks of 2x5 = 10 words, one run each = 30 writes.
    assert words(t) == {"input": 56, "weight": 9, "output_read": 0, "output_write": 30}
    assert t.buffer_words == {"input": 28, "weight": 9, "output": 10}
    assert t.total_words == 95
    agree_with_walk(sliding())


# (e) ---------------------------------------------------------------------------
def spill() -> Schedule:
    # K=2, C=4, 2x2 map, 1x1: input 16 words, weight 8, output 8.
    return sched({"K": 2, "C": 4, "OY": 2, "OX": 2}, ["C", "K"], {"C": 2, "K": 1},
                 {"input": 2, "weight": 2, "output": 2})


def test_e_partial_sums_spilled_and_read_back():
    t = evaluate(spill())
    # output block at (c, k) = channel k x 4 pixels = 4 words. Iterations c0k0 c0k1 c1k0
    # c1k1 give blocks k0 k1 k0 k1: four runs, 4 writes of 4 = 16 words. The runs at c1
    # revisit their block, so each first reads back 4 partial sums: 8 words read.
    # Writes at c0 are not final: 8 words * 32 bits = 32 bytes; writes at c1 are final:
    # 8 words * 8 bits = 8 bytes -> 40 write bytes. Read-backs: 8 * 4 bytes = 32 bytes.
    # input block = 2 channels x 4 = 8 words: c0 loads 8, k changes nothing, c1 loads 8 = 16.
    # weight block = 1 K x 2 C = 2 words, 4 different blocks = 8.
    assert words(t) == {"input": 16, "weight": 8, "output_read": 8, "output_write": 16}
    assert nbytes(t) == {"input": 16, "weight": 8, "output_read": 32, "output_write": 40}
    assert t.output_final_writes == 8
    assert t.total_words == 16 + 8 + 8 + 16 == 48
    assert t.total_bytes == 16 + 8 + 32 + 40 == 96
    assert t.buffer_words == {"input": 8, "weight": 2, "output": 4}
    agree_with_walk(spill())


def test_e_partial_sums_with_one_word_size():
    # --bits 16: every word (psum too) is 2 bytes; 48 words -> 96 bytes.
    t = evaluate(spill(), Architecture.from_flags(bits=16))
    assert nbytes(t) == {"input": 32, "weight": 16, "output_read": 16, "output_write": 32}
    assert t.total_bytes == 96


# (f) ---------------------------------------------------------------------------
@pytest.mark.parametrize("order,tiles,level", [([], {}, 0), (["OY"], {"OY": 1}, 1)])
def test_f_one_by_one_stride_two_fetches_a_quarter(order, tiles, level):
    # K=C=1, 4x4 output, 1x1 filter, stride 2, input given as 8x8 = 64 words.
    # Rows read: 0,2,4,6; columns likewise: 4*4 = 16 words = a quarter.
    # With the OY loop (tile 1): each block is one row (2*oy) x 4 columns = 4; 4*4 = 16.
    s = sched({"K": 1, "C": 1, "OY": 4, "OX": 4, "SY": 2, "SX": 2, "IY": 8, "IX": 8},
              order, tiles, {"input": level, "weight": level, "output": level})
    t = evaluate(s)
    assert t.input.read == 16 == s.layer.input_words // 4
    assert t.buffer_words["input"] == (16 if level == 0 else 4)
    assert t.weight.read == 1 and t.output.write == 16
    agree_with_walk(s)


# (g) ---------------------------------------------------------------------------
def padding_block() -> Schedule:
    # K=C=1, OY=1, OX=4, FY=FX=3, PY=1, PX=0: input rows: reach = 0+2+1-1 = 2, IY = 2-1 = 1;
    # IX = 3+2+1 = 6. Input = 1 x 6 = 6 words.
    return sched({"K": 1, "C": 1, "OY": 1, "OX": 4, "FY": 3, "FX": 3, "PY": 1},
                 ["OX", "FY"], {"OX": 2, "FY": 1}, {"input": 2, "weight": 0, "output": 1})


def test_g_filter_loop_block_wholly_in_padding():
    t = evaluate(padding_block())
    # input row of filter row fy = fy - 1: fy=0 -> row -1 (padding), fy=1 -> row 0,
    # fy=2 -> row 1 (bottom padding: IY=1). Columns of OX tile [0,2) = [0,4), of [2,4) = [2,6).
    # Sequence (ox, fy): (0,0) empty - moves nothing; (0,1) row 0 x cols 0-3 = 4 words;
    # (0,2) empty; (1,0) empty; (1,1) row 0 x cols 2-5 compared with the last non-empty
    # block (0,1): cols 2,3 are there, 2 new words. Total 4 + 2 = 6 (the whole input).
    # weight at level 0: 9. output block = 2 columns, 2 blocks, one run each: 4 writes.
    assert words(t) == {"input": 6, "weight": 9, "output_read": 0, "output_write": 4}
    assert t.buffer_words == {"input": 4, "weight": 9, "output": 2}
    agree_with_walk(padding_block())


# (j) ---------------------------------------------------------------------------
def test_j_dilation_gap_at_the_bottom_padding_is_not_fetched():
    # Issue 14, case 1. K=4, C=1, OY=3, OX=6, FY=2 (DY=2), FX=3, PY=PX=1: IY = 2+2+1-2 = 3,
    # IX = 5+2+1-2 = 6; every input row and column is read by some output.
    # Order OY/2 FX/1 FY/1, input buffer below OY and FX (FY inside it).
    # Rows of OY tile [0,2) = {oy + 2fy - 1} = {-1,0,1,2} -> rows 0..2 (3 rows);
    # OY tile [2,3) = {1, 3} -> row 1 only (row 3 is padding; clipping the window [1,4)
    # to the input would give rows 1..2, a row this block never reads).
    # Columns of FX tap f: {ox + f - 1}: f=0 -> 0..4, f=1 -> 0..5, f=2 -> 1..5.
    # oy0: 3x5 = 15, then 3x6 less 3x5 = 3, then cols 1..5 inside cols 0..5: 0.
    # oy1: row 1 x cols 0..4 less its overlap with rows 0..2 x cols 1..5 (4) = 1; then
    # row 1 x cols 0..5 less 5 = 1; then 0. Input 15+3+0+1+1+0 = 20 (not 22).
    s = sched({"N": 1, "G": 1, "K": 4, "C": 1, "OY": 3, "OX": 6, "FY": 2, "FX": 3, "SY": 1, "SX": 1,
               "DY": 2, "DX": 1, "PY": 1, "PX": 1},
              ["OY", "FX", "FY"], {"OY": 2, "FX": 1, "FY": 1}, {"input": 2, "weight": 3, "output": 3})
    t = evaluate(s)
    assert t.input.read == 20
    assert t.buffer_words["input"] == 3 * 6
    agree_with_walk(s)


def test_k_stride_gap_at_the_right_padding_is_not_fetched():
    # Issue 14, case 2. N=2, K=4, C=1, OY=7, OX=3, FY=2, FX=3, SX=2, PX=1: IY = 6+1+1 = 8,
    # IX = 4+2+1-2 = 5; every row and column is read by some output.
    # Order FX/2 N/1 OX/1 OY/2 FY/1, input buffer below FX and N: a block is one image,
    # all 8 rows, and the columns {2*ox + fx - 1} of its FX tile: [0,2) -> {-1,0,...,4} ->
    # cols 0..4 (40 words); [2,3) -> {1,3,5} -> cols 1..3 (24 words; column 5 is padding,
    # so clipping the window [1,6) would give cols 1..4).
    # Sequence (fx, n): 40, 40 (another image), 24 (image 0 again), 24. Input 128 (not 144).
    s = sched({"N": 2, "G": 1, "K": 4, "C": 1, "OY": 7, "OX": 3, "FY": 2, "FX": 3, "SY": 1, "SX": 2,
               "DY": 1, "DX": 1, "PY": 0, "PX": 1},
              ["FX", "N", "OX", "OY", "FY"], {"FX": 2, "N": 1, "OX": 1, "OY": 2, "FY": 1},
              {"input": 2, "weight": 3, "output": 0})
    t = evaluate(s)
    assert t.input.read == 40 + 40 + 24 + 24 == 128
    assert t.buffer_words["input"] == 40
    agree_with_walk(s)


# (h) ---------------------------------------------------------------------------
def test_h_dma_granularity_rounds_each_step():
    arch = Architecture(dma_granularity=16)
    t = evaluate(sliding(), arch)
    # sliding(): input steps 28, 14, 14 bytes -> 32 + 16 + 16 = 64 (not 56 -> 64 by chance:
    # the total alone would round 56 up to 64 too; see the spill case for a difference).
    # weight: one step of 9 bytes -> 16. output: 3 final writes of 10 bytes -> 3*16 = 48.
    assert nbytes(t) == {"input": 64, "weight": 16, "output_read": 0, "output_write": 48}
    assert words(t) == words(evaluate(sliding()))    # words do not change
    agree_with_walk(sliding(), arch)

    t = evaluate(spill(), arch)
    # spill(): input 2 steps of 8 bytes -> 2*16 = 32 (rounding the total 16 would give 16).
    # weight 4 steps of 2 bytes -> 4*16 = 64. output read-backs: 2 steps of 4 psums * 4 B =
    # 16 -> 32; non-final writes 2 * 16 = 32, final writes 2 steps of 4 bytes -> 2*16 = 32.
    assert nbytes(t) == {"input": 32, "weight": 64, "output_read": 32, "output_write": 64}
    assert t.total_bytes == 192
    agree_with_walk(spill(), arch)


def test_h_dma_granularity_with_sub_byte_words():
    # 4-bit input: the first sliding step of 28 words is 14 bytes -> 16; then 7 -> 16 twice.
    arch = Architecture(input_bits=4, dma_granularity=16)
    t = evaluate(sliding(), arch)
    assert t.input.read_bytes == 48
    assert evaluate(sliding(), Architecture(input_bits=4)).input.read_bytes == 28  # 56 * 4 / 8
    agree_with_walk(sliding(), arch)


# (i) ---------------------------------------------------------------------------
def test_i_double_buffering_doubles_buffer_bytes():
    single = evaluate(one_by_one(), Architecture())
    double = evaluate(one_by_one(), Architecture(double_buffer=True))
    # buffers 64, 8, 32 words -> 64, 8, 128 bytes; doubled: 128, 16, 256.
    assert double.buffer_bytes == {"input": 128, "weight": 16, "output": 256}
    assert double.buffer_words == single.buffer_words
    assert double.total_buffer_bytes == 400 == 2 * single.total_buffer_bytes
    assert words(double) == words(single) and nbytes(double) == nbytes(single)
    # capacity: 400 bytes fit exactly; 399 do not
    assert Architecture(double_buffer=True, capacity=400).fits(double.buffer_words)
    assert not Architecture(double_buffer=True, capacity=399).fits(double.buffer_words)
    assert Architecture(capacity=200).fits(single.buffer_words)


def test_per_operand_capacity():
    t = evaluate(one_by_one())
    assert Architecture(capacity_per_operand=(64, 8, 128)).fits(t.buffer_words)
    assert not Architecture(capacity_per_operand=(64, 8, 127)).fits(t.buffer_words)


# the model does not walk tiles ---------------------------------------------------
def test_huge_tile_count_is_closed_form():
    # 224x224, 64->64 channels, 3x3: with tile 1 in all eight loops there are
    # 64*64*224*224*9 ~ 1.85e9 tiles; the model must not enumerate them.
    layer = {"K": 64, "C": 64, "OY": 224, "OX": 224, "FY": 3, "FX": 3, "PY": 1, "PX": 1}
    order = ["K", "C", "OY", "OX", "FY", "FX"]
    for buffers in ({"input": 6, "weight": 6, "output": 6}, {"input": 3, "weight": 2, "output": 4},
                    {"input": 4, "weight": 0, "output": 2}):
        s = sched(layer, order, {d: 1 for d in order}, buffers)
        assert s.n_tiles == 64 * 64 * 224 * 224 * 9
        t = evaluate(s)
        assert t.macs == 64 * 64 * 224 * 224 * 9
        assert t.weight.read >= 64 * 64 * 9
    # filter loops outermost (input rows/columns controlled by two loops each, FY outside OY)
    for order2 in (["FY", "FX", "OY", "OX", "K", "C"], ["OY", "FY", "C", "FX", "OX", "K"]):
        s = sched({**layer, "FY": 7, "FX": 7, "PY": 3, "PX": 3, "SY": 2, "SX": 2}, order2,
                  {d: 1 for d in order2}, {"input": 6, "weight": 2, "output": 3})
        assert evaluate(s).macs == 64 * 64 * 224 * 224 * 49
    # innermost buffers, tile 1: consecutive tiles always differ in (FY, FX), so every MAC
    # loads its weight word anew; the output word is revisited once per C iteration.
    s = sched(layer, order, {d: 1 for d in order}, {"input": 6, "weight": 6, "output": 6})
    t = evaluate(s)
    assert t.weight.read == t.macs
    # output block changes at every C step only (FY, FX are inside, output ignores them):
    # runs = K*C*OY*OX, of which K*OY*OX are first visits.
    assert t.output.write == 64 * 64 * 224 * 224
    assert t.output.read == 64 * 63 * 224 * 224
