"""Every notebook runs top to bottom in smoke mode as a notebook (nbclient, the inline backend),
shows at least one figure, installs from the one declared source, and its .ipynb pair matches
the .py source."""

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.py"))


def _source_url() -> str:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]["urls"]["Repository"]


@pytest.mark.parametrize("source", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_in_smoke_mode_and_shows_figures(source, tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("JAXPAPERS_SMOKE", "1")
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend
    notebook = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=900, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    images = [output for cell in notebook.cells if cell.cell_type == "code"
              for output in cell.get("outputs", [])
              if "image/png" in output.get("data", {})]
    assert images, f"{source.name} produced no figure"


@pytest.mark.parametrize("source", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_installs_from_the_declared_source(source):
    text = source.read_text()
    assert re.search(r'^SOURCE = "(.+)"$', text, re.M).group(1) == _source_url()
    assert 'f"jaxpapers @ git+{SOURCE}"' in text
    assert "matplotlib.use(" not in text, "figures must show inline"


@pytest.mark.parametrize("source", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_pair_in_sync(source):
    jupytext = pytest.importorskip("jupytext")
    paired = source.with_suffix(".ipynb")
    assert paired.exists(), f"{paired.name} missing: run `jupytext --to ipynb {source}`"
    expected = jupytext.read(source)
    stored = jupytext.read(paired)
    src = [(c.cell_type, c.source.strip()) for c in expected.cells]
    got = [(c.cell_type, c.source.strip()) for c in stored.cells]
    assert src == got, f"{paired.name} is out of sync with {source.name}: run jupytext --sync"
    assert all(not c.get("outputs") for c in stored.cells if c.cell_type == "code"), \
        "commit notebooks without outputs"
