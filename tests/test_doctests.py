"""The docstring examples of the documented shared packages run and print what they show."""

import doctest
import importlib

import pytest

MODULES = [
    "jaxpapers.smc._weights", "jaxpapers.smc._resampling", "jaxpapers.smc._lgssm",
    "jaxpapers.smc._step", "jaxpapers.smc._adaptive",
    "jaxpapers.gp._kernels", "jaxpapers.gp._posterior", "jaxpapers.gp._fit",
    "jaxpapers.bocvs._policy", "jaxpapers.bocvs._loop", "jaxpapers.bocvs._problems",
    "jaxpapers.experiments._stats", "jaxpapers.experiments._report",
    "jaxpapers.experiments._results", "jaxpapers.experiments._registry",
    "jaxpapers._src.checkpoint", "jaxpapers._src.checks", "jaxpapers._src.mesh",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
                             verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"


def test_the_documented_modules_have_examples():
    finder = doctest.DocTestFinder()
    examples = sum(len(test.examples) for name in MODULES
                   for test in finder.find(importlib.import_module(name)))
    assert examples >= 30, examples
