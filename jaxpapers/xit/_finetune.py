"""Fine-tuning and linear probing on a few labels, and the evaluation metrics.

:func:`make_finetune_update` returns a ``train_loop`` update over ``R`` stacked runs (encoders
x labelled-subset seeds): full-batch Adam on the cross-entropy of a fresh linear head on the
flattened encoder output (TS-TCC's classifier). Run ``r``'s step ``i`` draws its dropout from
``fold_in(run_keys[r], i)``.

Metrics (pure, vmappable): :func:`accuracy`, :func:`macro_f1` (sklearn's ``average="macro"``:
a class never predicted nor present scores 0), :func:`auroc` (one-vs-rest, macro over classes,
ties counted one half; for two classes it is the AUROC of the class-1 score).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxpapers._src import checks
from jaxpapers.xit import _validate as chk
from jaxpapers.xit._config import FinetuneConfig, ModelConfig
from jaxpapers.xit._model import Classifier

__all__ = ["FinetuneState", "init_finetune", "make_finetune_update", "predict_logits",
           "evaluate", "accuracy", "macro_f1", "auroc"]


class FinetuneState(NamedTuple):
    """``params = {"encoder", "head"}``, the encoder's BatchNorm statistics, the optimiser state
    and an int32 step (scalar, shared when runs are stacked)."""

    params: Any
    batch_stats: Any
    opt_state: Any
    step: jax.Array


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
    """A fresh head (from ``key``) on the given encoder; the optimiser covers the encoder too
    unless ``cfg.mode == "linear"``."""
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
    """Eval-mode logits ``[N, num_classes]`` of series ``x [N, C, L]``."""
    return _logits(params, batch_stats["encoder"], x, model, num_classes, False, False)[0]


@functools.lru_cache(maxsize=64)
def make_finetune_update(model: ModelConfig, cfg: FinetuneConfig, num_classes: int):
    """``update(state, key, x [R, n, C, L], y [R, n], run_keys [R], x_val [R, m, C, L] = None,
    y_val [R, m] = None) -> (state, loss [R])``.

    With ``cfg.schedule == "plateau"`` the validation set is required: the eval-mode
    cross-entropy of the current parameters on it (the loss after the previous step, as TS-TCC
    evaluates after each epoch) drives the step size of this step."""
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

    def update(state: FinetuneState, key, x, y, run_keys, x_val=None, y_val=None):
        del key
        if plateau and (x_val is None or y_val is None):
            raise ValueError("FinetuneConfig.schedule='plateau' needs x_val and y_val")
        val_axis = 0 if plateau else None
        params, stats, opt_state, loss = jax.vmap(
            one_run, in_axes=(0, 0, 0, None, 0, 0, 0, val_axis, val_axis))(
            state.params, state.batch_stats, state.opt_state, state.step, run_keys, x, y,
            x_val if plateau else None, y_val if plateau else None)
        return FinetuneState(params, stats, opt_state, state.step + 1), loss

    return update


def _labels_ok(labels, n, num_classes, name="labels"):
    """Integer ``[n]`` labels in ``[0, num_classes)``: shapes raise, values raise eagerly and
    give a False scalar under ``jit``."""
    labels = chk.ints(labels, name, (n,))
    ok = chk.all_ok(labels, name, lambda a: (a >= 0) & (a < num_classes),
                    f"in [0, {num_classes})")
    return labels, ok


def accuracy(logits, labels):
    """Fraction of ``argmax(logits) == labels`` for ``logits [N, C]``, integer ``labels [N]``
    in ``[0, C)``. Under ``jit`` a label out of range or a NaN logit gives NaN (eagerly
    ValueError)."""
    logits = chk.floats(logits, "logits", ndim=2)
    labels, ok = _labels_ok(labels, logits.shape[0], logits.shape[1])
    ok = ok & chk.all_ok(logits, "logits", lambda a: ~jnp.isnan(a), "free of NaN")
    return chk.nan_unless(ok, jnp.mean(jnp.argmax(logits, axis=-1) == labels))


def macro_f1(predictions, labels, num_classes: int):
    """Unweighted mean over classes of ``2 TP / (2 TP + FP + FN)`` (0 where the denominator is
    0, as sklearn's default ``zero_division``). Integer ``predictions`` and ``labels [N]`` in
    ``[0, num_classes)``; under ``jit`` an entry out of range gives NaN (eagerly ValueError)."""
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
    """AUROC. ``scores [N]`` with binary ``labels`` (1 = positive): the binary AUROC.
    ``scores [N, C]`` (probabilities or logits): one-vs-rest AUROC of each class, averaged over
    the classes present with both outcomes (macro, sklearn's ``multi_class="ovr"``).

    Labels must be integers in ``[0, C)`` (``[0, 2)`` for binary); under ``jit`` a label out of
    range or a NaN score gives NaN (eagerly ValueError)."""
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
    """``{"accuracy", "macro_f1", "auroc"}`` of one fine-tuned model on ``x [N, C, L]``,
    ``y [N]`` (AUROC on the softmax probabilities)."""
    logits = predict_logits(params, batch_stats, x, model, num_classes)
    probs = jax.nn.softmax(logits, axis=-1)
    return {"accuracy": accuracy(logits, y),
            "macro_f1": macro_f1(jnp.argmax(logits, -1), y, num_classes),
            "auroc": auroc(probs, y, num_classes)}
