"""Every notebook runs top to bottom in smoke mode, and its .ipynb pair matches the .py source."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.py"))


@pytest.mark.parametrize("source", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_in_smoke_mode(source, tmp_path):
    env = dict(os.environ, JAXPAPERS_SMOKE="1", MPLBACKEND="Agg", JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, str(source)], capture_output=True, text=True,
                          timeout=900, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]


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
