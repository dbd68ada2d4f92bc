"""The runnable examples in the docstrings (doctest): every name of `convsched.__all__`, and the core helpers
below, has at least one, run where it lives, and each gives what its docstring shows."""

from __future__ import annotations

import doctest
import sys

import pytest

import convsched
from convsched.core.cache import BoundedCache

DOCUMENTED = [getattr(convsched, name) for name in convsched.__all__] + [BoundedCache]


@pytest.mark.parametrize("obj", DOCUMENTED, ids=lambda o: o.__name__)
def test_docstring_example_runs(obj):
    module = sys.modules[obj.__module__]
    finder = doctest.DocTestFinder(recurse=False)
    tests = [t for t in finder.find(obj, obj.__name__, module=module, globs=vars(module).copy()) if t.examples]
    assert tests, f"{obj.__name__}'s docstring has no example"
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    for test in tests:
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} example(s) of {obj.__name__} failed (see the output above)"
