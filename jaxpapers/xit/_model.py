"""The TS-TCC model in Flax: encoder, temporal-contrasting transformer, predictors, projection
head, and the classifier used for fine-tuning.

Series are ``(B, C, L)`` (channels first, as the reference); the encoder returns ``(B, T', 128)``
(time major, channels last).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["Conv1D", "Encoder", "ContextTransformer", "TemporalContrast", "Classifier",
           "encoder_length"]


def _max_pool(h):
    """MaxPool1d(kernel 2, stride 2, padding 1) on ``[B, L, C]`` as a reshape and a max (the
    same values as ``nn.max_pool``; a cheaper backward pass on XLA:CPU)."""
    n = h.shape[1]
    out = (n + 2) // 2
    h = jnp.pad(h, ((0, 0), (1, 1), (0, 0)), constant_values=-jnp.inf)[:, :2 * out]
    return h.reshape(h.shape[0], out, 2, h.shape[2]).max(axis=2)


class Conv1D(nn.Module):
    """A 1-D convolution without bias, ``[B, L, C_in] -> [B, L_out, features]``, computed as
    one matmul of the ``kernel``-wide patches (im2col). Its parameter is ``kernel [k, C_in,
    features]`` as in ``flax.linen.Conv``, with the same LeCun-normal initialisation; on XLA:CPU
    the matmul's backward pass is much faster than ``lax.conv``'s for these shapes (timings: the
    benchmark page)."""

    features: int
    kernel_size: int
    stride: int = 1
    padding: int = 0

    @nn.compact
    def __call__(self, x):
        k, s = self.kernel_size, self.stride
        cin = x.shape[-1]
        w = self.param("kernel", nn.initializers.lecun_normal(), (k, cin, self.features))
        xp = jnp.pad(x, ((0, 0), (self.padding, self.padding), (0, 0)))
        out = (x.shape[1] + 2 * self.padding - k) // s + 1
        cols = jnp.stack([xp[:, j:j + s * (out - 1) + 1:s] for j in range(k)], axis=2)
        return cols.reshape(x.shape[0], out, k * cin) @ w.reshape(k * cin, self.features)


def encoder_length(length: int, k1: int = 8, s1: int = 1, kernel: int = 8) -> int:
    """The encoder's output length ``T'`` for input length ``length``.

    Three blocks of conv ``n <- floor((n + 2 (k // 2) - k) / s) + 1`` and max-pool ``n <-
    floor(n / 2) + 1``; the first block has kernel ``k1`` and stride ``s1``, the others
    ``kernel`` and stride 1.

    Args:
      length: input length ``L``.
      k1: first kernel width.
      s1: first stride.
      kernel: kernel width of the second and third blocks.

    Returns:
      ``T'`` as a Python int.

    Raises:
      ValueError: an argument that is not a positive int.

    Example:
      >>> from jaxpapers.xit.models import encoder_length
      >>> encoder_length(64), encoder_length(128)
      (10, 18)
    """
    for name, value in (("length", length), ("k1", k1), ("s1", s1), ("kernel", kernel)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive int; got {value!r}")
    n = int(length)
    for k, s in ((k1, s1), (kernel, 1), (kernel, 1)):
        n = (n + 2 * (k // 2) - k) // s + 1
        n = n // 2 + 1
    return n


class Encoder(nn.Module):
    """TS-TCC's encoder: three conv blocks (no bias) -> BatchNorm -> ReLU -> MaxPool(2, 2, pad 1).

    Dropout follows the first block. ``__call__(x, train=False, bn_train=None)`` maps float32
    ``x (B, C, L)`` to ``z (B, T', channels[-1])`` (:func:`encoder_length` gives ``T'``);
    ``train`` turns dropout on (rngs ``"dropout"``), ``bn_train`` (default ``train``) uses and
    updates the batch statistics (``mutable=["batch_stats"]``).

    Attributes:
      k1: first kernel width.
      s1: first stride.
      kernel: kernel width of the second and third blocks.
      channels: the three blocks' widths.
      dropout: dropout rate after the first block.
    """

    k1: int = 8
    s1: int = 1
    kernel: int = 8
    channels: tuple = (32, 64, 128)
    dropout: float = 0.35

    @nn.compact
    def __call__(self, x, train: bool = False, bn_train: bool | None = None):
        bn_train = train if bn_train is None else bn_train
        h = jnp.swapaxes(x, 1, 2)  # channels last
        specs = ((self.k1, self.s1), (self.kernel, 1), (self.kernel, 1))
        for i, ((k, s), width) in enumerate(zip(specs, self.channels, strict=True)):
            h = Conv1D(width, k, s, k // 2, name=f"conv{i + 1}")(h)
            h = nn.BatchNorm(use_running_average=not bn_train, momentum=0.9, epsilon=1e-5,
                             name=f"bn{i + 1}")(h)
            h = nn.relu(h)
            h = _max_pool(h)
            if i == 0:
                h = nn.Dropout(self.dropout, deterministic=not train)(h)
        return h


class _Attention(nn.Module):
    width: int
    heads: int
    dropout: float
    head_scale: bool

    @nn.compact
    def __call__(self, x, mask, train):
        b, n, _ = x.shape
        qkv = nn.Dense(3 * self.width, use_bias=False, name="qkv")(x)
        q, k, v = jnp.split(qkv.reshape(b, n, 3, self.heads, self.width // self.heads), 3, 2)
        q, k, v = (a[:, :, 0].transpose(0, 2, 1, 3) for a in (q, k, v))  # [B, H, N, W/H]
        scale = (self.width // self.heads if self.head_scale else self.width) ** -0.5
        logits = jnp.einsum("bhqd,bhkd->bhqk", q, k) * scale
        logits = jnp.where(mask[:, None, None, :], logits, jnp.finfo(logits.dtype).min)
        attn = jax.nn.softmax(logits, axis=-1)
        out = jnp.einsum("bhqk,bhkd->bhqd", attn, v).transpose(0, 2, 1, 3).reshape(b, n, -1)
        out = nn.Dense(self.width, name="out")(out)
        return nn.Dropout(self.dropout, deterministic=not train)(out)


class ContextTransformer(nn.Module):
    """TS-TCC's context transformer: the context of a prefix of the latent sequence.

    Linear(D -> h), a learnable context token (N(0, 1) init) prepended, ``depth``
    pre-LayerNorm layers (attention, ReLU MLP, dropout, residuals); the output at the token is
    the context. ``__call__(z, prefix, train=False)`` maps float32 ``z (B, T', D)`` and an int
    ``prefix`` (scalar or ``(B,)``, may be traced) to ``c (B, width)``: only the token and the
    first ``prefix`` latent steps are attended to (a key mask, so shapes stay static).

    Attributes:
      width: model width ``h``.
      depth: number of layers.
      heads: attention heads (dividing ``width``).
      mlp: hidden width of the MLP.
      dropout: dropout rate.
      head_scale: scale attention by ``(h / heads)^-1/2`` (False: ``h^-1/2``, the reference's
        choice).
    """

    width: int = 100
    depth: int = 4
    heads: int = 4
    mlp: int = 64
    dropout: float = 0.1
    head_scale: bool = False

    @nn.compact
    def __call__(self, z, prefix, train: bool = False):
        b, steps, _ = z.shape
        h = nn.Dense(self.width, name="embed")(z)
        token = self.param("c_token", nn.initializers.normal(1.0), (1, 1, self.width))
        h = jnp.concatenate([jnp.broadcast_to(token, (b, 1, self.width)), h], axis=1)
        prefix = jnp.broadcast_to(jnp.asarray(prefix, jnp.int32), (b,))
        mask = jnp.arange(steps + 1)[None, :] <= prefix[:, None]  # token + first `prefix` steps
        for i in range(self.depth):
            a = nn.LayerNorm(name=f"ln_attn{i}")(h)
            h = h + _Attention(self.width, self.heads, self.dropout, self.head_scale,
                               name=f"attn{i}")(a, mask, train)
            f = nn.LayerNorm(name=f"ln_mlp{i}")(h)
            f = nn.Dense(self.mlp, name=f"mlp_in{i}")(f)
            f = nn.Dropout(self.dropout, deterministic=not train)(nn.relu(f))
            f = nn.Dense(self.width, name=f"mlp_out{i}")(f)
            h = h + nn.Dropout(self.dropout, deterministic=not train)(f)
        return h[:, 0]


class TemporalContrast(nn.Module):
    """TS-TCC's temporal-contrasting module: context transformer, predictors, projection head.

    Methods (``apply(..., method=...)``): ``context(z, prefix, train)`` -> ``c (B, width)``
    (:class:`ContextTransformer`); ``predict(c)`` -> ``(K, B, latent)``, the ``K`` linear
    predictors ``W_k c``; ``project(c, train)`` -> ``(B, latent // 4)``, the projection head
    ``Linear(h -> D/2) -> BatchNorm -> ReLU -> Linear(D/2 -> D/4)``. ``__call__(z, prefix,
    train)`` returns ``(predict(c), project(c))``.

    Attributes:
      timesteps: ``K``, the future steps predicted.
      latent: ``D``, the encoder's latent width.
      width: the transformer's width ``h``.
      depth: its number of layers.
      heads: its attention heads.
      mlp: its MLP width.
      dropout: its dropout rate.
      head_scale: see :class:`ContextTransformer`.
    """

    timesteps: int = 4
    latent: int = 128
    width: int = 100
    depth: int = 4
    heads: int = 4
    mlp: int = 64
    dropout: float = 0.1
    head_scale: bool = False

    def setup(self):
        self.transformer = ContextTransformer(self.width, self.depth, self.heads, self.mlp,
                                              self.dropout, self.head_scale)
        self.predictors = nn.Dense(self.timesteps * self.latent)
        self.proj_in = nn.Dense(self.latent // 2)
        self.proj_bn = nn.BatchNorm(momentum=0.9, epsilon=1e-5)
        self.proj_out = nn.Dense(self.latent // 4)

    def context(self, z, prefix, train: bool = False):
        return self.transformer(z, prefix, train)

    def predict(self, c):
        p = self.predictors(c).reshape(c.shape[0], self.timesteps, self.latent)
        return p.transpose(1, 0, 2)

    def project(self, c, train: bool = False):
        h = self.proj_in(c)
        h = nn.relu(self.proj_bn(h, use_running_average=not train))
        return self.proj_out(h)

    def __call__(self, z, prefix, train: bool = False):
        c = self.context(z, prefix, train)
        return self.predict(c), self.project(c, train)


class Classifier(nn.Module):
    """TS-TCC's classifier: Linear(T' * D -> num_classes) on the flattened encoder output.

    ``__call__(z, channels=1)`` maps ``z (B * channels, T', D)`` to logits ``(B,
    num_classes)``: a series with ``channels > 1`` is encoded channel by channel (the encoder
    is univariate) and its logits are averaged over channels.

    Attributes:
      num_classes: number of classes.
    """

    num_classes: int

    @nn.compact
    def __call__(self, z, channels: int = 1):
        logits = nn.Dense(self.num_classes)(z.reshape(z.shape[0], -1))
        return logits.reshape(-1, channels, self.num_classes).mean(axis=1)
