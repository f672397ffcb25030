"""Runs sharded over 8 fake CPU devices equal the single-device runs."""

from tests.multidevice import run_with_devices


def test_sharded_runs_equal_single_device():
    run_with_devices("""
import jax, jax.numpy as jnp, numpy as np
from jaxpapers.sharding import data_mesh, shard_batch
from jaxpapers.meanfield import Coefficients, ModelConfig, sde_solve, uniform_sphere

runs = 16
keys = jax.random.split(jax.random.key(0), runs)
x0 = jax.vmap(lambda k: uniform_sphere(k, 8, 4))(jax.random.split(jax.random.key(1), runs))
for cfg in [ModelConfig(num_layers=6, horizon=1.0, width=16, save_every=2),
            ModelConfig(num_layers=6, horizon=1.0, noise="gp", save_every=3)]:
    coeffs = Coefficients(1.0, 1.0, 0.1, 0.1)
    f = jax.jit(jax.vmap(lambda k, x: sde_solve(k, x, cfg, coeffs)))
    single = f(keys, x0)
    skeys, sx0 = shard_batch((keys, x0), data_mesh(8))
    sharded = f(skeys, sx0)
    assert len(sharded.x.sharding.device_set) == 8, sharded.x.sharding
    for a, b in zip(jax.tree_util.tree_leaves(single), jax.tree_util.tree_leaves(sharded)):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-5, atol=1e-6)
print("ok")
""")
