"""Sharded over 8 simulated devices (seeds split over the mesh) equals one device: the kernels
to float64 rounding; a whole training cell with counts and flags exact and floats to 1e-4 (the
sharded program reduces in another order, and 40 optimiser steps amplify the last bits)."""

from tests.multidevice import run_with_devices


def test_sharded_equals_single_device():
    run_with_devices("""
import tempfile
import jax, jax.numpy as jnp, numpy as np
from jaxpapers import moving_targets as mt
from jaxpapers.experiments import RunContext
from jaxpapers.moving_targets._experiments._cells import CellKey, CellSettings, run_cell
from jaxpapers.sharding import data_mesh, shard_batch

with jax.enable_x64(True):
    spec = mt.tasks.delay_task(5, 2, low=0.1, high=0.9, dtype=jnp.float64)
    X = jax.random.normal(jax.random.key(1), (16,) + spec.kind.shape, jnp.float64)
    W = jax.random.normal(jax.random.key(2), (16, 5, 5), jnp.float64)
    kernels = jax.jit(jax.vmap(lambda x, w: (mt.losses.reduced_act(x, spec),
                                             jax.grad(mt.losses.reduced_act)(x, spec),
                                             mt.losses.free_run(w, spec),
                                             mt.losses.bptt_loss(w, spec))))
    single = kernels(X, W)
    sharded = kernels(*shard_batch((X, W), data_mesh(8)))
    assert len(sharded[1].sharding.device_set) == 8
    for a, b in zip(single, sharded, strict=True):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-12, atol=1e-13)

    keys = jax.random.split(jax.random.key(0), 8)
    key = CellKey("delay", 3, 2, "MT-varpro")
    settings = CellSettings(budget=40, check_every=5, chunk=9)
    many = run_cell(RunContext(out_dir=tempfile.mkdtemp(), method="moving_targets",
                               show_progress=False), keys, key, settings, jnp.float64)
    assert len(many["state"].evals.sharding.device_set) == 8, many["state"].evals.sharding
    one = run_cell(RunContext(out_dir=tempfile.mkdtemp(), method="moving_targets",
                              show_progress=False, devices=1), keys, key, settings, jnp.float64)
    for a, b in zip(jax.tree.leaves(many["state"]), jax.tree.leaves(one["state"]), strict=True):
        a, b = np.asarray(a), np.asarray(b)
        if np.issubdtype(a.dtype, np.floating):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
        else:
            np.testing.assert_array_equal(a, b)
print("ok")
""")
