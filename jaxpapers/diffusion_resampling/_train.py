"""Optax training of denoisers and time-conditioned discriminators, checkpointed and resumable.

Training runs on the toolkit's one training loop (:func:`jaxpapers.experiments.train_loop`):
jitted ``lax.scan`` chunks of ``checkpoint_every`` steps. The minibatch and the noise at step
``i`` come from ``fold_in(key, i)``, so a run resumed from a checkpoint is bitwise the same as an
uninterrupted one, whatever the chunking.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxpapers._src import checks, threefry
from jaxpapers._src.training import train_loop
from jaxpapers.diffusion_resampling._diffusion import (
    Schedule,
    check_float_array,
    check_level,
    check_schedule,
    epsilon_loss,
    q_sample,
)

__all__ = ["TrainConfig", "TrainState", "train_denoiser", "train_discriminator",
           "discriminator_accuracy", "sample_levels"]


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Optimiser and loop settings shared by denoiser and discriminator training.

    A frozen, hashable dataclass, validated on construction.

    Attributes:
      steps: optimiser steps, a positive int.
      batch_size: minibatch size, a positive int.
      learning_rate: AdamW learning rate, finite and ``> 0``.
      weight_decay: AdamW weight decay, finite and ``>= 0``.
      checkpoint_every: steps per jitted chunk (and between checkpoints), a positive int.

    Raises:
      ValueError: a field out of range, naming the class, the field and the value.

    >>> TrainConfig(steps=100, batch_size=32).learning_rate
    0.001
    >>> TrainConfig(batch_size=0)
    Traceback (most recent call last):
    ...
    ValueError: TrainConfig.batch_size must be a positive int; got 0
    """

    steps: int = 1000
    batch_size: int = 256
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    checkpoint_every: int = 500

    def __post_init__(self):
        for name in ("steps", "batch_size", "checkpoint_every"):
            checks.require_positive_int_field(type(self).__name__, name, getattr(self, name))
        for name, positive in (("learning_rate", True), ("weight_decay", False)):
            value = getattr(self, name)
            ok = (isinstance(value, numbers.Real) and not isinstance(value, bool)
                  and math.isfinite(value) and (value > 0 if positive else value >= 0))
            if not ok:
                need = "> 0" if positive else ">= 0"
                raise ValueError(f"TrainConfig.{name} must be a finite number {need}; got "
                                 f"{value!r}")


class TrainState(NamedTuple):
    params: Any
    opt_state: Any
    step: jax.Array  # int32 scalar


@functools.lru_cache(maxsize=64)
def _adamw_update(loss_fn: Callable, learning_rate: float, weight_decay: float):
    """One AdamW step on ``loss_fn(params, key, *args)`` as a ``train_loop`` update, cached so
    that repeated trainings (seeds, resumption) share one compiled chunk."""
    optimizer = optax.adamw(learning_rate, weight_decay=weight_decay)

    def update(key, state: TrainState, *args):
        loss, grads = jax.value_and_grad(loss_fn)(state.params, key, *args)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        return TrainState(params, opt_state, state.step + 1), loss

    return update


def _fit(key, params, loss_fn: Callable, args: tuple, config: TrainConfig, checkpointer,
         show_progress: bool, desc: str, timer=None):
    """Minimise ``loss_fn(params, key, *args)``; returns ``(params, losses per step)``."""
    optimizer = optax.adamw(config.learning_rate, weight_decay=config.weight_decay)
    state = TrainState(params, optimizer.init(params), jnp.int32(0))
    update = _adamw_update(loss_fn, float(config.learning_rate), float(config.weight_decay))
    state, losses = train_loop(update, state, key, config.steps, args=args,
                               chunk=config.checkpoint_every, checkpointer=checkpointer,
                               show_progress=show_progress, desc=desc, timer=timer)
    return state.params, losses


@functools.lru_cache(maxsize=64)
def _denoiser_loss(module, batch_size: int, label_dropout: float, conditional: bool):
    null = getattr(module, "num_classes", 0)

    def loss_fn(params, k, data, labels, schedule):
        k_idx, k_drop, k_loss = jax.random.split(k, 3)
        idx = jax.random.randint(k_idx, (batch_size,), 0, data.shape[0])
        y = None
        if conditional:
            y = labels[idx]
            drop = jax.random.bernoulli(k_drop, label_dropout, y.shape)
            y = jnp.where(drop, null, y)
        eps_fn = lambda x, t, c: module.apply(params, x, t, c)
        return epsilon_loss(k_loss, eps_fn, data[idx], schedule, y)

    return loss_fn


def _training_data(x, name: str):
    """Float32 ``[N, *event]`` training data; refuses other dtypes, no rows, NaN/inf (the data
    of a training driver are concrete, so the check is eager)."""
    x = check_float_array(x, name, 2)
    checks.require(x.shape[0] >= 1, f"{name} must hold at least one row; got {x.shape}")
    checks.raise_if_concrete(lambda a: ~jnp.all(jnp.isfinite(a)),
                             f"{name} must be finite (found NaN or inf)", x)
    return x.astype(jnp.float32)


def train_denoiser(key, module, data, schedule: Schedule, config: TrainConfig, labels=None,
                   label_dropout: float = 0.1, checkpointer=None, show_progress: bool = False,
                   timer=None):
    """Train an epsilon-predictor with the DDPM simple loss (Ho et al. 2020, Eq. 14).

    Args:
      key: PRNG key.
      module: a Flax denoiser ``(x, t, y) -> eps`` (:class:`TimeMLP`, :class:`ConvDenoiser`).
      data: ``[N, *event]`` training data.
      schedule: :class:`Schedule`.
      config: :class:`TrainConfig`.
      labels: ``[N]`` int labels for a class-conditional model, or None.
      label_dropout: probability of replacing a label by the null label ``module.num_classes``
        (classifier-free guidance training).
      checkpointer: a :class:`jaxpapers.experiments.Checkpointer` (save every
        ``config.checkpoint_every`` steps; resume from the newest when it was opened to resume),
        or None.
      show_progress: tqdm bar over chunks.
      timer: a :class:`jaxpapers.experiments.Timer` that counts the compile time.

    Returns:
      ``(params, losses)``: the trained Flax parameters and the ``(steps,)`` float32 losses.

    Raises:
      ValueError: ``key`` not a key, ``schedule`` not a :class:`Schedule`, ``data`` not a real
        float ``(N, *event)`` with ``N >= 1`` or rows the module cannot take, ``label_dropout``
        outside ``[0, 1]``; NaN or inf in ``data`` (eagerly: the data are concrete).
    """
    checks.require(0.0 <= label_dropout <= 1.0, f"label_dropout must lie in [0, 1]; got "
                                                f"{label_dropout}")
    threefry.check_key(key)
    check_schedule(schedule)
    data = _training_data(data, "data")
    key_init, key_train = jax.random.split(key)
    conditional = labels is not None
    dummy_y = jnp.zeros(1, jnp.int32) if conditional else None
    try:
        params = jax.jit(module.init)(key_init, data[:1], jnp.ones(1, jnp.int32), dummy_y)
    except TypeError as exc:  # the module cannot take rows of this shape
        raise ValueError(f"data rows of shape {data.shape[1:]} do not fit the module "
                         f"{type(module).__name__}: {exc}") from exc
    labels = jnp.asarray(labels, jnp.int32) if conditional else jnp.zeros(1, jnp.int32)
    loss_fn = _denoiser_loss(module, config.batch_size, float(label_dropout), conditional)
    return _fit(key_train, params, loss_fn, (data, labels, schedule), config, checkpointer,
                show_progress, "denoiser", timer)


def sample_levels(key, shape, num_steps: int, power: float = 2.0):
    """Levels ``t = floor(T u^power)``, ``u ~ U(0, 1)``: biased to low noise for ``power > 1``."""
    u = jax.random.uniform(key, shape)
    return jnp.minimum(jnp.floor(num_steps * u**power), num_steps).astype(jnp.int32)


@functools.lru_cache(maxsize=64)
def _discriminator_loss(module, half: int, level_power: float, conditional: bool):
    targets = jnp.concatenate([jnp.ones(half), jnp.zeros(half)])

    def loss_fn(params, k, real, fake, real_labels, fake_labels, schedule):
        k_r, k_f, k_t, k_n = jax.random.split(k, 4)
        ir = jax.random.randint(k_r, (half,), 0, real.shape[0])
        i_f = jax.random.randint(k_f, (half,), 0, fake.shape[0])
        x0 = jnp.concatenate([real[ir], fake[i_f]])
        y = jnp.concatenate([real_labels[ir], fake_labels[i_f]]) if conditional else None
        t = sample_levels(k_t, (2 * half,), schedule.num_steps, level_power)
        x_t, _ = q_sample(k_n, x0, t, schedule)
        logits = module.apply(params, x_t, t, y)[..., 0]
        return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, targets))

    return loss_fn


def train_discriminator(key, module, real, fake, schedule: Schedule, config: TrainConfig,
                        real_labels=None, fake_labels=None, level_power: float = 2.0,
                        checkpointer=None, show_progress: bool = False, timer=None):
    """Train ``d(x_t, t)`` to tell forward-noised real data (1) from generated data (0).

    Balanced minibatches (half real, half generated), both noised to the same random levels
    ``t = floor(T u^level_power)`` (including ``t = 0``), binary cross-entropy on the logit, as in
    discriminator guidance (Kim et al. 2023) and the reference code.

    Args:
      key: PRNG key.
      module: a Flax discriminator ``(x, t, y) -> logit [B, 1]``.
      real: ``[N_real, *event]``; fake: ``[N_fake, *event]``.
      schedule: :class:`Schedule`.
      config: :class:`TrainConfig` (``batch_size`` is split half and half).
      real_labels, fake_labels: ``[N]`` labels for a class-conditional discriminator, or None.
      level_power: exponent of the level sampler.
      checkpointer, show_progress, timer: as in :func:`train_denoiser`.

    Returns:
      ``(params, losses)``: the trained Flax parameters and the ``(steps,)`` float32 losses.

    Raises:
      ValueError: ``key`` not a key, ``schedule`` not a :class:`Schedule`, ``real``/``fake``
        not real float arrays of one event shape, labels given for one side only; NaN or inf
        in the data (eagerly).
    """
    threefry.check_key(key)
    check_schedule(schedule)
    real = _training_data(real, "real")
    fake = _training_data(fake, "fake")
    checks.require(real.shape[1:] == fake.shape[1:],
                   f"real and fake must share the event shape; got {real.shape}, {fake.shape}")
    conditional = real_labels is not None
    checks.require(conditional == (fake_labels is not None),
                   "give both real_labels and fake_labels or neither")
    half = max(config.batch_size // 2, 1)
    key_init, key_train = jax.random.split(key)
    params = jax.jit(module.init)(key_init, real[:1], jnp.ones(1, jnp.int32),
                                  jnp.zeros(1, jnp.int32) if conditional else None)
    zeros = jnp.zeros(1, jnp.int32)
    rl = jnp.asarray(real_labels, jnp.int32) if conditional else zeros
    fl = jnp.asarray(fake_labels, jnp.int32) if conditional else zeros
    loss_fn = _discriminator_loss(module, half, float(level_power), conditional)
    return _fit(key_train, params, loss_fn, (real, fake, rl, fl, schedule), config,
                checkpointer, show_progress, "discriminator", timer)


def discriminator_accuracy(key, logit_fn, real, fake, schedule: Schedule, level: int,
                           real_labels=None, fake_labels=None):
    """Balanced accuracy of ``logit > 0`` on real vs generated data noised to ``level``.

    Args:
      key: PRNG key of the forward noise.
      logit_fn: ``(x (B, *event), t int32 (B,), y) -> (B,)`` discriminator logit.
      real: ``(N_real, *event)`` float data (label 1); fake: ``(N_fake, *event)`` (label 0).
      schedule: :class:`Schedule`.
      level: integer level in ``[0, T]``, a scalar.
      real_labels, fake_labels: ``(N,)`` labels passed to ``logit_fn``, or None.

    Returns:
      Float scalar ``(acc_real + acc_fake) / 2`` in ``[0, 1]``.

    Raises:
      ValueError: ``key`` not a key, ``real``/``fake`` not real float arrays with at least 2
        axes, ``level`` not a scalar integer (call or trace time); a level outside ``[0, T]``
        or NaN/inf data or logits (eagerly where concrete; NaN under ``jit``).
    """
    threefry.check_key(key)
    real = check_float_array(real, "real", 2)
    fake = check_float_array(fake, "fake", 2)
    for name, x in (("real", real), ("fake", fake)):
        checks.raise_if_concrete(lambda a: ~jnp.all(jnp.isfinite(a)),
                                 f"{name} must be finite (found NaN or inf)", x)
    level = jnp.asarray(level)
    checks.require(level.ndim == 0, f"level must be a scalar; got shape {level.shape}")
    ok = check_level(level, schedule, name="level")
    k_r, k_f = jax.random.split(key)
    xr, _ = q_sample(k_r, real.astype(jnp.float32), level, schedule)
    xf, _ = q_sample(k_f, fake.astype(jnp.float32), level, schedule)
    tr = jnp.full(xr.shape[:1], level, jnp.int32)
    tf = jnp.full(xf.shape[:1], level, jnp.int32)
    logit_r, logit_f = logit_fn(xr, tr, real_labels), logit_fn(xf, tf, fake_labels)
    ok &= jnp.all(jnp.isfinite(logit_r)) & jnp.all(jnp.isfinite(logit_f))
    acc_real = jnp.mean(logit_r > 0)
    acc_fake = jnp.mean(logit_f <= 0)
    return jnp.where(ok, 0.5 * (acc_real + acc_fake), jnp.nan)
