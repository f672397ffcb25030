"""The TS-TCC model in Flax: encoder, temporal-contrasting transformer, predictors, projection
head, and the classifier used for fine-tuning.

Shapes: series ``x [B, C, L]`` (channels first, as the reference); the encoder returns
``z [B, T', 128]`` (time major, channels last). ``encoder_length(L, k1, s1)`` gives ``T'`` by
the recursion conv ``n <- floor((n + 2p - k)/s) + 1``, pool ``n <- floor(n/2) + 1``.

The context transformer takes the whole latent sequence and a prefix length ``t + 1`` that may be
traced: a key mask (not a slice) keeps the shapes static, so one compiled program serves every
``t``. Its attention scales by ``h^-1/2`` (the full width, the reference's choice) unless
``head_scale=True``.
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
    the backward pass of ``lax.conv`` for these shapes is about 12x slower than the matmul's."""

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
    """Encoder output length ``T'`` for input length ``length`` (spec Sec. 3.1 recursion).

    All arguments must be positive ints (ValueError otherwise)."""
    for name, value in (("length", length), ("k1", k1), ("s1", s1), ("kernel", kernel)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive int; got {value!r}")
    n = int(length)
    for k, s in ((k1, s1), (kernel, 1), (kernel, 1)):
        n = (n + 2 * (k // 2) - k) // s + 1
        n = n // 2 + 1
    return n


class Encoder(nn.Module):
    """Three conv blocks (no bias) -> BatchNorm -> ReLU -> MaxPool(2, 2, pad 1); dropout after
    the first block. ``x [B, C, L] -> z [B, T', channels[-1]]``."""

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
    """Linear(D -> h), a learnable context token (N(0, 1) init) prepended, ``depth`` pre-LayerNorm
    layers (attention with ``heads`` heads, ReLU MLP of width ``mlp``, dropout, residuals); the
    output at the token is the context ``c [B, h]``.

    ``__call__(z [B, T', D], prefix [B] or scalar int)``: only the first ``prefix`` latent steps
    (and the token) are attended to.
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
    """The TC module: the context transformer, ``K`` linear predictors ``W_k: h -> D`` and the
    projection head ``Linear(h -> D/2) -> BatchNorm -> ReLU -> Linear(D/2 -> D/4)``.

    Methods (``apply(..., method=...)``): ``context(z, prefix, train)``, ``predict(c)`` ->
    ``[K, B, D]``, ``project(c, train)``.
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
    """Linear(T' * D -> num_classes) on the flattened encoder output (TS-TCC's ``logits``
    layer). A series with ``C > 1`` channels is encoded channel by channel (the encoder is
    univariate) and the logits are averaged over channels."""

    num_classes: int

    @nn.compact
    def __call__(self, z, channels: int = 1):
        logits = nn.Dense(self.num_classes)(z.reshape(z.shape[0], -1))
        return logits.reshape(-1, channels, self.num_classes).mean(axis=1)
