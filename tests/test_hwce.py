"""The HWCE-style engine's traffic against hand-computed cases (16-bit words: bytes = 2 x words)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from convsched.core.errors import ConvschedError
from convsched.hwc.config import HWCConfig
from convsched.hwc.hwce import choose_mode, hwce_layer, passes
from convsched.core.layer import Layer

CFG = HWCConfig.default()   # 16-bit words, 4 planes per pass, modes 3x3 5x5 4x7


def words(r):
    return (r.input_words, r.weight_words, r.psum_read_words, r.psum_write_words, r.final_write_words)


def test_3x3_four_planes_per_pass():
    # K=8, C=2, 4x4 output, 3x3, padding 1 -> input 4x4.
    # plane groups: ceil(8/4) = 2; each streams both input planes once: 2 * 2 * 16 = 64 input words
    # weights: 8 * 2 pairs * 9 = 144
    # writes: every (output plane, input channel): 8 * 2 * 16 = 256; final ones 8 * 16 = 128
    # read-backs: all but the first input channel: 8 * (2 - 1) * 16 = 128
    r = hwce_layer(Layer(K=8, C=2, OY=4, OX=4, FY=3, FX=3, PY=1, PX=1), CFG)
    assert r.mode == "3x3" and r.planes == 4 and r.passes == 1
    assert words(r) == (64, 144, 128, 256, 128)
    assert r.bytes == 2 * (64 + 144 + 128 + 256)
    assert r.jobs == 2 * 2          # plane groups x input channels


def test_3x3_fewer_planes_per_pass_rereads_input():
    # same layer, 1 plane per pass: 8 groups * 2 channels * 16 = 256 input words; the rest unchanged
    cfg = HWCConfig.from_dict({"hwce": {"planes_per_pass": 1}}, base=CFG)
    r = hwce_layer(Layer(K=8, C=2, OY=4, OX=4, FY=3, FX=3, PY=1, PX=1), cfg)
    assert words(r) == (256, 144, 128, 256, 128)


def test_5x5():
    # K=4, C=3, 6x6 output, 5x5, no padding -> input 10x10; one group of 4 planes
    # input: 1 * 3 * 100 = 300; weights: 4 * 3 * 25 = 300
    # writes: 4 * 3 * 36 = 432 (final 4 * 36 = 144); read-backs: 4 * 2 * 36 = 288
    r = hwce_layer(Layer(K=4, C=3, OY=6, OX=6, FY=5, FX=5), CFG)
    assert r.mode == "5x5" and r.passes == 1
    assert words(r) == (300, 300, 288, 432, 144)


def test_7x7_split_into_two_4x7_passes():
    # K=2, C=1, 4x4 output, 7x7, no padding -> input 10x10.
    # modes: 4x7 needs ceil(7/4)*ceil(7/7) = 2 passes, 5x5 needs 4, 3x3 needs 9 -> 4x7.
    # pass 1 = filter rows 0..3: input rows 0..(3+3) = 7 rows x 10 columns = 70
    # pass 2 = filter rows 4..6: input rows 4..9      = 6 rows x 10 columns = 60
    # input: 1 group * 1 channel * (70 + 60) = 130
    # weights: 2 pairs-of-(out,in) * 2 passes * 28 (4x7 register, zero row in pass 2) = 112
    # writes: 2 planes * 1 channel * 2 passes * 16 = 64 (final 32); read-backs: 2 * (2 - 1) * 16 = 32
    L = Layer(K=2, C=1, OY=4, OX=4, FY=7, FX=7)
    r = hwce_layer(L, CFG)
    assert r.mode == "2 x 4x7" and r.passes == 2
    assert [(p.fy, p.fx) for p in passes(L, CFG.hwce.modes)] == [((0, 4), (0, 7)), ((4, 7), (0, 7))]
    assert words(r) == (130, 112, 32, 64, 32)


def test_mode_choice():
    modes = CFG.hwce.modes
    assert choose_mode(1, 1, modes) == ((3, 3), 1)
    assert choose_mode(3, 3, modes) == ((3, 3), 1)
    assert choose_mode(5, 5, modes) == ((5, 5), 1)
    assert choose_mode(7, 7, modes) == ((4, 7), 2)
    assert choose_mode(11, 11, modes) == ((4, 7), 6)   # 3 row bands x 2 column bands


def test_strided_1x1_computes_stride1_planes():
    # K=4, C=2, 3x3 output, 1x1 stride 2 -> input 5x5; run as a zero-padded 3x3 at stride 1:
    # stride-1 plane (3-1)*2+1 = 5 x 5 = 25 words
    # input: 1 group * 2 channels * 25 = 50; weights 4 * 2 * 9 = 72
    # writes 4 * 2 * 25 = 200 (final 100); read-backs 4 * 1 * 25 = 100
    L = Layer(K=4, C=2, OY=3, OX=3, SY=2, SX=2)
    r = hwce_layer(L, CFG)
    assert r.mode == "3x3 (1x1 zero-padded)"
    assert words(r) == (50, 72, 100, 200, 100)
    # native striding: planes of 3x3 = 9 -> writes 72, read-backs 36, final 36
    nat = hwce_layer(L, HWCConfig.from_dict({"hwce": {"stride": "native"}}, base=CFG))
    assert words(nat) == (50, 72, 36, 72, 36)


def test_depthwise_one_plane_per_pass():
    # G=C=K=4, 3x3, 4x4 output, padding 1: per channel one input plane (16), 9 weights, one write
    r = hwce_layer(Layer(K=4, C=4, G=4, OY=4, OX=4, FY=3, FX=3, PY=1, PX=1), CFG)
    assert r.planes == 1
    assert words(r) == (64, 36, 0, 64, 64)


def test_fc_padded_or_excluded():
    # FC 16 -> 8: groups ceil(8/4) = 2, each reads the 16 inputs once: 32; weights 8*16*9 = 1152
    # writes 8 * 16 = 128 (final 8); read-backs 8 * 15 = 120
    L = Layer(K=8, C=16, OY=1, OX=1)
    assert words(hwce_layer(L, CFG, "fc")) == (32, 1152, 120, 128, 8)
    ex = hwce_layer(L, HWCConfig.from_dict({"hwce": {"fc": "exclude"}}, base=CFG), "fc")
    assert not ex.supported and ex.bytes == 0


def test_cycles_positive_and_port_bound():
    L = Layer(K=8, C=2, OY=4, OX=4, FY=3, FX=3, PY=1, PX=1)
    fast = hwce_layer(L, CFG)
    slow = hwce_layer(L, replace(CFG, port_bytes_per_cycle=1))
    assert 0 < fast.compute_cycles <= fast.cycles < slow.cycles


@pytest.mark.parametrize("hw", [{"planes_per_pass": 5}, {"modes": ["3by3"]}, {"fc": "maybe"}, {"bogus": 1}])
def test_hwce_config_errors(hw):
    with pytest.raises(ConvschedError) as e:
        HWCConfig.from_dict({"hwce": hw})
    assert "\n" not in str(e.value)
