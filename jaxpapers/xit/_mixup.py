"""XD-MixUp: blend each series of a multi-dataset batch with a partner from another dataset.

``lam ~ Beta(alpha, alpha)``, alpha = 0.2 by default (Wickstrom et al.'s and aeon TimeMCL's
value; the paper's could not be read, so it is a config value).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxpapers._src.optional import distrax
from jaxpapers._src.threefry import check_key
from jaxpapers.xit import _validate as chk

__all__ = ["xd_permutation", "xd_mixup"]


def xd_permutation(key, ds_id, cross_dataset: bool = True):
    """A random partner permutation ``perm [B] int32`` that avoids same-dataset partners (see
    the module docstring); ``cross_dataset=False``: a uniformly random permutation."""
    batch = ds_id.shape[0]
    key_rank, key_order = jax.random.split(key)
    if not cross_dataset:
        return jax.random.permutation(key_order, batch).astype(jnp.int32)
    # a random rank per dataset: the noise of the first item carrying its id
    id_noise = jax.random.uniform(key_rank, (batch,))
    # items of the same dataset must share the rank: use the noise of the first item with the id
    first = jnp.argmax(ds_id[None, :] == ds_id[:, None], axis=1)
    rank = id_noise[first]
    within = jax.random.uniform(key_order, (batch,))
    order = jnp.lexsort((within, rank))  # grouped by dataset, random inside and across groups
    same = ds_id[:, None] == ds_id[None, :]
    n_max = jnp.max(jnp.sum(same, axis=1))
    partner_sorted = order[(jnp.arange(batch) + n_max) % batch]
    perm = jnp.zeros(batch, jnp.int32).at[order].set(partner_sorted.astype(jnp.int32))
    return perm


def xd_mixup(key, x, ds_id, alpha, per_sample: bool = True, cross_dataset: bool = True):
    """XD-MixUp: blend each series of a batch with a partner from another dataset.

    ``x_mix[i] = lam[i] x[i] + (1 - lam[i]) x[perm[i]]`` with ``lam ~ Beta(alpha, alpha)``
    (``distrax.Beta``). Partners are chosen so that no partner shares its dataset whenever
    the largest dataset fills at most half the batch (otherwise as few as possible do): the
    batch is grouped by dataset in a random order and item ``p`` is paired with item ``p +
    n_max`` cyclically, ``n_max`` being the largest dataset count.

    Args:
      key: PRNG key.
      x: float ``(B, ...)`` batch, ``B >= 1``.
      ds_id: integer ``(B,)`` dataset id of each series.
      alpha: Beta parameter, finite and > 0 (may be traced).
      per_sample: one ``lam`` per series (False: one per batch, as TimeMCL does).
      cross_dataset: partners from other datasets (False: a uniformly random permutation).

    Returns:
      ``(x_mix, perm, lam)``: ``x_mix`` of the shape and dtype of ``x``, ``perm`` int32
      ``(B,)`` (always a permutation), ``lam`` ``(B,)`` of the dtype of ``x``. Under ``jit`` a
      bad ``alpha`` gives NaN ``x_mix`` and ``lam``; NaN in ``x`` gives NaN in the rows that
      mix it.

    Raises:
      ValueError: ``key`` not a PRNG key, ``x`` not floating with ``B >= 1`` rows, ``ds_id``
        not integer ``(B,)``; eagerly also a bad ``alpha``.

    Example:
      One call (the first compiles its operations)::

          import jax, jax.numpy as jnp
          from jaxpapers.xit import xd_mixup
          ds_id = jnp.asarray([0, 0, 1, 1])
          x_mix, perm, lam = xd_mixup(jax.random.key(0), jnp.ones((4, 1, 8)), ds_id, 0.2)
          # no partner shares its dataset: ds_id[perm] == [1, 1, 0, 0] in some order
    """
    check_key(key)
    x = chk.floats(x, "x")
    if x.ndim < 1 or x.shape[0] < 1:
        raise ValueError(f"x must have shape (B, ...) with B >= 1; got {x.shape}")
    batch = x.shape[0]
    ds_id = chk.ints(ds_id, "ds_id", (batch,))
    alpha_ok = chk.scalar_ok(alpha, "alpha", lambda a: jnp.isfinite(a) & (a > 0),
                             "finite and > 0")
    key_perm, key_lam = jax.random.split(key)
    perm = xd_permutation(key_perm, ds_id, cross_dataset)
    alpha = jnp.asarray(alpha, jnp.float32)
    beta = distrax().Beta(alpha, alpha)
    lam = beta.sample(seed=key_lam, sample_shape=(batch if per_sample else 1,))
    lam = chk.nan_unless(alpha_ok, jnp.broadcast_to(lam, (batch,)).astype(x.dtype))
    lam_b = lam.reshape((batch,) + (1,) * (x.ndim - 1))
    x_mix = lam_b * x + (1.0 - lam_b) * x[perm]
    return x_mix, perm, lam
