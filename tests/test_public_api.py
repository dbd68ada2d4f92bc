"""The public face: `convsched.__all__` and its docstrings, the package's session and the README's Python session
(each name's own examples: tests/test_docstring_examples.py)."""

from __future__ import annotations

import doctest
import re
from pathlib import Path


import convsched

README = Path(__file__).resolve().parents[1] / "README.md"
PROMISED = {"Layer", "Architecture", "Schedule", "evaluate", "simulate", "optimize_layer", "optimize_network",
            "sweep", "load_target", "ConvschedError", "NoFeasibleSchedule"}


def test_all_names_are_public_documented_and_importable():
    assert PROMISED <= set(convsched.__all__)
    for name in convsched.__all__:
        obj = getattr(convsched, name)
        assert not name.startswith("_")
        assert (obj.__doc__ or "").strip(), f"{name} has no docstring"


def test_package_docstring_examples_run():
    result = doctest.testmod(convsched, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 5 and result.failed == 0


def test_readme_python_session_runs():
    text = README.read_text()
    section = text[text.index("## Use it from Python"):]
    block = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    test = doctest.DocTestParser().get_doctest(block, {}, "README", str(README), 0)
    assert len(test.examples) >= 5
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert runner.failures == 0


def test_no_feasible_schedule_names_the_smallest_capacity():
    layer = convsched.Layer(K=64, C=64, OY=56, OX=56, FY=3, FX=3, PY=1, PX=1)
    try:
        convsched.optimize_layer(layer, convsched.Architecture(capacity=4))
    except convsched.NoFeasibleSchedule as e:
        assert isinstance(e, convsched.ConvschedError)
        assert e.smallest_capacity is not None and e.smallest_capacity > 4
        assert f"{e.smallest_capacity}" in str(e)
        # the smallest capacity is enough
        convsched.optimize_layer(layer, convsched.Architecture(capacity=e.smallest_capacity))
    else:
        raise AssertionError("a 4-byte buffer fits no schedule of this layer")
