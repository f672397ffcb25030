"""Flax denoisers and time-conditioned discriminators for low-dimensional data and 8x8 images.

* :class:`TimeMLP` -- an MLP on ``(x [B, D], level t [B], label y [B])`` with a sinusoidal level
  embedding and an optional label embedding (label ``num_classes`` is the null label used for
  classifier-free guidance). ``out_features=None`` predicts epsilon (same width as ``x``);
  ``out_features=1`` is a discriminator logit.
* :class:`ConvDenoiser` -- a two-resolution conv net for ``[B, H, W, C]`` images (8x8 digits,
  32x32 shapes), the same conditioning.
* :class:`ConvDiscriminator` -- a small noise-conditioned conv classifier giving one logit.

``eps_fn_from`` / ``logit_fn_from`` turn ``(module, params)`` into the plain functions the
samplers and potentials take.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax.numpy as jnp

__all__ = ["timestep_embedding", "TimeMLP", "ConvDenoiser", "ConvDiscriminator", "eps_fn_from",
           "logit_fn_from"]


def timestep_embedding(t, dim: int, max_period: float = 1000.0):
    """Sinusoidal embedding ``[B, dim]`` of (possibly fractional) levels ``t [B]``."""
    half = dim // 2
    freqs = jnp.exp(-math.log(max_period) * jnp.arange(half, dtype=jnp.float32) / half)
    args = jnp.asarray(t, jnp.float32)[:, None] * freqs[None, :]
    return jnp.concatenate([jnp.sin(args), jnp.cos(args)], axis=-1)


class _Conditioning(nn.Module):
    features: int
    num_classes: int = 0

    @nn.compact
    def __call__(self, t, y):
        emb = nn.Dense(self.features)(timestep_embedding(t, self.features))
        if self.num_classes:
            labels = jnp.full(t.shape, self.num_classes, jnp.int32) if y is None else y
            emb = emb + nn.Embed(self.num_classes + 1, self.features)(labels)
        return nn.silu(emb)


class TimeMLP(nn.Module):
    """Level- (and label-) conditioned MLP: an epsilon-predictor or a discriminator.

    Called as ``module.apply(params, x, t, y=None)`` with ``x (B, D)`` float, ``t (B,)`` int or
    float levels and ``y (B,)`` int labels or None (label ``num_classes`` is the null label);
    returns ``(B, D)`` (``out_features=None``) or ``(B, out_features)`` float32. The last layer
    starts at zero, so an untrained denoiser predicts ``eps = 0``.

    Attributes:
      features: hidden width.
      depth: number of hidden layers.
      num_classes: number of labels (0: unconditional).
      out_features: output width, or None for the width of ``x``.
    """

    features: int = 128
    depth: int = 3
    num_classes: int = 0
    out_features: int | None = None

    @nn.compact
    def __call__(self, x, t, y=None):
        emb = _Conditioning(self.features, self.num_classes)(t, y)
        h = nn.silu(nn.Dense(self.features)(jnp.concatenate([x, emb], axis=-1)))
        for _ in range(self.depth - 1):
            h = nn.silu(nn.Dense(self.features)(h))
        out = self.out_features or x.shape[-1]
        return nn.Dense(out, kernel_init=nn.initializers.zeros)(h)


class _ResBlock(nn.Module):
    channels: int

    @nn.compact
    def __call__(self, h, emb):
        r = nn.Conv(self.channels, (3, 3))(nn.silu(nn.GroupNorm(num_groups=8)(h)))
        r = r + nn.Dense(self.channels)(emb)[:, None, None, :]
        r = nn.Conv(self.channels, (3, 3))(nn.silu(nn.GroupNorm(num_groups=8)(r)))
        if h.shape[-1] != self.channels:
            h = nn.Conv(self.channels, (1, 1))(h)
        return h + r


class ConvDenoiser(nn.Module):
    """Small two-level U-Net epsilon-predictor for images.

    Called as ``module.apply(params, x, t, y=None)`` with ``x (B, H, W, C)`` float (``H``, ``W``
    even), ``t (B,)`` levels and ``y (B,)`` int labels or None; returns ``(B, H, W, C)``
    float32.

    Attributes:
      channels: channels at the top resolution (twice as many at the lower one); a multiple
        of 8 (group normalisation).
      num_classes: number of labels (0: unconditional).
    """

    channels: int = 32
    num_classes: int = 0

    @nn.compact
    def __call__(self, x, t, y=None):
        emb = _Conditioning(4 * self.channels, self.num_classes)(t, y)
        h0 = nn.Conv(self.channels, (3, 3))(x)
        h1 = _ResBlock(self.channels)(h0, emb)
        h2 = nn.Conv(2 * self.channels, (3, 3), strides=(2, 2))(h1)
        h2 = _ResBlock(2 * self.channels)(h2, emb)
        h2 = _ResBlock(2 * self.channels)(h2, emb)
        up = jnp.repeat(jnp.repeat(h2, 2, axis=1), 2, axis=2)
        h = _ResBlock(self.channels)(jnp.concatenate([up, h1], axis=-1), emb)
        h = nn.silu(nn.GroupNorm(num_groups=8)(h))
        return nn.Conv(x.shape[-1], (3, 3), kernel_init=nn.initializers.zeros)(h)


class ConvDiscriminator(nn.Module):
    """Noise-level-conditioned conv classifier.

    Called as ``module.apply(params, x, t, y=None)`` with ``x (B, H, W, C)`` float, ``t (B,)``
    levels and ``y (B,)`` int labels or None; returns the logit ``(B, 1)`` float32.

    Attributes:
      channels: channels at the top resolution; a multiple of 8 (group normalisation).
      num_classes: number of labels (0: unconditional).
    """

    channels: int = 32
    num_classes: int = 0

    @nn.compact
    def __call__(self, x, t, y=None):
        emb = _Conditioning(2 * self.channels, self.num_classes)(t, y)
        h = nn.Conv(self.channels, (3, 3))(x)
        h = _ResBlock(self.channels)(h, emb)
        h = nn.Conv(2 * self.channels, (3, 3), strides=(2, 2))(h)
        h = _ResBlock(2 * self.channels)(h, emb)
        h = jnp.mean(nn.silu(h), axis=(1, 2))
        return nn.Dense(1)(h)


def eps_fn_from(module: nn.Module, params):
    """The epsilon-predictor of a Flax denoiser and its parameters, as a plain function.

    Args:
      module: a Flax module ``(x, t, y) -> eps`` (:class:`TimeMLP`, :class:`ConvDenoiser`).
      params: its parameters.

    Returns:
      ``eps_fn(x (B, ...), t (B,), y (B,) | None) -> (B, ...)``, ``module.apply`` closed over
      ``params`` (faults surface when it is called).
    """

    def eps_fn(x, t, y=None):
        return module.apply(params, x, t, y)

    return eps_fn


def logit_fn_from(module: nn.Module, params):
    """The logit of a Flax discriminator and its parameters, as a plain function.

    Args:
      module: a Flax module ``(x, t, y) -> (B, 1)`` logits (:class:`ConvDiscriminator`,
        :class:`TimeMLP` with ``out_features=1``).
      params: its parameters.

    Returns:
      ``logit_fn(x (B, ...), t (B,), y (B,) | None) -> (B,)`` (faults surface when it is
      called).
    """

    def logit_fn(x, t, y=None):
        return module.apply(params, x, t, y)[..., 0]

    return logit_fn
