"""The threefry2x32 hash of ``jax.random`` written out, so that XLA fuses it into its consumer.

``jax.random``'s CPU lowering of the hash is a loop over its 20 rounds, several passes over the
data per iteration. For the small per-step draws of a ``lax.scan`` (a few thousand numbers) the
loop's fixed cost dominates (timings: the docs' benchmark pages, "Timing notes"). The
functions here give the same numbers bitwise as ``jax.random`` (tested), and fall back on it for
anything else (other key types, other dtypes, the legacy non-partitionable bit layout).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

__all__ = ["check_key", "key_words", "threefry2x32", "normal"]

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))


def check_key(key, name: str = "key"):
    """Return ``key`` if it is a PRNG key, else raise ``ValueError`` naming ``name``.

    Accepted: typed keys (``jax.random.key(seed)``) and legacy raw keys (``uint32`` arrays from
    ``jax.random.PRNGKey(seed)``), as ``jax.random`` accepts both. A Python or NumPy int, a
    float or an ``int32`` array (a seed passed where a key belongs) is refused at call or trace
    time, jit or not.
    """
    dtype = getattr(key, "dtype", None)
    if dtype is not None and (jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)
                              or (dtype == jnp.uint32 and jnp.ndim(key) >= 1)):
        return key
    shown = f"{type(key).__name__} {key!r}" if dtype is None else f"{dtype}{list(jnp.shape(key))}"
    raise ValueError(f"{name} must be a PRNG key (jax.random.key(seed), or a legacy uint32 key "
                     f"from jax.random.PRNGKey); got {shown[:80]}")


def key_words(key):
    """The two key words of a threefry2x32 key (typed or raw ``uint32[2]``), else ``None``.

    Raises ``ValueError`` (see :func:`check_key`) when ``key`` is not a key at all.
    """
    check_key(key)
    if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        if str(jax.random.key_impl(key)) != "threefry2x32":
            return None
        data = jax.random.key_data(key)
    elif key.shape == (2,) and key.dtype == jnp.uint32 and (
            jax.config.jax_default_prng_impl == "threefry2x32"):
        data = key
    else:
        return None
    return data[0], data[1]


def threefry2x32(k0, k1, x0, x1):
    """The Threefry-2x32 block function (20 rounds; Salmon et al. 2011), unrolled.

    The same function as ``jax.random``'s threefry hash; written out so that XLA fuses all 20
    rounds into one pass (its CPU lowering loops over the rounds, one pass each).
    """
    ks = (k0, k1, k0 ^ k1 ^ jnp.uint32(0x1BD11BDA))
    x0, x1 = x0 + ks[0], x1 + ks[1]
    for i in range(5):
        for r in _ROTATIONS[i % 2]:
            x0 = x0 + x1
            x1 = lax.shift_left(x1, jnp.uint32(r)) | lax.shift_right_logical(x1, jnp.uint32(32 - r))
            x1 = x0 ^ x1
        x0 = x0 + ks[(i + 1) % 3]
        x1 = x1 + ks[(i + 2) % 3] + jnp.uint32(i + 1)
    return x0, x1


def normal(key, shape, dtype=jnp.float32):
    """``jax.random.normal(key, shape, dtype)``, bitwise, with the hash fused for float32.

    With ``jax_threefry_partitionable`` (the default) ``jax.random`` hashes the counter block
    ``(0, i)`` for element ``i`` and takes the xor of the two words; the 23 top bits make a
    uniform on ``(-1, 1)`` and the normal is ``sqrt(2) erfinv(u)``. The same steps here, in one
    fusible expression. Other dtypes, key types or bit layouts call ``jax.random.normal``.
    """
    shape = tuple(shape)
    size = math.prod(shape)
    words = key_words(key)
    if (words is None or jnp.dtype(dtype) != jnp.float32 or size >= 2**32
            or not jax.config.jax_threefry_partitionable):
        return jax.random.normal(key, shape, dtype)
    counter = lax.iota(jnp.uint32, size)  # flat: a short last axis would not vectorise
    x0, x1 = threefry2x32(words[0], words[1], jnp.zeros_like(counter), counter)
    mantissa = lax.shift_right_logical(x0 ^ x1, jnp.uint32(9)) | jnp.uint32(0x3F800000)
    unit = lax.bitcast_convert_type(mantissa, jnp.float32) - jnp.float32(1.0)   # [0, 1)
    low = np.nextafter(np.float32(-1.0), np.float32(0.0))
    uniform = lax.max(jnp.float32(low), unit * (jnp.float32(1.0) - low) + low)
    return (jnp.float32(np.sqrt(2.0)) * lax.erf_inv(uniform)).reshape(shape)
