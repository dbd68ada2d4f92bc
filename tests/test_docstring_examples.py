"""The runnable examples in the docstrings of the core types and functions (doctest): each object below
has at least one, and every one gives what its docstring shows."""

from __future__ import annotations

import doctest

import pytest

from convsched.core.arch import Architecture
from convsched.core.cache import BoundedCache
from convsched.core.errors import ConvschedError
from convsched.core.layer import Layer
from convsched.core.schedule import Schedule
from convsched.model.closed_form import Traffic, evaluate
from convsched.model.simulate import SimResult, simulate

DOCUMENTED = [Layer, Architecture, Schedule, evaluate, simulate, Traffic, SimResult, ConvschedError, BoundedCache]


@pytest.mark.parametrize("obj", DOCUMENTED, ids=lambda o: o.__name__)
def test_docstring_example_runs(obj):
    finder = doctest.DocTestFinder(recurse=False)
    tests = [t for t in finder.find(obj, obj.__name__, globs={}) if t.examples]
    assert tests, f"{obj.__name__}'s docstring has no example"
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    for test in tests:
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} example(s) of {obj.__name__} failed (see the output above)"
