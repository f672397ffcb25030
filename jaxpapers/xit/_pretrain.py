"""Pretraining: the three views, the XIT/TS-TCC loss and the step of many runs at once.

:func:`pretrain_loss` is the loss of one batch; :func:`make_pretrain_step` returns the step of
``R`` independent runs side by side (``jax.vmap``), each with its own key, dataset frequencies
and objective weights (traced), so the XIT, TS-TCC and ablation runs share one compiled step.
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxpapers._src.threefry import check_key
from jaxpapers.xit._augment import strong_augment, weak_scale
from jaxpapers.xit._config import ModelConfig, PretrainConfig
from jaxpapers.xit._losses import l2_normalize, nt_xent, sicc, tc_infonce
from jaxpapers.xit._mixup import xd_mixup
from jaxpapers.xit._sampler import sample_rows

__all__ = ["PretrainState", "PretrainInfo", "init_pretrain", "pretrain_loss",
           "make_pretrain_step", "pretrain_optimizer", "chance_levels"]

#: ``fold_in`` stream of a run's fixed ("once") augmentations; steps never reach it
ONCE_STREAM = 2**31 - 1


class PretrainState(NamedTuple):
    """The state of one pretraining run, or of ``R`` runs stacked on a leading axis.

    Attributes:
      params: ``{"encoder": ..., "tc": ...}``, the encoder's and the temporal-contrasting
        module's Flax parameters (float32; ``(R, ...)`` when stacked).
      batch_stats: their BatchNorm statistics, keyed likewise.
      opt_state: the optimiser state (Adam with coupled L2 weight decay).
      step: int32 scalar step counter, shared by stacked runs.
    """

    params: Any
    batch_stats: Any
    opt_state: Any
    step: jax.Array


class PretrainInfo(NamedTuple):
    """The losses of one step (float32 scalars; ``(R,)`` from :func:`make_pretrain_step`).

    Attributes:
      loss: the weighted total ``w_tc tc + w_cc cc + w_sicc sicc``.
      tc: temporal contrasting, both directions summed (:func:`tc_infonce`).
      cc: contextual contrasting (:func:`nt_xent` of the weak and strong contexts).
      sicc: soft interpolation contextual contrasting (:func:`sicc`).
    """

    loss: jax.Array
    tc: jax.Array
    cc: jax.Array
    sicc: jax.Array


def chance_levels(cfg: PretrainConfig) -> dict[str, float]:
    """Each contrastive loss at chance, when every candidate is equally likely.

    Args:
      cfg: the :class:`~jaxpapers.xit.PretrainConfig` (its ``batch_size`` ``B`` and
        ``extra_negatives``).

    Returns:
      ``{"tc": 2 ln B, "cc": ln(2B - 1), "sicc": ln B}`` as Python floats (``tc`` sums both
      directions; ``sicc`` is ``ln(2B - 1)`` with extra negatives).

    Raises:
      ValueError: ``cfg`` is not a :class:`~jaxpapers.xit.PretrainConfig`.

    Example:
      >>> from jaxpapers import xit
      >>> levels = xit.metrics.chance_levels(xit.PretrainConfig(batch_size=4))
      >>> round(levels["cc"], 4), round(levels["sicc"], 4)
      (1.9459, 1.3863)
    """
    if not isinstance(cfg, PretrainConfig):
        raise ValueError(f"cfg must be a PretrainConfig; got {type(cfg).__name__}")
    b = cfg.batch_size
    return {"tc": 2.0 * math.log(b), "cc": math.log(2 * b - 1),
            "sicc": math.log(2 * b - 1) if cfg.extra_negatives else math.log(b)}


def pretrain_optimizer(cfg: PretrainConfig) -> optax.GradientTransformation:
    """Adam with torch's coupled L2 weight decay (the decay is added to the gradient before the
    Adam scaling, as ``torch.optim.Adam(weight_decay=...)`` does)."""
    return optax.chain(optax.add_decayed_weights(cfg.weight_decay),
                       optax.scale_by_adam(b1=cfg.b1, b2=cfg.b2),
                       optax.scale(-cfg.learning_rate))


def init_pretrain(key, model: ModelConfig, cfg: PretrainConfig) -> PretrainState:
    """The state of one pretraining run at step 0: fresh parameters, statistics, optimiser.

    Args:
      key: PRNG key of the parameter initialisation.
      model: the :class:`ModelConfig`.
      cfg: the :class:`PretrainConfig` (its optimiser).

    Returns:
      A :class:`PretrainState` of one run with ``step`` int32 0. Stack ``R`` of them on a
      leading axis (keeping one scalar ``step``) for :func:`make_pretrain_step`.

    Raises:
      ValueError: ``key`` is not a PRNG key (from ``jax.random.split``).

    Example:
      One call (the first compiles its operations)::

          import jax
          from jaxpapers import xit
          state = xit.init_pretrain(jax.random.key(0), xit.ModelConfig(), xit.PretrainConfig())
          # sorted(state.params) == ['encoder', 'tc'], int(state.step) == 0
    """
    check_key(key)
    key_enc, key_tc = jax.random.split(key)
    x = jnp.zeros((2, 1, model.length), jnp.float32)
    enc_vars = model.encoder().init(key_enc, x)
    z = jnp.zeros((2, model.latent_length, model.latent), jnp.float32)
    tc_vars = model.temporal_contrast().init(key_tc, z, 1)
    params = {"encoder": enc_vars["params"], "tc": tc_vars["params"]}
    stats = {"encoder": enc_vars["batch_stats"], "tc": tc_vars["batch_stats"]}
    return PretrainState(params, stats, pretrain_optimizer(cfg).init(params), jnp.int32(0))


def _views(key, x, ds_id, weights, cfg: PretrainConfig, rows=None, aug_table=None,
           aug_key=None):
    """Weak, strong and mixed views. ``aug_table [D, 3]`` (optional) gives each item the
    strengths of its dataset; with ``cfg.augment_draw == "once"`` the weak and strong views of
    pool row ``r`` are drawn from ``fold_in(aug_key, r)`` (the same at every step)."""
    aug = cfg.augment
    k_w, k_s, k_mix, k_m = jax.random.split(key, 4)
    b = x.shape[0]
    if aug_table is None:
        table = jnp.asarray([[aug.scale_sigma, aug.jitter_sigma, aug.max_segments]],
                            jnp.float32)
        idx, bound = jnp.zeros((b,), jnp.int32), aug.max_segments
    else:
        table, idx, bound = jnp.asarray(aug_table, jnp.float32), ds_id, cfg.max_segments
    scale_s, jitter_s = table[idx, 0], table[idx, 1]
    limit = jnp.round(table[idx, 2]).astype(jnp.int32)
    weak = jax.vmap(weak_scale)
    strong = jax.vmap(lambda k, s, j, m: strong_augment(k, s, j, bound, m))
    if cfg.augment_draw == "once":
        if rows is None or aug_key is None:
            raise ValueError("augment_draw='once' needs the batch's pool rows and aug_key")
        keys_w = jax.vmap(lambda r: jax.random.fold_in(jax.random.fold_in(aug_key, 0), r))(rows)
        keys_s = jax.vmap(lambda r: jax.random.fold_in(jax.random.fold_in(aug_key, 1), r))(rows)
    else:
        keys_w, keys_s = jax.random.split(k_w, b), jax.random.split(k_s, b)
    x_w = weak(keys_w, x, scale_s)
    x_s = strong(keys_s, x, jitter_s, limit)
    x_mix, perm, lam = xd_mixup(k_mix, x, ds_id, cfg.alpha, cfg.per_sample_lambda,
                                cfg.cross_dataset)
    mix_on = weights[3] > 0
    lam = jnp.where(mix_on, lam, 1.0)
    x_mix = jnp.where(mix_on, x_mix, x)
    x_m = weak(jax.random.split(k_m, b), x_mix, scale_s)
    return x_w, x_s, x_m, perm, lam


def pretrain_loss(params, batch_stats, key, x, ds_id, weights, model: ModelConfig,
                  cfg: PretrainConfig, rows=None, aug_table=None, aug_key=None,
                  buckets: int = 0):
    """The XIT/TS-TCC loss of one batch, differentiable in ``params``.

    Views: weak ``T_w(x)``, strong ``T_s(x)`` and mixed ``T_w(x_mix)`` with ``x_mix = lam x +
    (1 - lam) x[perm]`` (:func:`xd_mixup`; ``lam = 1`` when the objective's mixup is off), each
    through the encoder in train mode with BatchNorm statistics threaded view after view (as
    TS-TCC calls the model once per view). Latents are L2-normalised over channels; one ``t ~
    U{0, ..., T' - K - 1}`` per direction gives the contexts ``c_w`` (prefix ``t1 + 1`` of the
    weak view), ``c_s`` (prefix ``t2 + 1`` of the strong view) and ``c_m`` (prefix ``t1 + 1``
    of the mixed view), and ``L = w_tc (TC(w -> s) + TC(s -> w)) + w_cc NT-Xent(g(c_w),
    g(c_s)) + w_sicc SICC(g(c_m), g(c_w), perm, lam)``.

    Args:
      params: ``{"encoder", "tc"}`` parameters of one run (:attr:`PretrainState.params`).
      batch_stats: their BatchNorm statistics.
      key: PRNG key of the views, the time steps and dropout.
      x: float32 ``(B, 1, L)`` batch, ``L = model.length``.
      ds_id: int32 ``(B,)`` dataset id of each series.
      weights: float32 ``(4,)`` objective ``(w_tc, w_cc, w_sicc, mixup)``
        (:meth:`Objective.as_tuple`).
      model: the :class:`ModelConfig`.
      cfg: the :class:`PretrainConfig`.
      rows: int32 ``(B,)`` pool rows of the batch; needed when ``cfg.augment_draw == "once"``.
      aug_table: float32 ``(D, 3)`` per-dataset strengths
        (:func:`jaxpapers.xit.augment.augment_table`; None: ``cfg.augment`` for all).
      aug_key: PRNG key of the fixed views; needed when ``cfg.augment_draw == "once"``.
      buckets: static int; ``> 0`` runs the context transformer on the prefix rounded up to
        one of ``buckets`` static lengths through ``lax.switch`` (the same contexts; worth it
        only outside ``vmap``, where a switch with a batched index runs every branch).

    Returns:
      ``(loss, (new_batch_stats, info))``: the float32 scalar loss, the updated statistics and
      a :class:`PretrainInfo` of scalars.

    Raises:
      ValueError: ``cfg.augment_draw == "once"`` without ``rows`` and ``aug_key``, or a bad
        key, shape or dtype (see the kernels).
    """
    encoder, tc_module = model.encoder(), model.temporal_contrast()
    k_views, k_t, k_drop = jax.random.split(key, 3)
    x_w, x_s, x_m, perm, lam = _views(k_views, x, ds_id, weights, cfg, rows, aug_table,
                                      aug_key)
    k_enc, k_ctx = jax.random.split(k_drop)

    # the three views go through the encoder one after another, BatchNorm statistics carried
    # from view to view as TS-TCC's three separate calls do. The scan is unrolled: in a loop
    # body XLA's CPU backend runs the gradient convolutions 10-60x slower (see
    # jaxpapers._src.training)
    def encode(stats, inputs):
        view, rng = inputs
        z, upd = encoder.apply({"params": params["encoder"], "batch_stats": stats}, view,
                               train=True, rngs={"dropout": rng}, mutable=["batch_stats"])
        return upd["batch_stats"], l2_normalize(z, axis=-1)

    stats_enc, (z_w, z_s, z_m) = jax.lax.scan(
        encode, batch_stats["encoder"], (jnp.stack([x_w, x_s, x_m]), jax.random.split(k_enc, 3)),
        unroll=True)

    steps, k = model.latent_length, model.timesteps
    t1, t2 = jax.random.randint(k_t, (2,), 0, steps - k)
    tc_vars = {"params": params["tc"], "batch_stats": batch_stats["tc"]}
    # contexts of (weak, t1), (strong, t2), (mixed, t1). A prefix is at most T' - K steps, so
    # the later steps (masked out anyway) are cut off before the transformer: the same
    # contexts for less work (dropout draws differ in shape). With ``buckets`` the cut is
    # rounded up from the prefix to one of a few static lengths (a lax.switch per prefix)
    ctx_keys = jax.random.split(k_ctx, 3)

    def contexts(zs, prefixes, rngs, n):
        return jax.vmap(lambda z, p, rng: tc_module.apply(
            tc_vars, z[:, :n], p, True, method=tc_module.context, rngs={"dropout": rng}))(
            zs, prefixes, rngs)

    limit = steps - k
    if buckets:
        sizes = sorted({-(-limit * j // buckets) for j in range(1, buckets + 1)})

        def bucketed(zs, t, rngs):
            branches = [functools.partial(contexts, n=n) for n in sizes]
            index = jnp.searchsorted(jnp.asarray(sizes), t + 1)
            prefixes = jnp.full((zs.shape[0],), t + 1)
            return jax.lax.switch(index, branches, zs, prefixes, rngs)

        c_w, c_m = bucketed(jnp.stack([z_w, z_m]), t1, ctx_keys[jnp.asarray([0, 2])])
        c_s = bucketed(z_s[None], t2, ctx_keys[1:2])[0]
    else:
        c_w, c_s, c_m = contexts(jnp.stack([z_w, z_s, z_m]), jnp.stack([t1, t2, t1]) + 1,
                                 ctx_keys, limit)

    def futures(z, t):
        idx = t + 1 + jnp.arange(k)
        return jnp.take(z, idx, axis=1).transpose(1, 0, 2)  # [K, B, D]

    predict = lambda c: tc_module.apply(tc_vars, c, method=tc_module.predict)
    loss_tc = tc_infonce(predict(c_w), futures(z_s, t1)) + \
        tc_infonce(predict(c_s), futures(z_w, t2))

    def project(stats, c):
        g, upd = tc_module.apply({"params": params["tc"], "batch_stats": stats}, c, True,
                                 method=tc_module.project, mutable=["batch_stats"])
        return upd["batch_stats"], g

    stats_tc, (u, v, m) = jax.lax.scan(project, batch_stats["tc"], jnp.stack([c_w, c_s, c_m]))
    loss_cc = nt_xent(u, v, cfg.tau)
    loss_sicc = sicc(m, u, perm, lam, cfg.tau, cfg.extra_negatives)
    loss = weights[0] * loss_tc + weights[1] * loss_cc + weights[2] * loss_sicc
    new_stats = {"encoder": stats_enc, "tc": stats_tc}
    return loss, (new_stats, PretrainInfo(loss, loss_tc, loss_cc, loss_sicc))


@functools.lru_cache(maxsize=32)
def make_pretrain_step(model: ModelConfig, cfg: PretrainConfig):
    """The pretraining step of ``R`` runs side by side, with ``model`` and ``cfg`` closed over.

    Run ``r``'s step ``i`` draws its batch, views and dropout from ``fold_in(keys[r], i)``
    (``i = state.step``), so a run's trajectory depends on its key alone, not on which runs
    share the call; with ``cfg.augment_draw == "once"`` its fixed views come from
    ``fold_in(keys[r], 2**31 - 1)``. With ``R = 1`` and ``cfg.context_buckets > 0`` the step
    runs without ``vmap`` and with bucketed contexts (see :func:`pretrain_loss`). The step is
    traceable, not jitted; the factory is cached per config, so repeated calls return the same
    function (one compilation under ``jax.jit``).

    Args:
      model: the :class:`ModelConfig`.
      cfg: the :class:`PretrainConfig`.

    Returns:
      ``step(keys, state, pool_x, offsets, counts, log_probs, weights, aug_table=None) ->
      (state, info)`` with ``keys`` ``(R,)`` PRNG keys (one per run), ``state`` a
      :class:`PretrainState` whose leaves are stacked to ``(R, ...)`` (the ``step`` counter a
      shared scalar), ``pool_x`` float32 ``(N, 1, L)`` grouped by dataset, ``offsets`` and
      ``counts`` int32 ``(D,)`` (see :class:`jaxpapers.xit.data.Pool`), ``log_probs`` float32
      ``(R, D)`` (``log p_d`` per run, ``-inf`` for a dataset a run never draws), ``weights``
      float32 ``(R, 4)`` (:meth:`Objective.as_tuple` per run) and ``aug_table`` float32
      ``(D, 3)`` per-dataset strengths (:func:`jaxpapers.xit.augment.augment_table`; None:
      ``cfg.augment`` for all). The new state has ``step + 1``; ``info`` is a
      :class:`PretrainInfo` of ``(R,)`` losses.

    Raises:
      ValueError: at trace time, keys that are not PRNG keys or pool arrays of the wrong shape
        (see :func:`jaxpapers.xit.data.sample_batch`).

    Example:
      One run (the first call compiles the whole step)::

          import jax, jax.numpy as jnp
          from jaxpapers import xit
          model = xit.ModelConfig(length=32, channels=(4, 4, 8), tc_width=8, tc_depth=1,
                                  tc_heads=2, tc_mlp=8, timesteps=2)
          cfg = xit.PretrainConfig(batch_size=4, steps=1)
          state = xit.init_pretrain(jax.random.key(0), model, cfg)
          state = jax.tree_util.tree_map(lambda a: a[None], state)._replace(step=state.step)
          pool = jax.random.normal(jax.random.key(1), (8, 1, 32))
          step = xit.make_pretrain_step(model, cfg)
          state, info = step(jax.random.split(jax.random.key(2), 1), state, pool,
                             jnp.asarray([0, 4]), jnp.asarray([4, 4]),
                             jnp.log(jnp.full((1, 2), 0.5)),
                             jnp.asarray([xit.OBJECTIVES["xit"].as_tuple()]))
          # int(state.step) == 1, info.loss.shape == (1,)
    """
    optimizer = pretrain_optimizer(cfg)

    def one_run(params, stats, opt_state, step, run_key, pool_x, offsets, counts, log_probs,
                weights, aug_table, buckets=0):
        key = jax.random.fold_in(run_key, step)
        k_batch, k_loss = jax.random.split(key)
        x, ds_id, rows = sample_rows(k_batch, pool_x, offsets, counts, log_probs,
                                     cfg.batch_size)
        aug_key = jax.random.fold_in(run_key, ONCE_STREAM)
        grad_fn = jax.value_and_grad(pretrain_loss, has_aux=True)
        (_, (stats, info)), grads = grad_fn(params, stats, k_loss, x, ds_id, weights, model, cfg,
                                            rows, aug_table, aug_key, buckets)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), stats, opt_state, info

    def step(keys, state: PretrainState, pool_x, offsets, counts, log_probs, weights,
             aug_table=None):
        check_key(keys, "keys")
        if keys.shape[0] == 1 and cfg.context_buckets:  # one run: no vmap, bucketed
            squeeze = lambda tree: jax.tree_util.tree_map(lambda a: a[0], tree)
            params, stats, opt_state, info = one_run(
                squeeze(state.params), squeeze(state.batch_stats), squeeze(state.opt_state),
                state.step, keys[0], pool_x, offsets, counts, log_probs[0], weights[0],
                aug_table, cfg.context_buckets)
            params, stats, opt_state, info = jax.tree_util.tree_map(
                lambda a: a[None], (params, stats, opt_state, info))
            return PretrainState(params, stats, opt_state, state.step + 1), info
        params, stats, opt_state, info = jax.vmap(
            one_run, in_axes=(0, 0, 0, None, 0, None, None, None, 0, 0, None))(
            state.params, state.batch_stats, state.opt_state, state.step, keys, pool_x,
            offsets, counts, log_probs, weights, aug_table)
        return PretrainState(params, stats, opt_state, state.step + 1), info

    return step
