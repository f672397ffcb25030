"""Building blocks of one layer: layer norm, (chunked) self-attention, the random MLP field.

Shapes: ``N`` tokens, ``d`` dimensions, ``m`` hidden units; tokens are rows of ``x: [N, d]``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jaxpapers._src import checks, threefry
from jaxpapers._src.threefry import check_key
from jaxpapers.meanfield._config import Coefficients
from jaxpapers.meanfield._kernel import activation_fn
from jaxpapers.meanfield._validate import (
    check_coeffs,
    check_positive,
    check_tokens_array,
    nan_unless,
)

__all__ = [
    "MLPWeights",
    "attend",
    "attention",
    "layer_map",
    "layer_norm",
    "mlp_field",
    "sample_layer_weights",
    "tangent_project",
]


class MLPWeights(NamedTuple):
    """One layer's MLP weights (:func:`sample_layer_weights`), the field
    ``G(y) = W phi(U y / sqrt(d) + b_u) / sqrt(m) + b_w`` of :func:`layer_map`.

    Attributes:
      u: ``(m, d)`` input weights.
      b_u: ``(m,)`` hidden biases.
      w: ``(d, m)`` output weights.
      b_w: ``(d,)`` output biases.
    """

    u: jax.Array
    b_u: jax.Array
    w: jax.Array
    b_w: jax.Array


def layer_norm(v):
    """``LN(v) = v / |v|`` row-wise (the paper's layer norm without centring or gain)."""
    return v / jnp.linalg.norm(v, axis=-1, keepdims=True)


def tangent_project(x, v):
    """``P_x v = v - <x, v> x`` row-wise."""
    return v - jnp.sum(x * v, axis=-1, keepdims=True) * x


def sample_layer_weights(key, d: int, width: int, sigma_u=0.0, sigma_w=0.0,
                         dtype=None) -> MLPWeights:
    """Draw one layer's MLP weights: ``U, W`` i.i.d. ``N(0, 1)``, biases ``N(0, sigma^2)``.

    Args:
      key: PRNG key (one per layer; the layer map uses ``fold_in(run_key, layer)``).
      d: token dimension (positive int).
      width: hidden width ``m`` (positive int).
      sigma_u: standard deviation of the hidden biases ``b_u`` (its sign does not matter).
      sigma_w: standard deviation of the output biases ``b_w``.
      dtype: float dtype (default: the default float).

    Returns:
      :class:`MLPWeights` with ``u (m, d)``, ``b_u (m,)``, ``w (d, m)``, ``b_w (d,)``; NaN
      biases where a ``sigma`` is NaN.

    Raises:
      ValueError: a bad key, ``d`` or ``width`` not a positive int, a dtype that is not
        floating.

    >>> weights = sample_layer_weights(jax.random.key(0), d=3, width=8)
    >>> weights.u.shape, weights.w.shape, float(abs(weights.b_u).max())
    ((8, 3), (3, 8), 0.0)
    """
    check_key(key)
    d = checks.require_positive_int(d, "d")
    width = checks.require_positive_int(width, "width")
    dtype = jnp.result_type(float) if dtype is None else dtype
    checks.require(jnp.issubdtype(dtype, jnp.floating), f"dtype must be floating; got {dtype}")
    # one draw, then sliced; the same numbers as jax.random.normal, with the hash fused
    z = threefry.normal(key, (2 * width * d + width + d,), dtype)
    u, w, b_u, b_w = jnp.split(z, [width * d, 2 * width * d, 2 * width * d + width])
    return MLPWeights(u=u.reshape(width, d), b_u=sigma_u * b_u, w=w.reshape(d, width),
                      b_w=sigma_w * b_w)


def mlp_field(y, weights: MLPWeights, activation: str):
    """``G(y) = W phi(U y / sqrt(d) + b_U) / sqrt(m) + b_W`` for each row of ``y: [N, d]``."""
    phi = activation_fn(activation)
    width, d = weights.u.shape
    hidden = phi(y @ weights.u.T / jnp.sqrt(jnp.asarray(d, y.dtype)) + weights.b_u[None])
    return hidden @ weights.w.T / jnp.sqrt(jnp.asarray(width, y.dtype)) + weights.b_w[None]


def _queries_values(x, qk, value):
    q = x if qk is None else x @ qk  # <Qx, Ky> = x^T (Q^T K) y
    vals = x if value is None else x @ value.T
    return q, vals


def _dense_attention(q, keys, vals, beta):
    weights = jax.nn.softmax(beta * (q @ keys.T), axis=-1)
    return weights @ vals


def _query_blocks_in_parallel() -> bool:
    """Whether the blocked attention batches all query blocks (accelerators) or maps over them
    one at a time (CPU: at N = 16,384, d = 64, blocks of 1024, mapping was 15 % faster there,
    its ``[block, block]`` tile staying in cache; at N = 4096, blocks of 512, batching was 12 %
    faster)."""
    return jax.default_backend() != "cpu"


def _blocked_attention(q, keys, vals, beta, block: int):
    """Query blocks x key blocks (``lax.scan`` with an online softmax).

    On an accelerator the query blocks are batched (``vmap``): each scan step is one product
    over all of them, an ``[N, block]`` tile of logits (``O(N * block)`` memory), instead of a
    sequential map over query blocks that leaves most of the chip idle at large ``N``. On the
    CPU they are mapped one at a time (``[block, block]`` tiles); see
    :func:`_query_blocks_in_parallel`.
    """
    n, d = keys.shape
    pad = (-n) % block
    nb = (n + pad) // block
    qb = jnp.pad(q, ((0, pad), (0, 0))).reshape(nb, block, q.shape[1])
    kb = jnp.pad(keys, ((0, pad), (0, 0))).reshape(nb, block, d)
    vb = jnp.pad(vals, ((0, pad), (0, 0))).reshape(nb, block, vals.shape[1])
    valid = (jnp.arange(n + pad) < n).reshape(nb, block)

    def one_query_block(qblk):
        def body(carry, inputs):
            run_max, denom, numer = carry
            kblk, vblk, mask = inputs
            logits = jnp.where(mask[None, :], beta * (qblk @ kblk.T), -jnp.inf)
            new_max = jnp.maximum(run_max, jnp.max(logits, axis=-1))
            rescale = jnp.exp(run_max - new_max)
            p = jnp.exp(logits - new_max[:, None])
            return (new_max, denom * rescale + p.sum(-1),
                    numer * rescale[:, None] + p @ vblk), None

        init = (jnp.full((block,), -jnp.inf, q.dtype), jnp.zeros((block,), q.dtype),
                jnp.zeros((block, vals.shape[1]), q.dtype))
        (_, denom, numer), _ = lax.scan(body, init, (kb, vb, valid))
        return numer / denom[:, None]

    if _query_blocks_in_parallel():
        out = jax.vmap(one_query_block)(qb)
    else:
        out = lax.map(one_query_block, qb)
    return out.reshape(nb * block, vals.shape[1])[:n]


def attend(x, beta=1.0, attn_scale=1.0, qk=None, value=None, block_size: int | None = None):
    """:func:`attention` without its input checks (the simulators check once per run)."""
    q, vals = _queries_values(x, qk, value)
    if block_size is None:
        out = _dense_attention(q, x, vals, beta)
    else:
        out = _blocked_attention(q, x, vals, beta, checks.require_positive_int(block_size,
                                                                              "block_size"))
    return attn_scale * out


def attention(x, beta=1.0, attn_scale=1.0, qk=None, value=None, block_size: int | None = None):
    """Softmax self-attention of the tokens on themselves (spec §2.1).

    ``Attn(x_i) = attn_scale * sum_j softmax_j(beta x_i^T QK x_j) V x_j``.

    Args:
      x: ``[N, d]`` tokens.
      beta: inverse temperature; attn_scale: multiplier (``+1`` attractive, ``-1`` repulsive).
      qk: ``[d, d]`` matrix ``Q^T K`` or ``None`` (identity); value: ``[d, d]`` or ``None``.
      block_size: ``None`` (dense, ``O(N^2)`` memory) or a block size (``O(N * block)`` memory;
        online softmax over key blocks, so it is exact for any logits).

    Returns:
      ``[N, d]`` attention outputs (not projected). NaN in ``x`` gives NaN out.

    Raises:
      ValueError: ``x`` not a real float ``(N, d)``, ``qk``/``value`` not ``[d, d]`` (call or
        trace time); ``beta`` negative or NaN, a non-finite ``attn_scale`` or matrix (eagerly;
        under ``jit`` the output is NaN).

    >>> import jax.numpy as jnp
    >>> attention(jnp.eye(2), beta=0.0).tolist()   # beta = 0: the mean of the values
    [[0.5, 0.5], [0.5, 0.5]]
    """
    x = check_tokens_array(x)
    ok = check_coeffs(Coefficients(beta, attn_scale, 0.0, 0.0, qk, value), x.shape[1])
    return nan_unless(ok, attend(x, beta, attn_scale, qk, value, block_size))


def layer_map(x, weights: MLPWeights | None, dt, coeffs, activation: str,
              block_size: int | None = None):
    """One layer of the finite-depth model (paper §1.1, spec §4a), for explicit weights.

    ``Y = LN(X + dt Attn(X))``, then ``X' = LN(Y + sqrt(dt) G(Y))`` (``G`` omitted when
    ``weights`` is None).

    Args:
      x: ``(N, d)`` float unit tokens.
      weights: this layer's MLP weights (``u (m, d)``, ``b_u (m,)``, ``w (d, m)``,
        ``b_w (d,)``, the layout the simulators draw inside their scan), or None for attention
        only.
      dt: step ``T / L``, a finite scalar ``> 0``.
      coeffs: :class:`Coefficients`.
      activation: MLP activation name (a key of :data:`ACTIVATIONS`).
      block_size: attention block size (``None``: dense).

    Returns:
      ``(N, d)`` unit tokens after the layer, the dtype of ``x``.

    Raises:
      ValueError: ``x`` not a real float ``(N, d)``, a wrong-shaped ``coeffs`` matrix or an
        unknown activation (call or trace time); the value faults that :func:`attention` lists,
        or ``dt`` not finite and ``> 0`` (eagerly; under ``jit`` the output is NaN).
    """
    x = check_tokens_array(x)
    activation_fn(activation)
    ok = check_coeffs(coeffs, x.shape[1]) & check_positive(dt, "dt")
    attn = attend(x, coeffs.beta, coeffs.attn_scale, coeffs.qk, coeffs.value, block_size)
    y = layer_norm(x + dt * attn)
    if weights is not None:
        y = layer_norm(y + jnp.sqrt(dt) * mlp_field(y, weights, activation))
    return nan_unless(ok, y)
