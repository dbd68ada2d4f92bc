"""The dimensions of a convolution and the small helpers every part uses on them."""

from __future__ import annotations

#: Loop dimensions: batch, groups, output and input channels (per group), output rows and columns,
#: filter rows and columns.
DIMS: tuple[str, ...] = ("N", "G", "K", "C", "OY", "OX", "FY", "FX")

#: The input's two spatial axes and the (output, filter) dimensions that index each.
SPATIAL_AXES: dict[str, tuple[str, str]] = {"Y": ("OY", "FY"), "X": ("OX", "FX")}


def ceil_div(a, b):
    """`ceil(a / b)` for positive `b`, exact for Python integers and numpy integer arrays alike."""
    return -(-a // b)
