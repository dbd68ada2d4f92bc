"""Byte sizes as people read them: `format_size` for any magnitude, and figure axes whose tick labels
name their tick values exactly (powers of two in binary units, not powers of ten with rounded labels)."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from convsched.report.plot import size_ticks
from convsched.core.units import format_size

UNITS = {"B": 1, "KiB": 1024, "MiB": 1024 ** 2, "GiB": 1024 ** 3}


def value_of(label: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)([A-Za-z]+)", label).groups()
    return float(number) * UNITS[unit]


def float_format_size(n: float) -> str:
    """The float formula format_size used before it worked in integers (right wherever floats hold n)."""
    for unit, factor in (("GiB", 1024 ** 3), ("MiB", 1024 ** 2), ("KiB", 1024)):
        if n >= factor:
            q = n / factor
            return f"{q:.0f}{unit}" if q == int(q) else f"{q:.1f}{unit}"
    return f"{n:.0f}B"


@given(st.integers(min_value=0, max_value=2 ** 53))
def test_format_size_as_before_where_floats_hold(n):
    assert format_size(n) == float_format_size(n)


def test_format_size_of_huge_values():
    assert format_size(10 ** 200 * 1024 ** 3) == f"{10 ** 200}GiB"
    assert format_size(10 ** 200).endswith("GiB")                     # no OverflowError
    assert format_size(3 * 1024 ** 3 + 1024 ** 3 // 2) == "3.5GiB"


@given(st.floats(min_value=1, max_value=2.0 ** 60), st.floats(min_value=1, max_value=2.0 ** 60))
def test_size_ticks_are_labelled_exactly(a, b):
    low, high = min(a, b), max(a, b)
    ticks = size_ticks(low, high)
    assert ticks == sorted(set(ticks)) and len(ticks) <= 10
    for t in ticks:
        assert value_of(format_size(t)) == t                       # the label names the tick exactly
    assert ticks[0] <= 2 * low and ticks[-1] >= high / 2              # they cover the range


def test_log_size_axis_labels_powers_of_two():
    pytest.importorskip("matplotlib")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from convsched.report.plot import log_size_axis
    fig = Figure()
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ys = [150_000, 1_000_000, 30_000_000]
    ax.plot([1, 2, 3], ys)
    ax.set_yscale("log")
    log_size_axis(ax.yaxis, ys)
    fig.canvas.draw()
    ticks = [t for t in ax.get_yticks() if ys[0] / 2 <= t <= ys[-1] * 2]
    labels = [ax.yaxis.get_major_formatter()(t) for t in ticks]
    assert len(ticks) >= 3
    for t, label in zip(ticks, labels):
        assert t == 2 ** round(math.log2(t))          # powers of two, not of ten
        assert value_of(label) == t
    assert not ax.yaxis.get_minor_locator()()                       # no unlabelled decimal minor ticks
