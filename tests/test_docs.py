"""The documentation: every public name is in the API reference, every method and notebook has
its page, the README stays short with its test-command marker, and the site builds with
warnings as errors."""

import importlib
import os
import pkgutil
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
API = DOCS / "api"

# Every public namespace has its page in docs/api/ (a public submodule has a page of its own).


def _public_modules() -> list[str]:
    """``jaxpapers`` and every module whose dotted name has no private part (the command line
    aside)."""
    import jaxpapers

    names = ["jaxpapers"]
    for info in pkgutil.walk_packages(jaxpapers.__path__, "jaxpapers."):
        if info.name != "jaxpapers.cli" and not any(
                part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return sorted(names)


PUBLIC = _public_modules()
DIRECTIVE = re.compile(r"^\.\. auto(?:function|class|data|exception)::\s+(\S+)", re.M)
ENTRY = re.compile(r"^\.\. autosummary::\n(?:   :\S+:.*\n)*\n((?:   \S+\n)+)", re.M)


def _documented(page: Path) -> tuple[set[str], set[str]]:
    """(names with an autodoc directive, names in the summary table) of one API page."""
    text = page.read_text()
    table = {line.strip() for block in ENTRY.findall(text) for line in block.splitlines()}
    return set(DIRECTIVE.findall(text)), table


def _api_page(module: str) -> str:
    """The API page a name's documentation belongs on, with what to add when it is missing."""
    return f"docs/api/{module}.rst"


@pytest.mark.parametrize("module", PUBLIC)
def test_every_public_name_is_in_the_api_reference(module):
    mod = importlib.import_module(module)
    page = API / f"{module}.rst"
    assert page.exists(), f"add {_api_page(module)} and list it in docs/api/index.md"
    directives, table = _documented(page)
    submodules = {n for n in mod.__all__ if isinstance(getattr(mod, n), types.ModuleType)}
    for name in submodules:
        assert f"{module}.{name}" in PUBLIC, f"public submodule {module}.{name} has no API page"
    names = set(mod.__all__) - submodules
    missing = sorted(names - directives)
    assert not missing, (f"{_api_page(module)} lacks an autofunction/autoclass/autodata "
                         f"directive for {missing}")
    assert not sorted(names - table), f"{_api_page(module)}'s autosummary table lacks " \
                                       f"{sorted(names - table)}"
    stale = sorted((directives | table) - names)
    assert not stale, f"{_api_page(module)} documents names not in {module}.__all__: {stale}"


def test_api_index_lists_every_page():
    index = (API / "index.md").read_text()
    for module in PUBLIC:
        assert re.search(rf"^{re.escape(module)}$", index, re.M), f"{module} not in api/index.md"
    pages = {p.stem for p in API.glob("*.rst")}
    assert pages == set(PUBLIC), f"unexpected API pages: {sorted(pages - set(PUBLIC))}"


def test_every_method_and_notebook_has_a_page():
    from jaxpapers.experiments import METHODS

    index = (DOCS / "index.md").read_text()
    for name in METHODS:
        assert (DOCS / "methods" / f"{name}.md").exists(), name
        assert (DOCS / "benchmarks" / f"{name}.md").exists(), name
        assert f"methods/{name}\n" in index, f"methods/{name} not in the index toctree"
    notebooks = (DOCS / "notebooks.md").read_text()
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        assert f"notebooks/{nb.stem}\n" in notebooks, f"{nb.name} not in docs/notebooks.md"


def test_readme_is_short_and_keeps_the_test_command_and_its_links():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 300
    lines = readme.splitlines()
    marker = lines.index("<!-- test-command -->")
    assert lines[marker + 1] == "```bash" and lines[marker + 2].startswith("python3 -m venv")
    for target in re.findall(r"\]\((docs/[^)#]+)", readme):
        assert (ROOT / target).exists(), f"README links to a missing page: {target}"


def test_docs_build_with_warnings_as_errors(tmp_path):
    """The documented build command (docs/conf.py, README's Documentation section)."""
    pytest.importorskip("sphinx")
    pytest.importorskip("myst_nb")
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", "-d",
         str(tmp_path / "doctrees"), str(DOCS), str(tmp_path / "html")],
        cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert (tmp_path / "html" / "api" / "jaxpapers.smc.html").exists()


def _readme_examples() -> list[str]:
    """The ``python`` blocks of the README's one-example-per-method section."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Usage, one example per method"):]
    section = section[:section.index("\n## ", 1)]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_readme_has_one_example_per_method():
    assert len(_readme_examples()) == 7


@pytest.mark.slow
@pytest.mark.parametrize("index", range(7))
def test_readme_examples_run(index, tmp_path):
    """Each README example runs as written, in a fresh interpreter."""
    code = _readme_examples()[index]
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                            text=True, timeout=900,
                            env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert result.returncode == 0, code + "\n" + result.stderr[-4000:]
