"""Reusable kernel contract check, applied to every kernel of every method.

``check_kernel_contract(fn, *args)`` takes a kernel ``fn(key, *args)`` and runs it under the two
chex variants of ``@chex.variants(with_jit=True, without_jit=True)``: ``with_jit`` (``jax.jit``)
and ``without_jit`` (the function as it is, called eagerly).

Under ``with_jit`` it verifies: the kernel jits and traces once for all the keys
(``chex.assert_max_traces``); the same key gives the same output; different keys give different
outputs (unless ``deterministic=True``); it vmaps over a batch of keys and the vmapped output
agrees with the single calls.

Under ``without_jit`` the kernel runs once, eagerly, on the first key, and its output must agree
with the jitted output for that key: jit must not change what a kernel computes. The eager
variant stops there: every further eager call (another key, a vmap) recompiles the kernel's
``lax.scan``/``while_loop`` bodies and would double the cost of the contract, while exercising the
batching rules the jitted variant already checks.

Under both variants: every output leaf is finite (unless ``check_finite=False``); and, for a
state-transition kernel (``state_arg`` = index of the state among ``args``; ``output_state``
picks the new state out of the output), the new state has the pytree structure, shapes and
dtypes of the old one.

"Agree" means the same structure, shapes and dtypes, floating leaves within ``rtol=1e-5,
atol=1e-6`` (float32 algebra: vmap or jit may reorder a reduction) and all other leaves exactly
equal. Every failure is an ``AssertionError`` whose message names the variant (``[with_jit]`` or
``[without_jit]``) and the check. The jitted output is returned for further checks at the call
site.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import chex
import jax
import jax.numpy as jnp

WITH_JIT, WITHOUT_JIT = chex.ChexVariantType.WITH_JIT, chex.ChexVariantType.WITHOUT_JIT
# What each chex variant does to the function under test (chex applies ``jax.jit`` for the first
# and calls the function unchanged for the second).
VARIANTS: dict[chex.ChexVariantType, Callable[[Callable], Callable]] = {
    WITH_JIT: jax.jit,
    WITHOUT_JIT: lambda f: f,
}

RTOL, ATOL = 1e-5, 1e-6

_CONTRACT_RUNS = itertools.count()  # names each jitted kernel apart for chex's trace counter


def _tag(variant: chex.ChexVariantType) -> str:
    return f"[{variant.name.lower()}]"


def _trees_equal(a: Any, b: Any) -> bool:
    try:
        chex.assert_trees_all_equal(a, b)  # NaNs in the same places count as equal
    except AssertionError:
        return False
    return True


def _split_inexact(tree: Any) -> tuple[Any, Any]:
    """``(floats, others)``: two trees of the same structure, the other leaves replaced by 0."""
    inexact = lambda x: jnp.issubdtype(jnp.result_type(x), jnp.inexact)
    floats = jax.tree_util.tree_map(lambda x: x if inexact(x) else 0, tree)
    others = jax.tree_util.tree_map(lambda x: 0 if inexact(x) else x, tree)
    return floats, others


def _assert_trees_agree(actual: Any, expected: Any, message: str) -> None:
    chex.assert_trees_all_equal_shapes_and_dtypes(actual, expected, custom_message=message)
    (float_a, other_a), (float_e, other_e) = _split_inexact(actual), _split_inexact(expected)
    chex.assert_trees_all_close(float_a, float_e, rtol=RTOL, atol=ATOL, custom_message=message)
    chex.assert_trees_all_equal(other_a, other_e, custom_message=message)


def _traced_once(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` under ``chex.assert_max_traces(n=1)``, counted for this contract run only.

    chex keys its trace counter by the wrapped function's source, name and definition site, so
    each run gets a fresh name.
    """

    def kernel(key, *args):
        return fn(key, *args)

    kernel.__name__ = f"contract_kernel_{next(_CONTRACT_RUNS)}"
    return chex.assert_max_traces(kernel, n=1)


def _check_with_jit(fn: Callable[..., Any], args: tuple, keys: jax.Array,
                    deterministic: bool) -> Any:
    tag = _tag(WITH_JIT)
    jitted = VARIANTS[WITH_JIT](_traced_once(fn))
    try:
        out0 = jitted(keys[0], *args)
        out0_again = jitted(keys[0], *args)
        out1 = None if deterministic else jitted(keys[1], *args)
    except AssertionError as err:
        if "is traced >" not in str(err):  # the kernel's own assertion, not the trace counter
            raise
        raise AssertionError(f"{tag} the jitted kernel retraced for a new key: {err}") from err
    chex.assert_trees_all_equal(out0, out0_again,
                                custom_message=f"{tag} same key must give the same output")
    if not deterministic:
        assert not _trees_equal(out0, out1), f"{tag} different keys should give different outputs"
    batched = VARIANTS[WITH_JIT](jax.vmap(fn, in_axes=(0,) + (None,) * len(args)))(keys, *args)
    for i, single in ((0, out0), (1, out1)):
        if single is not None:
            _assert_trees_agree(jax.tree_util.tree_map(lambda x, i=i: x[i], batched), single,
                                f"{tag} vmap over keys disagrees with a single call")
    return out0


def _check_output(variant: chex.ChexVariantType, out: Any, args: tuple, state_arg: int | None,
                  output_state: Callable[[Any], Any] | None, check_finite: bool) -> None:
    tag = _tag(variant)
    if check_finite:
        chex.assert_tree_all_finite(
            out, custom_message=f"{tag} outputs must be finite on the reference problem")
    if state_arg is not None:
        old = args[state_arg]
        new = output_state(out) if output_state is not None else out
        chex.assert_trees_all_equal_structs(old, new, custom_message=f"{tag} state pytree changed")
        chex.assert_trees_all_equal_shapes_and_dtypes(
            old, new, custom_message=f"{tag} state shape or dtype changed")


def check_kernel_contract(fn: Callable[..., Any], *args: Any, key=None, num_keys: int = 3,
                          deterministic: bool = False, state_arg: int | None = None,
                          output_state: Callable[[Any], Any] | None = None,
                          check_finite: bool = True) -> Any:
    """Check ``fn(key, *args)`` with and without ``jit``; return the jitted output (first key)."""
    key = jax.random.key(0) if key is None else key
    keys = jax.random.split(key, num_keys)
    jitted_out = _check_with_jit(fn, args, keys, deterministic)
    _check_output(WITH_JIT, jitted_out, args, state_arg, output_state, check_finite)
    eager_out = VARIANTS[WITHOUT_JIT](fn)(keys[0], *args)
    _check_output(WITHOUT_JIT, eager_out, args, state_arg, output_state, check_finite)
    _assert_trees_agree(eager_out, jitted_out,
                        f"{_tag(WITHOUT_JIT)} the eager output disagrees with the jitted one "
                        "for the same key")
    return jitted_out
