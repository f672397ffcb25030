"""The runner at smoke scale writes results, report and plots through the registry."""

import json
import os

import pytest

from jaxpapers.experiments import RunContext, reproduce


def check_smoke_results(out):
    """What a smoke run's folder must hold (also checked on the Quickstart test's run)."""
    stored = json.loads((out / "results.json").read_text())
    assert stored["table"] and stored["verdict"]
    assert stored["metrics"]["one_point"]["runs"] > 0
    chaos = stored["metrics"]["chaos"]
    assert len(chaos["4"]["sw2_T"]) == 3 and len(chaos["slope_T"]) == 3
    kernel_rows = [r for r in stored["table"] if r["section"].startswith("Kernel table")]
    assert len(kernel_rows) == 96 and all(r["note"] == "" for r in kernel_rows)
    decay = stored["metrics"]["decay"]["relu, d=64, σ=0.1"]
    assert decay["runs"] == 4 and decay["fit"]["reached"] and decay["kick"] <= 0.05
    assert decay["se"]["mean_slope"] > 0
    assert abs(decay["fit"]["end_time"] - decay["horizon"]) < 1e-4
    claims = {r["comparison"]["claim"] for r in stored["table"] if r["comparison"]}
    assert "mean log-energy decays at rate 2λ1 (near collapse)" in claims
    assert (out / "report.md").exists() and (out / "decay_rate.png").exists()
    for plot in stored["plots"]:
        assert os.path.getsize(out / plot) > 0


@pytest.mark.slow
def test_reproduce_smoke(tmp_path):
    """In-process (the CI run checks the Quickstart test's CLI run with the same function)."""
    ctx = RunContext(out_dir=str(tmp_path), scale="smoke", seed=0, show_progress=False)
    results = reproduce("meanfield", ctx)
    assert results["table"] and results["verdict"]
    check_smoke_results(tmp_path)


def test_decay_settings_follow_the_stated_rule():
    # T = min(15, 30 / |lambda_bar|) on a 1/30 grid; the fewest substeps with
    # (d - 1) kappa(1) dt <= 0.02; every quick row has lambda_bar < 0
    from jaxpapers.meanfield import kernel_constants
    from jaxpapers.meanfield._experiments._reproduce import SCALES, decay_config

    scale = SCALES["quick"]
    for act, d, sigma in scale.decay_rows:
        consts = kernel_constants(act, d, sigma, sigma)
        assert float(consts.lambda_bar) < 0
        cfg = decay_config(act, d, sigma, scale)
        horizon = min(15.0, 30.0 / abs(float(consts.lambda_bar)))
        assert abs(cfg.horizon - horizon) <= 1 / 60
        kick = (d - 1) * float(consts.kappa1)
        assert kick * cfg.dt <= 0.02
        if cfg.save_every > 1:
            assert kick * cfg.horizon / (cfg.num_layers - cfg.num_saved + 1) > 0.02


def test_decay_sweeps_and_rows(tmp_path):
    # the sweep code path on a tiny row: nested runs, the step and N, and their table rows
    import dataclasses

    import jax

    from jaxpapers.meanfield._experiments._reproduce import (
        SCALES,
        _decay_rows,
        run_decay,
        run_decay_sweep,
    )

    scale = dataclasses.replace(SCALES["smoke"], decay_horizon=2.0, decay_runs=4,
                                decay_resamples=8)
    row = ("relu", 64, 0.1)
    ctx = RunContext(out_dir=str(tmp_path), scale="smoke", seed=0, show_progress=False)
    key = jax.random.key(0)
    runs = run_decay_sweep(ctx, key, row, "runs", (2, 4), scale)
    assert [r["runs"] for r in runs] == [2, 4]
    steps = run_decay_sweep(ctx, key, row, "substeps", (1, 2), scale)
    assert steps[1]["dt"] == steps[0]["dt"] / 2
    with pytest.raises(ValueError, match="unknown decay sweep"):
        run_decay_sweep(ctx, key, row, "width", (2,), scale)
    scale = dataclasses.replace(scale, decay_sweeps=((row, "runs", (2, 4)),
                                                     (row, "substeps", (1, 2))))
    metrics = {}
    rows = _decay_rows({row: run_decay(ctx, key, *row, scale)}, [runs, steps], scale, metrics)
    assert len(rows) == 5 + 2 * 4 and len(metrics["decay_sweeps"]) == 2


def test_paper_decay_rows_are_the_grid_rows_with_negative_lambda_bar():
    from jaxpapers.meanfield import kernel_constants
    from jaxpapers.meanfield._experiments._reproduce import _PAPER_DECAY_ROWS

    expected = tuple((a, d, s) for a in ("relu", "silu", "sigmoid", "tanh")
                     for d in (5, 64, 128) for s in (0.0, 0.1)
                     if float(kernel_constants(a, d, s, s).lambda_bar) < 0)
    assert _PAPER_DECAY_ROWS == expected
