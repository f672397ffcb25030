"""The kernel contract (tests/contracts.py) passes a good kernel and fails each broken one."""

import jax
import jax.numpy as jnp
import pytest

from tests.contracts import check_kernel_contract

X = jnp.linspace(-1.0, 1.0, 6, dtype=jnp.float32)


def good_step(key, x):
    return x + 0.1 * jax.random.normal(key, x.shape, x.dtype)


def ignores_key(key, x):
    return 0.9 * x


def changes_state_dtype(key, x):
    return good_step(key, x).astype(jnp.float16)


def returns_nan(key, x):
    return good_step(key, x) * jnp.where(x > 0.5, jnp.nan, 1.0)


@jax.custom_batching.custom_vmap
def _shift(x):
    return x


@_shift.def_vmap
def _shift_vmap_rule(axis_size, in_batched, x):
    return x + 1e-3, in_batched[0]  # a wrong batching rule: vmap moves every value a little


def vmap_disagrees(key, x):
    return _shift(good_step(key, x))


def retraces_each_call(key, x):
    jax.clear_caches()  # runs at trace time: the next call of the jitted kernel traces again
    return good_step(key, x)


def only_when_eager(broken):
    """A kernel that is ``good_step`` under jit and vmap but ``broken`` when called eagerly."""

    def kernel(key, x):
        eager = not isinstance(x, jax.core.Tracer)
        return broken(key, x) if eager else good_step(key, x)

    return kernel


def test_good_kernel_passes():
    out = check_kernel_contract(good_step, X, state_arg=0)
    assert out.shape == X.shape and out.dtype == X.dtype
    check_kernel_contract(ignores_key, X, deterministic=True)  # declared deterministic: fine
    check_kernel_contract(lambda k, x: (good_step(k, x), jnp.argmax(x)), X,
                          state_arg=0, output_state=lambda out: out[0])


@pytest.mark.parametrize("kernel, options, message", [
    (ignores_key, {}, r"\[with_jit\] different keys should give different outputs"),
    (changes_state_dtype, {"state_arg": 0}, r"\[with_jit\] state shape or dtype changed"),
    (returns_nan, {}, r"\[with_jit\] outputs must be finite"),
    (vmap_disagrees, {}, r"\[with_jit\] vmap over keys disagrees with a single call"),
    (retraces_each_call, {}, r"\[with_jit\] the jitted kernel retraced"),
    # the same faults when only the eager call has them
    (only_when_eager(changes_state_dtype), {"state_arg": 0},
     r"\[without_jit\] state shape or dtype changed"),
    (only_when_eager(returns_nan), {}, r"\[without_jit\] outputs must be finite"),
    (only_when_eager(lambda k, x: good_step(k, x) + 1e-3), {},
     r"\[without_jit\] the eager output disagrees with the jitted one"),
])
def test_broken_kernel_fails(kernel, options, message):
    with pytest.raises(AssertionError, match=message):
        check_kernel_contract(kernel, X, **options)
