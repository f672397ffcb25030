"""Reusable kernel contract check, applied to every kernel of every method.

``check_kernel_contract(fn, *args)`` takes a kernel ``fn(key, *args)`` and verifies: it jits;
it vmaps over a batch of keys; the same key gives the same output; different keys give
different outputs (unless ``deterministic=True``); outputs of jit and vmap agree; every output
leaf is finite (where floating); and, for a state-transition kernel (``state_arg`` = index of the
state among ``args``), the new state has the structure, shapes and dtypes of the old one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def _leaves(tree: Any) -> list[np.ndarray]:
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]


def _same(a: Any, b: Any) -> bool:
    la, lb = _leaves(a), _leaves(b)
    return len(la) == len(lb) and all(
        x.shape == y.shape and np.array_equal(x, y, equal_nan=True) for x, y in zip(la, lb))


def check_kernel_contract(fn: Callable[..., Any], *args: Any, key=None, num_keys: int = 3,
                          deterministic: bool = False, state_arg: int | None = None,
                          output_state: Callable[[Any], Any] | None = None,
                          check_finite: bool = True) -> Any:
    key = jax.random.key(0) if key is None else key
    keys = jax.random.split(key, num_keys)
    jitted = jax.jit(fn)
    out0 = jitted(keys[0], *args)
    out0_again = jitted(keys[0], *args)
    assert _same(out0, out0_again), "same key must give the same output"
    if not deterministic:
        out1 = jitted(keys[1], *args)
        assert not _same(out0, out1), "different keys should give different outputs"
    batched = jax.jit(jax.vmap(fn, in_axes=(0,) + (None,) * len(args)))(keys, *args)
    first = jax.tree_util.tree_map(lambda x: x[0], batched)
    for a, b in zip(_leaves(first), _leaves(out0)):
        assert a.shape == b.shape and a.dtype == b.dtype, "vmap changed shapes or dtypes"
        if np.issubdtype(a.dtype, np.floating):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        else:
            np.testing.assert_array_equal(a, b)
    if check_finite:
        for leaf in _leaves(out0):
            if np.issubdtype(leaf.dtype, np.floating):
                assert np.all(np.isfinite(leaf)), "outputs must be finite on the reference problem"
    if state_arg is not None:
        old = args[state_arg]
        new = output_state(out0) if output_state is not None else out0
        assert jax.tree_util.tree_structure(old) == jax.tree_util.tree_structure(new), \
            "state pytree structure changed"
        for a, b in zip(jax.tree_util.tree_leaves(old), jax.tree_util.tree_leaves(new)):
            assert jnp.shape(a) == jnp.shape(b), "state shape changed"
            assert jnp.result_type(a) == jnp.result_type(b), "state dtype changed"
    return out0
