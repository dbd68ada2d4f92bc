"""The command line's constraint text parsed into the library's Constraints."""

from __future__ import annotations

import pytest

from convsched.cli.constraints import constraints_from_text
from convsched.core.errors import ConvschedError


def test_constraints_from_text():
    assert constraints_from_text() is None
    c = constraints_from_text(orders=["k,c,oy,ox", "C,K"], untiled="FY,FX", tile=["K=16,C=8"],
                              tile_max=["OY=4"], tile_min=["OX=2"])
    assert c.orders == (("K", "C", "OY", "OX"), ("C", "K"))
    assert c.untiled == {"FY", "FX"}
    assert c.tile_min == {"K": 16, "C": 8, "OX": 2} and c.tile_max == {"K": 16, "C": 8, "OY": 4}
    c = constraints_from_text(orders=["K,OY,C,OX"], buffers="input=2,weight=1,output=4")
    assert c.buffers == {"input": 2, "weight": 1, "output": 4}
    for kw, msg in [(dict(orders=["K,Q"]), "unknown dimension"),
                    (dict(orders=["K,K"]), "repeats"),
                    (dict(tile=["K=0"]), "at least 1"),
                    (dict(tile=["K"]), "NAME=NUMBER"),
                    (dict(tile=["K=1.5"]), "whole number"),
                    (dict(tile=["K=2", "K=4"]), "twice"),
                    (dict(tile=["K=2"], tile_max=["K=4"]), "fixed --tile"),
                    (dict(untiled="K", tile_min=["K=2"]), "untiled"),
                    (dict(buffers="input=1,weight=1,output=1"), "exactly one --order"),
                    (dict(orders=["K", "C"], buffers="input=1,weight=1,output=1"), "exactly one --order"),
                    (dict(orders=["K,C"], buffers="input=1,weight=1"), "misses output"),
                    (dict(orders=["K,C"], buffers="input=1,weight=1,output=1,psum=1"), "unknown operand")]:
        with pytest.raises(ConvschedError, match=msg):
            constraints_from_text(**kw)
