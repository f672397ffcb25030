"""The documentation: every public name is in the API reference, every method and notebook has
its page, the README stays short with its test-command marker, and the site builds with
warnings as errors (slow)."""

import importlib
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
API = DOCS / "api"

# Every public namespace and its page in docs/api/ (a public submodule has a page of its own).
PUBLIC = ["jaxpapers", "jaxpapers.smc", "jaxpapers.gp", "jaxpapers.meanfield", "jaxpapers.bocvs",
          "jaxpapers.diffusion_resampling", "jaxpapers.diffusion_resampling.toy", "jaxpapers.xit",
          "jaxpapers.xit.data", "jaxpapers.xit.augment", "jaxpapers.xit.models",
          "jaxpapers.xit.metrics", "jaxpapers.expert_iteration", "jaxpapers.expert_iteration.hex",
          "jaxpapers.moving_targets", "jaxpapers.experiments", "jaxpapers.sharding"]
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


@pytest.mark.slow
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
