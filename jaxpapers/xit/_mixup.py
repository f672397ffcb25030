"""XD-MixUp: blend each series of a multi-dataset batch with a partner from another dataset.

``x_mix[i] = lam[i] * x[i] + (1 - lam[i]) * x[perm[i]]`` with ``lam ~ Beta(alpha, alpha)``
(a ``distrax.Beta``; alpha = 0.2 by default, the value of Wickstrom et al. and aeon's TimeMCL --
the paper's value could not be read, so it is a config value). One ``lam`` per series, or one
per batch (``per_sample=False``, as TimeMCL does).

Partners (:func:`xd_permutation`): the batch is sorted by (random dataset rank, random key) so
every dataset occupies one contiguous block, and item ``p`` of that order is paired with item
``p + n_max`` (cyclically), ``n_max`` being the largest dataset count in the batch. No partner
shares its dataset whenever ``n_max <= B / 2``; otherwise only ``2 n_max - B`` items of the
dominant dataset do, the fewest possible. The result is always a permutation.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

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
    """Cross-dataset mixup of a batch ``x [B, ...]`` with dataset ids ``ds_id [B]``.

    Returns ``(x_mix, perm, lam)``: ``x_mix = lam x + (1 - lam) x[perm]`` (``lam`` broadcast over
    the trailing axes), ``perm [B] int32``, ``lam [B]`` float32 drawn from
    ``distrax.Beta(alpha, alpha)``. ``x`` must be floating with ``B >= 1`` rows, ``ds_id`` an
    integer ``[B]`` array and ``alpha`` finite and > 0: eagerly a bad ``alpha`` raises
    ``ValueError``; under ``jit`` ``x_mix`` and ``lam`` are then NaN. NaN in ``x`` gives NaN in
    the rows that mix it.
    """
    import distrax

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
    beta = distrax.Beta(alpha, alpha)
    lam = beta.sample(seed=key_lam, sample_shape=(batch if per_sample else 1,))
    lam = chk.nan_unless(alpha_ok, jnp.broadcast_to(lam, (batch,)).astype(x.dtype))
    lam_b = lam.reshape((batch,) + (1,) * (x.ndim - 1))
    x_mix = lam_b * x + (1.0 - lam_b) * x[perm]
    return x_mix, perm, lam
