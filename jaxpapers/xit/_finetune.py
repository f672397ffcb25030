"""Fine-tuning and linear probing on a few labels, and the evaluation metrics.

:func:`make_finetune_step` returns the step of ``R`` runs side by side (encoders x
labelled-subset seeds): full-batch Adam on the cross-entropy of a fresh linear head on the
flattened encoder output (TS-TCC's classifier). The metrics are pure and vmappable.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxpapers._src import checks
from jaxpapers._src.threefry import check_key
from jaxpapers.xit import _validate as chk
from jaxpapers.xit._config import FinetuneConfig, ModelConfig
from jaxpapers.xit._model import Classifier

__all__ = ["FinetuneState", "FinetuneInfo", "init_finetune", "make_finetune_step",
           "predict_logits", "evaluate", "accuracy", "macro_f1", "auroc"]


class FinetuneState(NamedTuple):
    """The state of one fine-tuning run, or of ``R`` runs stacked on a leading axis.

    Attributes:
      params: ``{"encoder": ..., "head": ...}`` Flax parameters (float32; ``(R, ...)`` when
        stacked).
      batch_stats: ``{"encoder": ...}``, the encoder's BatchNorm statistics.
      opt_state: the optimiser state (over the head alone when ``mode == "linear"``).
      step: int32 scalar step counter, shared by stacked runs.
    """

    params: Any
    batch_stats: Any
    opt_state: Any
    step: jax.Array


class FinetuneInfo(NamedTuple):
    """What one fine-tuning step reports.

    Attributes:
      loss: float32 ``(R,)`` mean cross-entropy of each run's labelled batch before the update.
    """

    loss: jax.Array


def _optimizer(cfg: FinetuneConfig):
    parts = [optax.add_decayed_weights(cfg.weight_decay),
             optax.scale_by_adam(b1=cfg.b1, b2=cfg.b2), optax.scale(-cfg.learning_rate)]
    if cfg.schedule == "plateau":  # torch ReduceLROnPlateau('min') defaults, one value a step
        # torch cuts once the bad steps *exceed* its patience, optax once they reach it
        parts.append(optax.contrib.reduce_on_plateau(
            factor=cfg.plateau_factor, patience=cfg.plateau_patience + 1,
            rtol=cfg.plateau_rtol,
            atol=0.0, cooldown=0, accumulation_size=1))
    return optax.chain(*parts)


def init_finetune(key, encoder_params, encoder_stats, model: ModelConfig, cfg: FinetuneConfig,
                  num_classes: int) -> FinetuneState:
    """The state of one fine-tuning run at step 0: a fresh linear head on a given encoder.

    Args:
      key: PRNG key of the head's initialisation.
      encoder_params: the encoder's Flax parameters (``PretrainState.params["encoder"]`` or a
        fresh encoder's).
      encoder_stats: the encoder's BatchNorm statistics.
      model: the :class:`ModelConfig` of the encoder.
      cfg: the :class:`FinetuneConfig`; the optimiser covers the encoder too unless
        ``cfg.mode == "linear"``.
      num_classes: number of classes ``C`` of the head (positive int).

    Returns:
      A :class:`FinetuneState` with ``step`` int32 0.

    Raises:
      ValueError: ``key`` is not a PRNG key or ``num_classes`` is not a positive int.

    Example:
      One call (the first compiles its operations)::

          import jax
          from jaxpapers import xit
          model = xit.ModelConfig()
          pre = xit.init_pretrain(jax.random.key(0), model, xit.PretrainConfig())
          state = xit.init_finetune(jax.random.key(1), pre.params["encoder"],
                                    pre.batch_stats["encoder"], model, xit.FinetuneConfig(), 3)
          # sorted(state.params) == ['encoder', 'head'], int(state.step) == 0
    """
    check_key(key)
    num_classes = checks.require_positive_int(num_classes, "num_classes")
    z = jnp.zeros((1, model.latent_length, model.latent), jnp.float32)
    head = Classifier(num_classes).init(key, z)["params"]
    params = {"encoder": encoder_params, "head": head}
    trained = params if cfg.mode == "finetune" else {"head": head}
    return FinetuneState(params, {"encoder": encoder_stats}, _optimizer(cfg).init(trained),
                         jnp.int32(0))


def _logits(params, stats, x, model: ModelConfig, num_classes: int, train: bool,
            bn_train: bool, rng=None):
    b, c, length = x.shape
    flat = x.reshape(b * c, 1, length)
    variables = {"params": params["encoder"], "batch_stats": stats}
    rngs = {"dropout": rng} if train else None
    if bn_train:
        z, upd = model.encoder().apply(variables, flat, train=train, bn_train=True, rngs=rngs,
                                       mutable=["batch_stats"])
        stats = upd["batch_stats"]
    else:
        z = model.encoder().apply(variables, flat, train=train, bn_train=False, rngs=rngs)
    logits = Classifier(num_classes).apply({"params": params["head"]}, z, c)
    return logits, stats


def predict_logits(params, batch_stats, x, model: ModelConfig, num_classes: int):
    """Eval-mode logits ``(N, num_classes)`` of series ``x (N, C, L)``."""
    return _logits(params, batch_stats["encoder"], x, model, num_classes, False, False)[0]


@functools.lru_cache(maxsize=64)
def make_finetune_step(model: ModelConfig, cfg: FinetuneConfig, num_classes: int):
    """The fine-tuning step of ``R`` runs side by side, with the configs closed over.

    One full-batch Adam step per run on the cross-entropy of its labelled series. Run ``r``'s
    step ``i`` draws its dropout from ``fold_in(keys[r], i)`` (``i = state.step``). With
    ``cfg.schedule == "plateau"`` the eval-mode cross-entropy of the current parameters on the
    validation set (the loss after the previous step, as TS-TCC evaluates after each epoch)
    drives the step size of this step. The step is traceable, not jitted; the factory is cached
    per arguments.

    Args:
      model: the :class:`ModelConfig` of the encoder.
      cfg: the :class:`FinetuneConfig`.
      num_classes: number of classes ``C`` of the head.

    Returns:
      ``step(keys, state, x, y, x_val=None, y_val=None) -> (state, info)`` with ``keys``
      ``(R,)`` PRNG keys (one per run), ``state`` a :class:`FinetuneState` stacked to ``(R,
      ...)`` (one scalar ``step``), ``x`` float32 ``(R, n, C_in, L)`` labelled series, ``y``
      int32 ``(R, n)`` labels in ``[0, C)``, and with the plateau schedule ``x_val`` float32
      ``(R, m, C_in, L)``, ``y_val`` int32 ``(R, m)``. The new state has ``step + 1``;
      ``info`` is a :class:`FinetuneInfo`.

    Raises:
      ValueError: (from the step, at trace time) ``keys`` that are not PRNG keys, or
        ``cfg.schedule == "plateau"`` without ``x_val`` and ``y_val``.

    Example:
      One run (the first call compiles the whole step)::

          import jax, jax.numpy as jnp
          from jaxpapers import xit
          model = xit.ModelConfig(length=32, channels=(4, 4, 8), tc_width=8, tc_depth=1,
                                  tc_heads=2, tc_mlp=8, timesteps=2)
          cfg = xit.FinetuneConfig(steps=1)
          pre = xit.init_pretrain(jax.random.key(0), model, xit.PretrainConfig())
          one = xit.init_finetune(jax.random.key(1), pre.params["encoder"],
                                  pre.batch_stats["encoder"], model, cfg, 2)
          state = jax.tree_util.tree_map(lambda a: a[None], one)._replace(step=one.step)
          x = jax.random.normal(jax.random.key(2), (1, 4, 1, 32))
          y = jnp.asarray([[0, 1, 0, 1]])
          step = xit.make_finetune_step(model, cfg, 2)
          state, info = step(jax.random.split(jax.random.key(3), 1), state, x, y)
          # int(state.step) == 1, info.loss.shape == (1,)
    """
    optimizer = _optimizer(cfg)
    linear = cfg.mode == "linear"
    bn_train = not (linear or cfg.freeze_bn)
    plateau = cfg.schedule == "plateau"

    def one_run(params, stats, opt_state, step, run_key, x, y, x_val, y_val):
        rng = jax.random.fold_in(run_key, step)
        extra = {}
        if plateau:
            val_logits = _logits(params, stats["encoder"], x_val, model, num_classes, False,
                                 False)[0]
            extra["value"] = jnp.mean(
                optax.softmax_cross_entropy_with_integer_labels(val_logits, y_val))

        def loss_fn(trained):
            full = {**params, **trained}
            logits, new_stats = _logits(full, stats["encoder"], x, model, num_classes,
                                        not linear, bn_train, rng)
            ce = optax.softmax_cross_entropy_with_integer_labels(logits, y)
            return jnp.mean(ce), new_stats

        trained = {"head": params["head"]} if linear else params
        (loss, new_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(trained)
        updates, opt_state = optimizer.update(grads, opt_state, trained, **extra)
        params = {**params, **optax.apply_updates(trained, updates)}
        return params, {"encoder": new_stats}, opt_state, loss

    def step(keys, state: FinetuneState, x, y, x_val=None, y_val=None):
        check_key(keys, "keys")
        if plateau and (x_val is None or y_val is None):
            raise ValueError("FinetuneConfig.schedule='plateau' needs x_val and y_val")
        val_axis = 0 if plateau else None
        params, stats, opt_state, loss = jax.vmap(
            one_run, in_axes=(0, 0, 0, None, 0, 0, 0, val_axis, val_axis))(
            state.params, state.batch_stats, state.opt_state, state.step, keys, x, y,
            x_val if plateau else None, y_val if plateau else None)
        return FinetuneState(params, stats, opt_state, state.step + 1), FinetuneInfo(loss)

    return step


def _labels_ok(labels, n, num_classes, name="labels"):
    """Integer ``[n]`` labels in ``[0, num_classes)``: shapes raise, values raise eagerly and
    give a False scalar under ``jit``."""
    labels = chk.ints(labels, name, (n,))
    ok = chk.all_ok(labels, name, lambda a: (a >= 0) & (a < num_classes),
                    f"in [0, {num_classes})")
    return labels, ok


def accuracy(logits, labels):
    """Top-1 accuracy: the fraction of rows whose ``argmax`` is the label.

    Args:
      logits: float ``(N, C)`` scores.
      labels: integer ``(N,)`` labels in ``[0, C)``.

    Returns:
      float32 scalar in ``[0, 1]``; NaN under ``jit`` when a label is out of range or a logit
      is NaN.

    Raises:
      ValueError: wrong shapes or dtypes; eagerly also a label out of range or a NaN logit.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from jaxpapers.xit.metrics import accuracy
      >>> float(jax.jit(accuracy)(jnp.asarray([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0]]),
      ...                jnp.asarray([0, 1, 1])))
      0.6666666865348816
    """
    logits = chk.floats(logits, "logits", ndim=2)
    labels, ok = _labels_ok(labels, logits.shape[0], logits.shape[1])
    ok = ok & chk.all_ok(logits, "logits", lambda a: ~jnp.isnan(a), "free of NaN")
    return chk.nan_unless(ok, jnp.mean(jnp.argmax(logits, axis=-1) == labels))


def macro_f1(predictions, labels, num_classes: int):
    """Macro F1: the unweighted mean over classes of ``2 TP / (2 TP + FP + FN)``.

    A class never predicted nor present scores 0 (sklearn's ``average="macro"`` with its
    default ``zero_division``).

    Args:
      predictions: integer ``(N,)`` predicted classes in ``[0, num_classes)``.
      labels: integer ``(N,)`` true classes in ``[0, num_classes)``.
      num_classes: the number of classes (static positive int).

    Returns:
      float32 scalar in ``[0, 1]``; NaN under ``jit`` when an entry is out of range.

    Raises:
      ValueError: wrong shapes or dtypes, or ``num_classes`` not a positive int; eagerly also
        an entry out of range.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from jaxpapers.xit.metrics import macro_f1
      >>> f1 = jax.jit(macro_f1, static_argnums=2)
      >>> float(f1(jnp.asarray([0, 1, 1, 1]), jnp.asarray([0, 1, 0, 1]), 2))
      0.7333333492279053
    """
    num_classes = checks.require_positive_int(num_classes, "num_classes")
    labels, ok = _labels_ok(labels, jnp.shape(labels)[0] if jnp.ndim(labels) else -1,
                            num_classes)
    predictions, ok_p = _labels_ok(predictions, labels.shape[0], num_classes, "predictions")
    ok = ok & ok_p
    classes = jnp.arange(num_classes)
    pred = predictions[:, None] == classes[None, :]
    true = labels[:, None] == classes[None, :]
    tp = jnp.sum(pred & true, axis=0)
    denom = jnp.sum(pred, axis=0) + jnp.sum(true, axis=0)
    return chk.nan_unless(ok, jnp.mean(jnp.where(denom > 0, 2.0 * tp / jnp.maximum(denom, 1),
                                                 0.0)))


def _binary_auroc(score, positive):
    """P(score_pos > score_neg) + P(=)/2 over all positive-negative pairs; NaN without both."""
    diff = score[:, None] - score[None, :]
    pairs = positive[:, None] & ~positive[None, :]
    wins = jnp.where(diff > 0, 1.0, jnp.where(diff == 0, 0.5, 0.0))
    count = jnp.sum(pairs)
    return jnp.where(count > 0, jnp.sum(jnp.where(pairs, wins, 0.0)) / jnp.maximum(count, 1),
                     jnp.nan)


def auroc(scores, labels, num_classes: int | None = None):
    """Area under the ROC curve, ties counted one half.

    ``scores (N,)`` with binary labels (1 = positive): the binary AUROC. ``scores (N, C)``
    (probabilities or logits): the one-vs-rest AUROC of each class, averaged over the classes
    present with both outcomes (macro, sklearn's ``multi_class="ovr"``); for ``C = 2`` the
    AUROC of ``scores[:, 1] - scores[:, 0]``.

    Args:
      scores: float ``(N,)`` or ``(N, C)``.
      labels: integer ``(N,)`` in ``[0, C)`` (``[0, 2)`` for binary scores).
      num_classes: ``C`` (default ``scores.shape[1]``); must equal it when given.

    Returns:
      float32 scalar in ``[0, 1]``; NaN when no class has both outcomes, and under ``jit``
      when a label is out of range or a score is NaN.

    Raises:
      ValueError: wrong shapes or dtypes, or ``num_classes != scores.shape[1]``; eagerly also
        a label out of range or a NaN score.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from jaxpapers.xit.metrics import auroc
      >>> float(jax.jit(auroc)(jnp.asarray([0.1, 0.4, 0.35, 0.8]), jnp.asarray([0, 0, 1, 1])))
      0.75
    """
    scores = jnp.asarray(scores)
    checks.require(scores.ndim in (1, 2), f"scores must have shape (N,) or (N, C); got "
                   f"{scores.shape}")
    scores = chk.floats(scores, "scores")
    if scores.ndim == 2:
        num_classes = scores.shape[1] if num_classes is None else num_classes
        checks.require(num_classes == scores.shape[1],
                       f"num_classes ({num_classes}) must equal scores.shape[1]; got "
                       f"{scores.shape}")
    labels, ok = _labels_ok(labels, scores.shape[0], 2 if scores.ndim == 1 else num_classes)
    ok = ok & chk.all_ok(scores, "scores", lambda a: ~jnp.isnan(a), "free of NaN")
    return chk.nan_unless(ok, _auroc(scores, labels, num_classes))


def _auroc(scores, labels, num_classes):
    if scores.ndim == 1:
        return _binary_auroc(scores, labels == 1)
    if num_classes == 2:
        return _binary_auroc(scores[:, 1] - scores[:, 0], labels == 1)
    per_class = jax.vmap(lambda c: _binary_auroc(scores[:, c], labels == c))(
        jnp.arange(num_classes))
    return jnp.nanmean(per_class)


def evaluate(params, batch_stats, x, y, model: ModelConfig, num_classes: int):
    """Accuracy, macro F1 and AUROC of one fine-tuned model on a labelled set.

    Args:
      params: ``{"encoder", "head"}`` parameters of one run (:attr:`FinetuneState.params`).
      batch_stats: ``{"encoder": ...}`` statistics (:attr:`FinetuneState.batch_stats`).
      x: float32 ``(N, C_in, L)`` series.
      y: integer ``(N,)`` labels in ``[0, num_classes)``.
      model: the :class:`~jaxpapers.xit.ModelConfig` of the encoder.
      num_classes: the head's number of classes.

    Returns:
      ``{"accuracy", "macro_f1", "auroc"}`` of float32 scalars (eval mode; AUROC on the
      softmax probabilities).

    Raises:
      ValueError: as :func:`accuracy`, :func:`macro_f1` and :func:`auroc`.
    """
    logits = predict_logits(params, batch_stats, x, model, num_classes)
    probs = jax.nn.softmax(logits, axis=-1)
    return {"accuracy": accuracy(logits, y),
            "macro_f1": macro_f1(jnp.argmax(logits, -1), y, num_classes),
            "auroc": auroc(probs, y, num_classes)}
