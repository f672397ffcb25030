"""Checks and settings shared by the acquisition maximiser and its Newton refinement."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from jaxpapers._src import checks

__all__ = ["OptimizerConfig", "as_optimizer_config", "check_floats", "check_masks",
           "nan_for_bad_sets"]


def check_masks(masks, name: str = "masks", shape: tuple | None = None):
    """``masks`` as a floating array of ``shape`` (default ``(m, d)``), else ``ValueError``.

    Eagerly, entries other than 0 and 1 raise; under ``jit`` they pass through (a NaN mask
    gives NaN values, documented by the callers)."""
    masks = jnp.asarray(masks)
    if shape is None:
        checks.require(masks.ndim == 2 and masks.shape[0] > 0 and masks.shape[1] > 0,
                       f"{name} must have shape (m, d); got {masks.shape}")
    else:
        checks.require(masks.shape == shape, f"{name} must have shape {shape}; got {masks.shape}")
    checks.require(jnp.issubdtype(masks.dtype, jnp.floating),
                   f"{name} must be a floating 0/1 array; got dtype {masks.dtype}")
    checks.raise_if_concrete(lambda a: ~jnp.all((a == 0) | (a == 1)),
                             f"{name} must hold only 0 and 1; got {masks}", masks)
    return masks


def check_floats(a, name: str, shape: tuple):
    """``a`` as a floating array of ``shape`` (``None`` entries: any size), else ``ValueError``.
    Eagerly NaN/inf raise; under ``jit`` they give NaN results (documented by the callers)."""
    a = jnp.asarray(a)
    checks.require(a.ndim == len(shape) and all(s is None or s == t
                                                for s, t in zip(shape, a.shape, strict=True)),
                   f"{name} must have shape {tuple('n' if s is None else s for s in shape)}; "
                   f"got {a.shape}")
    checks.require(jnp.issubdtype(a.dtype, jnp.floating),
                   f"{name} must be floating; got dtype {a.dtype}")
    checks.raise_if_concrete(lambda v: ~jnp.all(jnp.isfinite(v)), f"{name} must be finite",
                             a)
    return a


def nan_for_bad_sets(masks, value):
    """``value [m, ...]`` with NaN for the sets whose mask row is not finite or whose value is
    ``-inf`` (``value_fn`` NaN at every candidate): such a set can never be selected."""
    bad = ~jnp.all(jnp.isfinite(masks), axis=1)
    bad = bad.reshape(bad.shape + (1,) * (value.ndim - 1))
    return jnp.where(bad | (value == -jnp.inf), jnp.nan, value)


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    """Static settings of :func:`maximize_per_control_set`.

    Attributes:
      num_raw: uniform candidates scored per control set.
      num_restarts: best candidates refined by ascent (``<= num_raw``).
      num_steps: ``"adam"``: Adam steps in logit space (``x = sigmoid(z)``); ``"newton"``: the
        most Newton iterations (it stops earlier once converged); 0 = random search only.
      learning_rate: initial Adam step size in logit space (cosine-decayed to 0; Adam only).
      batch_size: candidates scored at once per set while scoring (bounds memory).
      method: ``"adam"`` (first-order ascent in logit space, any ``value_fn``) or ``"newton"``
        (projected trust-region Newton in the box, see :func:`jaxpapers.bocvs.newton_refine`;
        it converges to the local maximum, bounds included, in a few iterations).
      coarse_samples: with the SE kernel's closed form (``maximize_expected_ucb``, or
        ``BOConfig(kernel="se")`` with a UCB acquisition): score candidates, and converge
        Newton first, on the first ``coarse_samples`` rows of ``W`` only, then finish on all of
        them; 0 = all rows throughout. Ignored by the generic path.
      finish_restarts: with ``coarse_samples``, only this many of every set's restarts, the best
        by the coarse value, are finished on all rows (0 = all of them).

    Raises:
      ValueError: a field out of range (sizes not positive ints, ``num_restarts > num_raw``, a
        negative count, ``learning_rate <= 0``, an unknown ``method``), on construction.

    >>> OptimizerConfig(num_raw=64, num_restarts=4, method="newton").num_steps
    200
    """

    num_raw: int = 1024
    num_restarts: int = 32
    num_steps: int = 200
    learning_rate: float = 0.1
    batch_size: int = 64
    method: str = "adam"
    coarse_samples: int = 0
    finish_restarts: int = 0

    def __post_init__(self):
        for name in ("num_raw", "num_restarts", "batch_size"):
            checks.require_positive_int(getattr(self, name), name)
        checks.require(self.num_restarts <= self.num_raw,
                       f"num_restarts ({self.num_restarts}) must be <= num_raw ({self.num_raw})")
        checks.require(isinstance(self.num_steps, int) and self.num_steps >= 0,
                       f"num_steps must be a non-negative int; got {self.num_steps!r}")
        checks.require(self.learning_rate > 0,
                       f"learning_rate must be > 0; got {self.learning_rate}")
        checks.require(isinstance(self.coarse_samples, int) and self.coarse_samples >= 0,
                       f"coarse_samples must be a non-negative int; got {self.coarse_samples!r}")
        checks.require(isinstance(self.finish_restarts, int) and self.finish_restarts >= 0,
                       f"finish_restarts must be a non-negative int; got {self.finish_restarts!r}")
        checks.require(self.method in ("adam", "newton"),
                       f"method must be 'adam' or 'newton'; got {self.method!r}")

    def replace(self, **changes) -> OptimizerConfig:
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)


def as_optimizer_config(config) -> OptimizerConfig:
    """``config`` if it is an :class:`OptimizerConfig`, else ``ValueError``."""
    checks.require(isinstance(config, OptimizerConfig),
                   f"config must be an OptimizerConfig; got {type(config).__name__}")
    return config
