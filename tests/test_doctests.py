"""The docstring examples of every library module run and print what they show."""

import doctest
import importlib
import pkgutil

import pytest


def _modules() -> list[str]:
    """Every module of the package except the experiment drivers and the command line."""
    package = importlib.import_module("jaxpapers")
    names = ["jaxpapers"]
    for info in pkgutil.walk_packages(package.__path__, "jaxpapers."):
        if "._experiments" in info.name or info.name in ("jaxpapers.cli", "jaxpapers.__main__"):
            continue
        names.append(info.name)
    return sorted(names)


MODULES = _modules()


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
