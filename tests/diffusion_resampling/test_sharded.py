"""Groups sharded over 8 devices give the same particles as one device."""

from tests.multidevice import run_with_devices

CODE = """
import jax, jax.numpy as jnp, numpy as np
from jaxpapers.sharding import data_mesh, shard_batch
from jaxpapers.diffusion_resampling import make_schedule, smc_sample

T = 8
sched = make_schedule(T, "linear", 0.02, 0.4)

def move(key, x, t, cond=None):
    abar = sched.alpha_bars[t - 1]
    return 0.9 * x + 0.3 * jax.random.normal(key, x.shape) + 0.01 * cond[:, None, None] * abar

def pot(x, t, cond=None):
    return -jnp.sum((x - 1.0) ** 2, axis=-1) + 0.1 * cond[:, None]

G, K = 16, 4
x_init = jax.random.normal(jax.random.key(0), (G, K, 2))
cond = jnp.arange(G, dtype=jnp.float32)

def run(x, c):
    out = smc_sample(jax.random.key(1), move, pot, (2, 4, 6), K, x, T, c, final="argmax")
    return out.samples, out.ancestors, out.log_weights

single = jax.jit(run)(x_init, cond)
mesh = data_mesh(8)
xs, cs = shard_batch((x_init, cond), mesh)
sharded = jax.jit(run)(xs, cs)
assert len(sharded[0].sharding.device_set) == 8, sharded[0].sharding
np.testing.assert_array_equal(np.asarray(single[1]), np.asarray(sharded[1]))
np.testing.assert_allclose(np.asarray(single[0]), np.asarray(sharded[0]), rtol=1e-6, atol=1e-6)
np.testing.assert_allclose(np.asarray(single[2]), np.asarray(sharded[2]), rtol=1e-5, atol=1e-5)
print("ok")
"""


def test_sharded_groups_equal_single_device():
    assert "ok" in run_with_devices(CODE)
