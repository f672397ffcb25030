"""The runner at smoke scale writes results, report and plots through the registry; a cell of
the runner (checkpointed loop over blocks) equals ``jax.vmap(train)`` and resumes bitwise."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers.experiments import RunContext, reproduce
from jaxpapers.moving_targets._experiments._cells import (
    CellKey,
    CellSettings,
    run_cell,
    run_cells_equal_vmap_train,
)


def check_smoke_results(out):
    """What a smoke run's folder must hold (also checked on the Quickstart test's run)."""
    stored = json.loads((out / "results.json").read_text())
    assert stored["table"] and stored["verdict"]["summary"].startswith("Paper method MT-joint")
    for name in ("MT-joint", "MT-varpro", "BPTT-LBFGS"):
        cell = stored["metrics"]["cells"]["delay"]["3"]["H2"][name]
        assert cell["seeds"] == 2 and max(cell["evals"]) <= 60
    assert (out / "report.md").exists()
    for plot in stored["plots"]:
        assert os.path.getsize(out / plot) > 0


@pytest.mark.slow
def test_reproduce_smoke(tmp_path):
    """In-process (the CI run checks the Quickstart test's CLI run with the same function)."""
    ctx = RunContext(out_dir=str(tmp_path), scale="smoke", seed=0, show_progress=False)
    results = reproduce("moving_targets", ctx)
    assert results["table"]
    check_smoke_results(tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["MT-varpro", "hybrid"])
def test_a_cell_equals_vmapped_train_and_resumes_bitwise(tmp_path, method):
    with jax.enable_x64(True):
        keys = jax.random.split(jax.random.key(4), 3)
        key = CellKey("delay", 3, 2, method)
        settings = CellSettings(budget=50, check_every=5, chunk=4)
        ctx = RunContext(out_dir=str(tmp_path), method="moving_targets", show_progress=False)
        cell = run_cell(ctx, keys, key, settings, jnp.float64)
        direct = run_cells_equal_vmap_train(keys, key, 50, 5, jnp.float64)
        for a, b in zip(jax.tree.leaves(cell["state"]), jax.tree.leaves(direct), strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        resumed = run_cell(RunContext(out_dir=str(tmp_path), method="moving_targets",
                                      show_progress=False, resume=True), keys, key, settings,
                           jnp.float64)
        for a, b in zip(jax.tree.leaves(cell["state"]), jax.tree.leaves(resumed["state"]),
                        strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
