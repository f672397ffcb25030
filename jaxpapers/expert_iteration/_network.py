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
import importlib
import sys
import warnings
from typing import Any

import jax
import jax.numpy as jnp

__all__ = ["ApprenticeConfig", "make_apprentice", "policy_distribution", "imitation_loss",
           "network_evaluator"]

ILLEGAL_LOGIT = -1e9  # never -inf: 0 * -inf would be NaN in a cross-entropy


def _distrax():
    """distrax, imported on first use (it loads TensorFlow Probability's JAX substrate)."""
    if "distrax" not in sys.modules:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "jax.core.pytype_aval_mappings is deprecated",
                                    DeprecationWarning)
            importlib.import_module("distrax")
    return sys.modules["distrax"]


def policy_distribution(logits, legal, temperature: float = 1.0):
    """``distrax.Categorical`` over cells with the illegal ones masked (logit ``-1e9``).

    Args:
      logits: ``float32[..., A]`` raw logits.
      legal: ``bool[..., A]``.
      temperature: divides the legal logits (``< 1`` sharpens).
    """
    masked = jnp.where(legal, logits / temperature, ILLEGAL_LOGIT)
    return _distrax().Categorical(logits=masked)


@dataclasses.dataclass(frozen=True)
class ApprenticeConfig:
    """Size of the apprentice network.

    Attributes:
      channels: feature maps of every 3x3 convolution.
      depth: 3x3 convolutions of the trunk (``residual``: residual blocks of two convolutions).
      residual: residual blocks (with layer norm) instead of a plain stack.
      value_hidden: width of the value head's dense layer.
    """

    channels: int = 32
    depth: int = 3
    residual: bool = False
    value_hidden: int = 64

    def __post_init__(self):
        for name in ("channels", "depth", "value_hidden"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"ApprenticeConfig.{name} must be a positive int; got "
                                 f"{value!r}")


@functools.lru_cache(maxsize=32)
def make_apprentice(config: ApprenticeConfig = ApprenticeConfig()):
    """The Flax module ``(features [..., n, n, C]) -> (logits [..., n*n], value_logit [...])``.

    ``value_logit`` is the logit of the probability that the player to move wins.
    """
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
    """An :data:`~jaxpapers.expert_iteration.Evaluator` from an apprentice module: the policy
    logits and ``2 sigmoid(value_logit) - 1``, the value in ``[-1, 1]`` for the player to move."""
    from jaxpapers.expert_iteration import hex

    def evaluate(params: Any, state):
        logits, value_logit = module.apply(params, hex.features(state))
        return logits, jnp.tanh(0.5 * value_logit)

    return evaluate


def imitation_loss(logits, value_logit, legal, target, value_target, weight=None,
                   value_loss_weight: float = 1.0):
    """Mean apprentice loss over a batch: ``-sum_a target_a log pi(a|s)`` (TPT, or CAT with a
    one-hot target) plus ``value_loss_weight`` times the binary cross-entropy of the value.

    Args:
      logits, value_logit: the network's outputs ``[B, A]``, ``[B]``.
      legal: ``bool[B, A]``.
      target: ``float32[B, A]``, rows summing to 1 over legal cells.
      value_target: ``float32[B]`` in ``{0, 1}``: did the player to move win.
      weight: optional ``float32[B]`` (0 for padding rows).
      value_loss_weight: 0 trains the policy only.

    Returns:
      ``(loss, (policy_loss, value_loss))`` (weighted means).
    """
    import optax

    log_probs = policy_distribution(logits, legal).logits
    policy = -jnp.sum(jnp.where(target > 0, target * log_probs, 0.0), axis=-1)
    value = optax.sigmoid_binary_cross_entropy(value_logit, value_target)
    weight = jnp.ones_like(policy) if weight is None else weight
    total = jnp.maximum(jnp.sum(weight), 1e-6)
    policy_loss = jnp.sum(weight * policy) / total
    value_loss = jnp.sum(weight * value) / total
    return policy_loss + value_loss_weight * value_loss, (policy_loss, value_loss)


def num_parameters(params: Any) -> int:
    return int(sum(x.size for x in jax.tree_util.tree_leaves(params)))
