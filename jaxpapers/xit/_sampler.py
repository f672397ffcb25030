"""Multi-dataset batches: which dataset each item comes from, then an item of that dataset.

A pool is stored grouped by dataset (:class:`~jaxpapers.xit.data.Pool`: dataset ``d`` holds rows
``offsets[d] : offsets[d] + counts[d]``). A batch draws every item's dataset from ``p_d`` and
then a row of that dataset uniformly, so each item carries its dataset id. The modes
(torchchronos' ``ALL_EQUAL`` / ``PROPORTIONAL_TO_SAMPLES`` and a temperature between them):

* ``"proportional"``: ``p_d ∝ n_d`` (the same as drawing rows uniformly from the whole pool);
* ``"uniform_over_datasets"``: ``p_d = 1/D``;
* ``"temperature"``: ``p_d ∝ n_d^T`` (``T = 1`` proportional, ``T = 0`` uniform).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers._src import checks
from jaxpapers._src.threefry import check_key
from jaxpapers.xit import _validate as chk

__all__ = ["SAMPLING_MODES", "dataset_probabilities", "sample_batch", "sample_rows"]

SAMPLING_MODES = ("proportional", "uniform_over_datasets", "temperature")


def dataset_probabilities(counts, mode: str = "uniform_over_datasets",
                          temperature: float = 0.5, active=None) -> np.ndarray:
    """The probability ``p_d`` of drawing each dataset of a pool.

    Modes (torchchronos' ``ALL_EQUAL`` / ``PROPORTIONAL_TO_SAMPLES`` and a temperature between
    them): ``"proportional"`` ``p_d ∝ n_d`` (rows uniform over the whole pool),
    ``"uniform_over_datasets"`` ``p_d = 1/D``, ``"temperature"`` ``p_d ∝ n_d^T`` (``T = 1``
    proportional, ``T = 0`` uniform).

    Args:
      counts: ``(D,)`` finite non-negative dataset sizes ``n_d``.
      mode: one of :data:`SAMPLING_MODES`.
      temperature: ``T >= 0`` of the ``"temperature"`` mode.
      active: optional ``(D,)`` booleans: sample only these datasets (a one-source run on the
        same pool).

    Returns:
      float64 NumPy ``(D,)`` summing to 1 (0 for inactive or empty datasets).

    Raises:
      ValueError: bad ``counts``, an unknown mode, a negative temperature, ``active`` of the
        wrong shape, or no active non-empty dataset.

    Example:
      >>> from jaxpapers.xit.data import dataset_probabilities
      >>> dataset_probabilities([10, 30], "proportional").tolist()
      [0.25, 0.75]
    """
    counts = np.asarray(counts, np.float64)
    if counts.ndim != 1 or not np.all(np.isfinite(counts)) or np.any(counts < 0):
        raise ValueError(f"counts must be a 1-D array of finite non-negative sizes; got {counts}")
    if mode not in SAMPLING_MODES:
        raise ValueError(f"sampling mode must be one of {SAMPLING_MODES}; got {mode!r}")
    if not temperature >= 0:
        raise ValueError(f"temperature must be >= 0; got {temperature}")
    active = np.ones(counts.shape, bool) if active is None else np.asarray(active, bool)
    if active.shape != counts.shape:
        raise ValueError(f"active must have one entry per dataset ({counts.size}); got "
                         f"{active.shape}")
    power = {"proportional": 1.0, "uniform_over_datasets": 0.0,
             "temperature": float(temperature)}[mode]
    weights = np.where(active & (counts > 0), counts ** power, 0.0)
    if weights.sum() <= 0:
        raise ValueError("no active, non-empty dataset to sample from")
    return weights / weights.sum()


def sample_batch(key, x, offsets, counts, log_probs, batch_size: int):
    """Draw a multi-dataset batch: each item's dataset from ``p_d``, then a row of it uniformly.

    Args:
      key: PRNG key.
      x: ``(N, ...)`` pool grouped by dataset (:class:`Pool`'s ``x``).
      offsets: integer ``(D,)`` first row of each dataset.
      counts: integer ``(D,)`` rows of each dataset.
      log_probs: float ``(D,)`` ``log p_d`` (``-inf`` for a dataset never drawn).
      batch_size: static positive int ``B``.

    Returns:
      ``(x_batch, ds_id)``: ``(B, ...)`` rows of ``x`` and their int32 ``(B,)`` dataset ids.
      Under ``jit`` an item drawn from an empty dataset, or whose row falls outside ``x``, is a
      row of NaN, and so is every item when ``log_probs`` holds NaN or ``+inf``.

    Raises:
      ValueError: ``key`` not a PRNG key, bad shapes or ``batch_size``; eagerly also bad
        ``counts``, ``offsets`` or ``log_probs``.

    Example:
      One call (the first compiles its operations)::

          import jax, jax.numpy as jnp
          from jaxpapers.xit.data import sample_batch
          x = jnp.arange(6.0)[:, None]
          xb, ds_id = sample_batch(jax.random.key(0), x, jnp.asarray([0, 4]),
                                   jnp.asarray([4, 2]), jnp.log(jnp.asarray([0.5, 0.5])), 8)
          # rows 4 and 5 are dataset 1: (xb[:, 0] >= 4) == (ds_id == 1) for every item
    """
    return sample_rows(key, x, offsets, counts, log_probs, batch_size)[:2]


def sample_rows(key, x, offsets, counts, log_probs, batch_size: int):
    """Draw ``batch_size`` rows of the grouped pool ``x`` ``[N, ...]``.

    Args:
      key: PRNG key.
      x: the pool, grouped by dataset.
      offsets, counts: int32 ``[D]`` first row and size of each dataset.
      log_probs: float ``[D]`` log ``p_d`` (``-inf`` for a dataset never drawn).
      batch_size: static.

    Returns:
      ``(x_batch [B, ...], ds_id [B] int32, row [B] int32)`` (``row``: the pool row of each
      item, clipped into ``[0, N)``). Under ``jit`` an item drawn from an empty
      dataset, or whose row falls outside ``x``, is a row of NaN, and so is every item when
      ``log_probs`` holds NaN or ``+inf`` (eagerly the bad ``counts``,
      ``offsets`` or ``log_probs`` raise ``ValueError``).
    """
    check_key(key)
    batch_size = checks.require_positive_int(batch_size, "batch_size")
    x = jnp.asarray(x)
    checks.require(x.ndim >= 1, f"x must have shape (N, ...); got {x.shape}")
    log_probs = chk.floats(log_probs, "log_probs", ndim=1)
    num_sets = log_probs.shape[0]
    offsets = chk.ints(offsets, "offsets", (num_sets,)).astype(jnp.int32)
    counts = chk.ints(counts, "counts", (num_sets,)).astype(jnp.int32)
    drawn = log_probs > -jnp.inf
    chk.all_ok((offsets, counts, drawn), "offsets and counts",  # eager check; traced: NaN rows
               lambda oc: ~oc[2] | ((oc[1] > 0) & (oc[0] >= 0)
                                    & (oc[0] + oc[1] <= x.shape[0])),
               f"such that every dataset drawn has rows inside x (0..{x.shape[0]})")
    checks.raise_if_concrete(lambda lp: jnp.any(jnp.isnan(lp) | (lp == jnp.inf))
                             | ~jnp.any(lp > -jnp.inf),
                             "log_probs must be free of NaN and +inf with one finite entry",
                             log_probs)
    key_d, key_i = jax.random.split(key)
    ds_id = jax.random.categorical(key_d, log_probs, shape=(batch_size,)).astype(jnp.int32)
    u = jax.random.uniform(key_i, (batch_size,))
    within = jnp.minimum(jnp.floor(u * counts[ds_id]).astype(jnp.int32), counts[ds_id] - 1)
    row = offsets[ds_id] + within
    probs_ok = ~jnp.any(jnp.isnan(log_probs) | (log_probs == jnp.inf)) & jnp.any(drawn)
    good = (counts[ds_id] > 0) & (row >= 0) & (row < x.shape[0]) & probs_ok
    out = x[jnp.clip(row, 0, x.shape[0] - 1)]
    if jnp.issubdtype(x.dtype, jnp.floating):
        out = jnp.where(good.reshape((-1,) + (1,) * (x.ndim - 1)), out, jnp.nan)
    return out, ds_id, jnp.clip(row, 0, x.shape[0] - 1)
