"""The apprentice: a fully convolutional policy (+ value) network, its policy distribution and
its imitation loss.

The paper's architecture figure was not recovered (spec Sec. 4); we use a fully convolutional
trunk of 3x3 convolutions (optionally residual blocks), a 1x1-convolution policy head giving one
logit per cell and a value head (1x1 convolution, global average, dense, one logit). With no
dense layer over the board the same parameters run on any board size.

The policy is a ``distrax.Categorical`` over the legal cells (:func:`policy_distribution`):
self-play and REINFORCE sample it, the losses score it. distrax is imported on first use.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers._src import checks
from jaxpapers._src.checks import require_positive_int_field
from jaxpapers._src.optional import distrax

__all__ = ["ApprenticeConfig", "make_apprentice", "policy_distribution", "imitation_loss",
           "network_evaluator"]

ILLEGAL_LOGIT = -1e9  # never -inf: 0 * -inf would be NaN in a cross-entropy


def masked_policy(logits, legal, temperature=1.0):
    """:func:`policy_distribution` without its checks (the drivers' hot loops; a row without a
    legal move is uniform there and is never used)."""
    masked = jnp.where(legal, logits / temperature, ILLEGAL_LOGIT)
    return distrax().Categorical(logits=masked)


def _check_policy_arrays(logits, legal):
    logits, legal = jnp.asarray(logits), jnp.asarray(legal)
    checks.require(jnp.issubdtype(logits.dtype, jnp.floating),
                   f"logits must be a real float array; got {logits.dtype}")
    checks.require(legal.dtype == jnp.bool_, f"legal must be a bool mask; got {legal.dtype}")
    checks.require(logits.ndim >= 1 and legal.shape == logits.shape,
                   f"legal must have the shape of logits [..., A] {logits.shape}; got "
                   f"{legal.shape}")
    return logits, legal


def _temperature_ok(temperature, name: str = "temperature"):
    """A concrete temperature must be finite and > 0 (``ValueError``); a traced one gives the
    ``bool[]`` of that test."""
    if checks.is_concrete(temperature):
        value = np.asarray(temperature)
        checks.require(value.ndim == 0 and np.isreal(value) and value.dtype != np.bool_,
                       f"{name} must be a real number; got {temperature!r}")
        v = float(value)
        checks.require(math.isfinite(v) and v > 0, f"{name} must be finite and > 0; got {v}")
        return jnp.bool_(True)
    temperature = jnp.asarray(temperature)
    return jnp.isfinite(temperature) & (temperature > 0)


def policy_distribution(logits, legal, temperature: float = 1.0):
    """``distrax.Categorical`` over cells with the illegal ones masked (logit ``-1e9``).

    Args:
      logits: ``float32[..., A]`` raw logits.
      legal: ``bool[..., A]``.
      temperature: divides the legal logits (``< 1`` sharpens); finite and ``> 0``.

    Returns:
      a ``distrax.Categorical`` with batch shape ``[...]`` over ``A`` cells (its ``logits``
      are normalised log-probabilities, ``-1e9``-ish on illegal cells).

    Raises:
      ValueError: shapes or dtypes (call or trace time); a concrete temperature not finite and
        > 0; eagerly, a row without a legal move or with a non-finite logit. Under ``jit`` such
        a row (or every row, for a bad traced temperature) has NaN logits and log-probabilities:
        never a uniform draw over illegal cells.

    >>> import jax.numpy as jnp
    >>> dist = policy_distribution(jnp.zeros(3), jnp.array([True, False, True]))
    >>> dist.probs
    Array([0.5, 0. , 0.5], dtype=float32)
    """
    logits, legal = _check_policy_arrays(logits, legal)
    ok = _temperature_ok(temperature)
    checks.raise_if_concrete(lambda m: ~jnp.any(m, axis=-1),
                             "legal: a row has no legal move (the position is finished)", legal)
    checks.raise_if_concrete(lambda x: ~jnp.all(jnp.isfinite(x)), "logits must be finite",
                             logits)
    ok = ok & jnp.any(legal, axis=-1) & jnp.all(jnp.isfinite(logits), axis=-1)
    # normalised first, NaN applied last: a NaN put into the logits before the softmax came out
    # as finite garbage under jit on the CPU (XLA, jax 0.10). The distribution's logits and
    # log-probabilities of a bad row are then NaN; its .probs (a softmax of NaN) can still
    # read finite there under jit on the CPU, so test .logits
    masked = jax.nn.log_softmax(jnp.where(legal, logits / temperature, ILLEGAL_LOGIT), axis=-1)
    return distrax().Categorical(logits=jnp.where(ok[..., None], masked, jnp.nan))


@dataclasses.dataclass(frozen=True)
class ApprenticeConfig:
    """Size of the apprentice network.

    Attributes:
      channels: feature maps of every 3x3 convolution.
      depth: 3x3 convolutions of the trunk (``residual``: residual blocks of two convolutions).
      residual: residual blocks (with layer norm) instead of a plain stack.
      value_hidden: width of the value head's dense layer.

    Raises:
      ValueError: ``channels``, ``depth`` or ``value_hidden`` not a positive int.
    """

    channels: int = 32
    depth: int = 3
    residual: bool = False
    value_hidden: int = 64

    def __post_init__(self):
        for name in ("channels", "depth", "value_hidden"):
            require_positive_int_field("ApprenticeConfig", name, getattr(self, name))


def make_apprentice(config: ApprenticeConfig = ApprenticeConfig()):
    """The apprentice network as a Flax module.

    Args:
      config: :class:`ApprenticeConfig`.

    Returns:
      a ``flax.linen.Module`` mapping ``features float32[..., n, n, C]`` (``hex.features``) to
      ``(logits float32[..., n * n], value_logit float32[...])``; ``value_logit`` is the logit
      of the probability that the player to move wins. Fully convolutional: the same
      parameters run on any board size.

    Raises:
      ValueError: ``config`` is not an :class:`ApprenticeConfig`.
    """
    if not isinstance(config, ApprenticeConfig):
        raise ValueError(f"config must be an ApprenticeConfig; got {type(config).__name__}")
    return _make_apprentice(config)


@functools.lru_cache(maxsize=32)
def _make_apprentice(config: ApprenticeConfig):
    import flax.linen as nn

    class Apprentice(nn.Module):
        channels: int
        depth: int
        residual: bool
        value_hidden: int

        @nn.compact
        def __call__(self, x):
            batch_shape, (n, m, c) = x.shape[:-3], x.shape[-3:]
            h = x.reshape((-1, n, m, c))
            if self.residual:
                h = nn.Conv(self.channels, (3, 3))(h)
                for _ in range(self.depth):
                    y = nn.relu(nn.LayerNorm()(h))
                    y = nn.Conv(self.channels, (3, 3))(y)
                    y = nn.relu(nn.LayerNorm()(y))
                    h = h + nn.Conv(self.channels, (3, 3))(y)
                h = nn.relu(nn.LayerNorm()(h))
            else:
                for _ in range(self.depth):
                    h = nn.relu(nn.Conv(self.channels, (3, 3))(h))
            logits = nn.Conv(1, (1, 1))(h).reshape(h.shape[0], n * m)
            v = nn.relu(nn.Conv(self.channels, (1, 1))(h)).mean(axis=(1, 2))
            v = nn.Dense(1)(nn.relu(nn.Dense(self.value_hidden)(v)))[:, 0]
            return logits.reshape(batch_shape + (n * m,)), v.reshape(batch_shape)

    return Apprentice(config.channels, config.depth, config.residual, config.value_hidden)


def network_evaluator(module):
    """The search's evaluator backed by an apprentice module.

    Args:
      module: the apprentice (:func:`make_apprentice`).

    Returns:
      ``evaluate(params, state) -> (logits float32[n * n], value float32[])``: the policy
      logits and ``2 sigmoid(value_logit) - 1``, the value in ``[-1, 1]`` for the player to
      move.

    Raises:
      ValueError: (from the returned function) a ``state`` that is not a ``hex.State``.
    """
    from jaxpapers.expert_iteration import hex

    def evaluate(params: Any, state):
        checks.require(isinstance(state, hex.State),
                       f"state must be a hex.State (hex.init); got {type(state).__name__}")
        logits, value_logit = module.apply(params, hex.features(state))
        return logits, jnp.tanh(0.5 * value_logit)

    return evaluate


def imitation_loss(logits, value_logit, legal, target, value_target, weight=None,
                   value_loss_weight: float = 1.0):
    """The apprentice's imitation loss, averaged over a batch.

    ``-sum_a target_a log pi(a|s)`` (TPT, or CAT with a one-hot target) plus
    ``value_loss_weight`` times the binary cross-entropy of the value.

    Args:
      logits, value_logit: the network's outputs ``[B, A]``, ``[B]``.
      legal: ``bool[B, A]``.
      target: ``float32[B, A]``, rows summing to 1 over legal cells.
      value_target: ``float32[B]`` in ``{0, 1}``: did the player to move win.
      weight: optional ``float32[B]`` (0 for padding rows).
      value_loss_weight: 0 trains the policy only.

    Returns:
      ``(loss, (policy_loss, value_loss))``, each ``float32[]`` (weighted means).

    Raises:
      ValueError: shapes or dtypes (call or trace time); eagerly, non-finite inputs, a target
        that is negative or puts mass on an illegal cell, a value target outside ``[0, 1]``, a
        negative weight. Under ``jit`` those make the losses NaN.
    """

    logits, legal = _check_policy_arrays(logits, legal)
    checks.require(logits.ndim == 2, f"logits must be [B, A]; got shape {logits.shape}")
    b, a = logits.shape
    target = jnp.asarray(target)
    checks.require(target.shape == (b, a), f"target must have shape [B, A] = {(b, a)} (that of "
                                           f"logits); got {target.shape}")
    arrays = {"target": target}
    for name, value in (("value_logit", value_logit), ("value_target", value_target),
                        ("weight", weight)):
        if value is None:
            continue
        value = jnp.asarray(value)
        checks.require(value.shape == (b,), f"{name} must have shape [B] = ({b},); got "
                                            f"{value.shape}")
        arrays[name] = value
    for name, value in arrays.items():
        checks.require(jnp.issubdtype(value.dtype, jnp.floating),
                       f"{name} must be a real float array; got {value.dtype}")
    value_logit, value_target = arrays["value_logit"], arrays["value_target"]
    faults = {
        "logits and value_logit must be finite":
            lambda: ~jnp.all(jnp.isfinite(logits)) | ~jnp.all(jnp.isfinite(value_logit)),
        "target must be finite, >= 0 and zero on illegal cells":
            lambda: ~jnp.all(jnp.isfinite(target) & (target >= 0) & (legal | (target == 0))),
        "value_target must lie in [0, 1]":
            lambda: ~jnp.all((value_target >= 0) & (value_target <= 1)),
        "weight must be finite and >= 0":
            lambda: (~jnp.all(jnp.isfinite(arrays["weight"]) & (arrays["weight"] >= 0))
                     if weight is not None else jnp.bool_(False)),
    }
    ok = jnp.bool_(True)
    for message, fault in faults.items():
        bad = fault()
        checks.raise_if_concrete(lambda f: f, message, bad)
        ok &= ~bad
    loss, (policy_loss, value_loss) = _imitation_loss(
        logits, value_logit, legal, target, value_target, arrays.get("weight"),
        value_loss_weight)
    nan = lambda v: jnp.where(ok, v, jnp.nan)  # noqa: E731
    return nan(loss), (nan(policy_loss), nan(value_loss))


def _imitation_loss(logits, value_logit, legal, target, value_target, weight, value_loss_weight):
    import optax

    log_probs = masked_policy(logits, legal).logits
    policy = -jnp.sum(jnp.where(target > 0, target * log_probs, 0.0), axis=-1)
    value = optax.sigmoid_binary_cross_entropy(value_logit, value_target)
    weight = jnp.ones_like(policy) if weight is None else weight
    total = jnp.maximum(jnp.sum(weight), 1e-6)
    policy_loss = jnp.sum(weight * policy) / total
    value_loss = jnp.sum(weight * value) / total
    return policy_loss + value_loss_weight * value_loss, (policy_loss, value_loss)
