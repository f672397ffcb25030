"""The smoke-scale reproduction end to end, and the run axis sharded over 8 simulated devices
equal to one device."""

import json
import os

import pytest

from jaxpapers.experiments import RunContext, reproduce
from tests.multidevice import run_with_devices


@pytest.mark.slow
def test_smoke_reproduction(tmp_path):
    """The whole runner at the smoke scale (about 55 s of CPU, nearly all of it compiling the
    self-play, training, REINFORCE and league programs: slow, to keep CI within budget)."""
    ctx = RunContext(out_dir=str(tmp_path), scale="smoke", seed=0, show_progress=False)
    results = reproduce("expert_iteration", ctx)
    assert results["table"] and results["verdict"]
    saved = json.loads((tmp_path / "results.json").read_text())
    metrics = saved["metrics"]
    runs, iterations = 2, 2
    assert len(metrics["elo"]["exit"]) == iterations + 1
    assert all(len(row) == runs for row in metrics["elo"]["exit"])
    evaluations = metrics["evaluations"]
    for it in range(1, iterations + 1):  # REINFORCE stops at or just past ExIt's count
        exit_mean = sum(evaluations["exit"][it]) / runs
        assert sum(evaluations["reinforce"][it]) / runs >= exit_mean
    for plot in saved["plots"]:
        assert os.path.getsize(tmp_path / plot) > 0
    expert = metrics["expert_vs_apprentice"]   # [iterations + 1, runs], rates in [0, 1]
    assert len(expert) == iterations + 1 and all(len(row) == runs for row in expert)
    assert all(0.0 <= v <= 1.0 for row in expert for v in row)
    losses = metrics["imitation_final_loss"]   # the TPT-vs-CAT sweep's networks trained
    assert {"tpt", "cat", "tpt-t50", "mcts-tpt", "mcts-cat"} <= set(losses)
    assert "argmax_agreement" in metrics["imitation_targets"]
    assert "inferred choices swept" in (tmp_path / "report.md").read_text()


def test_sweep_grid_and_scales():
    """The sweep's grid: the full product, or the base and one change at a time (plus extras);
    every scale's expert and every grid point is a valid search."""
    from jaxpapers.expert_iteration._experiments._reproduce import SCALES
    from jaxpapers.expert_iteration._experiments._sweep import SweepScale, grid

    full = grid(SCALES["sweep5"])
    assert len(full) == 72 and len({tuple(sorted(g.items())) for g in full}) == 72
    check = grid(SCALES["sweep7"])
    base = check[0]
    assert len(check) == 1 + 2 + 2 + 1 + 2 + 1 + 1
    for setting in check[1:-1]:   # each differs from the base in exactly one factor
        assert sum(setting[k] != base[k] for k in base) == 1
    assert check[-1]["prior_temperature"] == 1.0 and check[-1]["uct_c"] == 1.0
    for name in ("smoke", "quick", "board7"):
        assert SCALES[name].exit.search.prior_temperature == base["prior_temperature"]
    sweep = SCALES["sweep5"]
    with pytest.raises(ValueError, match="stages"):
        SweepScale(**{**sweep.__dict__, "stages": (7,)})
    with pytest.raises(ValueError, match="prior_temperature"):
        SweepScale(**{**sweep.__dict__, "temperatures": (0.0,)})


@pytest.mark.slow
def test_sweep_smoke_runs(tmp_path):
    ctx = RunContext(out_dir=str(tmp_path), scale="sweep-smoke", seed=0, show_progress=False)
    results = reproduce("expert_iteration", ctx)
    metrics = results["metrics"]
    assert len(metrics["rate_vs_apprentice"]) == len(metrics["settings"]) == 2
    assert metrics["chosen"] in metrics["settings"]


@pytest.mark.slow
def test_resumed_after_losing_the_last_checkpoints_ends_equal(tmp_path):
    """A smoke run; then the newest checkpoint of every training (ExIt's last iteration,
    REINFORCE's last stage, the imitation networks' last chunk) is deleted, as if the run had
    been killed before writing them, and ``--resume`` recomputes them: every number of the
    report is equal to the uninterrupted run's."""
    import shutil

    from jaxpapers.experiments import diff_results

    ctx = RunContext(out_dir=str(tmp_path), scale="smoke", seed=0, show_progress=False)
    full = reproduce("expert_iteration", ctx)
    folders = sorted((tmp_path / "checkpoints").glob("expert_iteration/seed0/*/steps"))
    assert len(folders) == 4, folders  # exit, reinforce, imitation tpt and cat
    for steps in folders:
        newest = max(steps.iterdir(), key=lambda p: int(p.name))
        shutil.rmtree(newest)
    resumed = reproduce("expert_iteration", RunContext(out_dir=str(tmp_path), scale="smoke",
                                                       seed=0, show_progress=False,
                                                       resume=True))
    assert diff_results(full, resumed) == []


SHARDED = """
import jax, numpy as np
from jaxpapers.expert_iteration import (ApprenticeConfig, ExItConfig, SearchConfig,
                                        generate_positions, init_exit)
from jaxpapers.expert_iteration._experiments._runs import over_runs
from jaxpapers.sharding import data_mesh, shard_batch

cfg = ExItConfig(board_size=3, network=ApprenticeConfig(channels=4, depth=1, value_hidden=4),
                 search=SearchConfig(num_simulations=4, prior_weight=1.0), games=2,
                 positions_per_game=2, capacity=8, batch_size=4)
R = 8
keys = jax.random.split(jax.random.key(0), R)
params = jax.jit(jax.vmap(lambda k: init_exit(k, cfg).params))(keys)

def chunk(devices):
    gen = jax.jit(over_runs(lambda k, p: generate_positions(k, p, cfg), devices, R))
    k, p = (keys, params) if devices == 1 else shard_batch((keys, params), data_mesh(devices))
    return gen(k, p)

single = chunk(1)
sharded = chunk(8)
assert len(sharded[0].visit_counts.sharding.device_set) == 8, sharded[0].visit_counts.sharding
for a, b in zip(jax.tree_util.tree_leaves(single), jax.tree_util.tree_leaves(sharded)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
print("ok")
"""


def test_sharded_runs_equal_single_device():
    """ExIt's chunk (self-play, sampling, expert labels) for 8 runs: the runs split over 8
    devices (``shard_map``, as ``--devices 8`` does) give what one device gives, bit for bit.
    The training step goes through the same ``over_runs`` mapping."""
    assert "ok" in run_with_devices(SHARDED)


def test_relabel_by_pure_mcts_and_target_stats():
    """The TPT-vs-CAT sweep's helpers: relabelled visit counts are pure MCTS's (each valid row
    sums to the budget, zero on occupied cells, rows past the valid count untouched), and the
    target statistics match a float64 NumPy computation (entropy falls as the target sharpens)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from jaxpapers.expert_iteration import hex
    from jaxpapers.expert_iteration._experiments._reproduce import (
        SCALES,
        _relabel,
        _target_stats,
    )
    from jaxpapers.expert_iteration.selfplay import Positions

    n, runs, capacity, valid, sims = 3, 2, 8, 5, 8
    state = hex.step(hex.init(n), jnp.int32(4))          # one stone in the centre
    states = jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, (runs, capacity) + x.shape),
                                    state)
    rng = np.random.default_rng(0)
    old = rng.integers(0, 5, (runs, capacity, n * n)).astype(np.int32)
    old[:, :, 4] = 0
    buffer = Positions(states, jnp.asarray(old), jnp.zeros((runs, capacity)))
    count = jnp.array([valid, valid], jnp.int32)
    new = np.asarray(_relabel(buffer, count, sims, jax.random.key(0), chunk=4).visit_counts)
    assert (new[:, :valid].sum(-1) == sims).all()
    assert (new[:, :, 4] == 0).all()
    np.testing.assert_array_equal(new[:, valid:], old[:, valid:])

    scale = SCALES["smoke"]
    stats = _target_stats(buffer, count, None, scale)
    p = old[:, :valid].astype(np.float64)
    for r in range(runs):
        rows = p[r][p[r].sum(-1) > 0]
        q = rows / rows.sum(-1, keepdims=True)
        ent = np.mean(-np.sum(np.where(q > 0, q * np.log(np.where(q > 0, q, 1)), 0), -1))
        np.testing.assert_allclose(stats["expert-t100"]["entropy"][r], ent, rtol=1e-5)
        np.testing.assert_allclose(stats["expert-t100"]["top_share"][r], q.max(-1).mean(),
                                   rtol=1e-5)
    assert all(a < b for a, b in zip(stats["expert-t50"]["entropy"],
                                     stats["expert-t100"]["entropy"], strict=True))
