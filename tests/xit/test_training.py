"""Pretraining and fine-tuning steps: the kernel contract, determinism, resumption bitwise
through the toolkit's train_loop and Checkpointer, the sharded run, and the smoke reproduction."""

import importlib.util
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers import xit
from jaxpapers.experiments import Checkpointer, RunContext, diff_results, reproduce, train_loop
from jaxpapers.xit._experiments._reproduce import SCALES
from tests.contracts import check_kernel_contract
from tests.multidevice import run_with_devices

SMOKE = SCALES["smoke"]
MODEL, CFG = SMOKE.model, SMOKE.pretrain  # the smoke run's configs: compiled once per process
POOL_X = jax.random.normal(jax.random.key(11), (40, 1, MODEL.length))
OFFSETS, COUNTS = jnp.asarray([0, 25], jnp.int32), jnp.asarray([25, 15], jnp.int32)
LOG_P = jnp.log(jnp.asarray([[0.5, 0.5]], jnp.float32))
WEIGHTS = jnp.asarray([xit.OBJECTIVES["xit"].as_tuple()], jnp.float32)


def _state(seed=0, runs=1):
    one = [xit.init_pretrain(jax.random.key(seed + r), MODEL, CFG) for r in range(runs)]
    state = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *one)
    return state._replace(step=jnp.int32(0))


def _args(run_keys, runs=1):
    return (POOL_X, OFFSETS, COUNTS, run_keys, jnp.tile(LOG_P, (runs, 1)),
            jnp.tile(WEIGHTS, (runs, 1)))


def test_pretrain_step_contract_and_first_step_determinism():
    update = xit.make_pretrain_update(MODEL, CFG)
    kernel = lambda key, state: update(state, key, *_args(key[None]))
    new, info = check_kernel_contract(kernel, _state(), state_arg=0,
                                      output_state=lambda out: out[0], num_keys=2)
    assert new.step.dtype == jnp.int32 and int(new.step) == 1
    again = jax.jit(kernel)(jax.random.split(jax.random.key(0), 2)[0], _state())
    np.testing.assert_array_equal(np.asarray(again[1].loss), np.asarray(info.loss))
    assert np.all(np.isfinite(np.asarray(info.loss)))


def test_pretraining_resumes_bitwise(tmp_path):
    update = xit.make_pretrain_update(MODEL, CFG)
    args = _args(jax.random.split(jax.random.key(3), 2), runs=2)
    full, full_info = train_loop(update, _state(runs=2), jax.random.key(0), 4, args=args,
                                 chunk=2)
    ckpt = lambda resume: Checkpointer(str(tmp_path), "xit", 0, "pretrain", {"t": 1},
                                       resume=resume)
    train_loop(update, _state(runs=2), jax.random.key(0), 2, args=args, chunk=2,
               checkpointer=ckpt(False))
    resumed, resumed_info = train_loop(update, _state(runs=2), jax.random.key(0), 4,
                                       args=args, chunk=2, checkpointer=ckpt(True))
    for a, b in zip(jax.tree_util.tree_leaves((full, full_info)),
                    jax.tree_util.tree_leaves((resumed, resumed_info)), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_finetune_step_contract_and_evaluate():
    ft = xit.FinetuneConfig(steps=3)
    base = xit.init_pretrain(jax.random.key(0), MODEL, CFG)
    state = xit.init_finetune(jax.random.key(1), base.params["encoder"],
                              base.batch_stats["encoder"], MODEL, ft, 3)
    state = jax.tree_util.tree_map(lambda a: a[None], state)._replace(step=jnp.int32(0))
    x = jax.random.normal(jax.random.key(2), (1, 6, 2, MODEL.length))  # 2 channels
    y = jnp.asarray([[0, 1, 2, 0, 1, 2]])
    update = xit.make_finetune_update(MODEL, ft, 3)
    kernel = lambda key, s: update(s, key, x, y, key[None])
    new, loss = check_kernel_contract(kernel, state, state_arg=0,
                                      output_state=lambda out: out[0], num_keys=2)
    params = jax.tree_util.tree_map(lambda a: a[0], new.params)
    stats = jax.tree_util.tree_map(lambda a: a[0], new.batch_stats)
    scores = xit.evaluate(params, stats, x[0], y[0], MODEL, 3)
    assert set(scores) == {"accuracy", "macro_f1", "auroc"}
    assert all(0.0 <= float(v) <= 1.0 for v in scores.values())


def test_linear_probe_leaves_the_encoder_unchanged():
    ft = xit.FinetuneConfig(steps=2, mode="linear")
    base = xit.init_pretrain(jax.random.key(0), MODEL, CFG)
    state = xit.init_finetune(jax.random.key(1), base.params["encoder"],
                              base.batch_stats["encoder"], MODEL, ft, 2)
    state = jax.tree_util.tree_map(lambda a: a[None], state)._replace(step=jnp.int32(0))
    x = jax.random.normal(jax.random.key(2), (1, 4, 1, MODEL.length))
    y = jnp.asarray([[0, 1, 0, 1]])
    new, _ = jax.jit(xit.make_finetune_update(MODEL, ft, 2))(state, jax.random.key(0), x, y,
                                                              jax.random.split(
                                                                  jax.random.key(3), 1))
    for a, b in zip(jax.tree_util.tree_leaves(state.params["encoder"]),
                    jax.tree_util.tree_leaves(new.params["encoder"]), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(state.params["head"]["Dense_0"]["kernel"]),
                              np.asarray(new.params["head"]["Dense_0"]["kernel"]))


@pytest.mark.slow
def test_no_nan_after_100_steps():
    update = xit.make_pretrain_update(MODEL, CFG)
    _, info = train_loop(update, _state(), jax.random.key(0), 100,
                         args=_args(jax.random.split(jax.random.key(4), 1)), chunk=50)
    loss = np.asarray(info.loss)
    assert np.all(np.isfinite(loss))
    assert loss[-20:].mean() < loss[:20].mean()


SHARDED = """
import jax, jax.numpy as jnp, numpy as np
from jaxpapers import xit
from jaxpapers.sharding import data_mesh, shard_batch
from jaxpapers.xit._experiments._reproduce import SCALES
model, cfg = SCALES["smoke"].model, SCALES["smoke"].pretrain
R = 8
one = [xit.init_pretrain(jax.random.key(r), model, cfg) for r in range(R)]
state = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *one)._replace(step=jnp.int32(0))
pool = jax.random.normal(jax.random.key(11), (40, 1, model.length))
offsets, counts = jnp.asarray([0, 25], jnp.int32), jnp.asarray([25, 15], jnp.int32)
run_keys = jax.random.split(jax.random.key(3), R)
log_p = jnp.log(jnp.full((R, 2), 0.5, jnp.float32))
weights = jnp.tile(jnp.asarray([xit.OBJECTIVES["xit"].as_tuple()], jnp.float32), (R, 1))
update = jax.jit(xit.make_pretrain_update(model, cfg))
single = update(state, jax.random.key(0), pool, offsets, counts, run_keys, log_p, weights)
mesh = data_mesh(8)
per_run = shard_batch((state.params, state.batch_stats, state.opt_state, run_keys, log_p,
                       weights), mesh)
sharded_state = state._replace(params=per_run[0], batch_stats=per_run[1], opt_state=per_run[2])
sharded = update(sharded_state, jax.random.key(0), pool, offsets, counts, *per_run[3:])
leaf = jax.tree_util.tree_leaves(sharded[0].params)[0]
assert len(leaf.sharding.device_set) == 8, leaf.sharding
for a, b in zip(jax.tree_util.tree_leaves(single), jax.tree_util.tree_leaves(sharded)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
print("ok")
"""


def test_sharded_pretraining_equals_single_device():
    assert "ok" in run_with_devices(SHARDED)


@pytest.mark.skipif(importlib.util.find_spec("sktime") is None, reason="needs sktime's sets")
def test_smoke_reproduction_and_resume(tmp_path):
    ctx = RunContext(out_dir=str(tmp_path), scale="smoke", seed=0, show_progress=False)
    results = reproduce("xit", ctx)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["verdict"]["summary"] and results["table"]
    scores = saved["metrics"]["scores"]["GunPoint/k=1"]["accuracy"]
    assert np.asarray(scores).shape == (2 + 4 + 3, SMOKE.subset_seeds)  # encoders x subsets
    assert all((tmp_path / p).stat().st_size > 0 for p in saved["plots"])
    resumed = reproduce("xit", RunContext(out_dir=str(tmp_path), scale="smoke", seed=0,
                                          show_progress=False, resume=True))
    assert diff_results(results, resumed) == []
