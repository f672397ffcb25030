"""Drivers of the reproduction: pretrain all encoders at once, fine-tune every (encoder, subset
seed) pair at once, and embed series for the latent-space figure.

Structured keys: :class:`EncoderKey` names an encoder (``objective``, ``sources``, ``seed``);
scratch encoders are the initial parameters of seed ``s`` (every pretraining run of seed ``s``
starts from the same parameters and sees the same batches and augmentations when it samples
from the same datasets, so differences between rows of one seed are paired).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers.experiments import train_loop
from jaxpapers.xit._config import (
    OBJECTIVES,
    FinetuneConfig,
    ModelConfig,
    PretrainConfig,
    augment_table,
)
from jaxpapers.xit._finetune import evaluate, init_finetune, make_finetune_step
from jaxpapers.xit._pretrain import init_pretrain, make_pretrain_step
from jaxpapers.xit.data import Pool, dataset_probabilities, k_per_class, load_dataset

ALL = "all"
HELD_OUT = "held-out"  # sources: the pool without the fine-tuning targets' sets


@functools.lru_cache(maxsize=64)
def _loop_update(step):
    """``step(keys, state, *args)`` as a ``train_loop`` update ``(loop_key, state, keys,
    *args)``. The runs draw from their own keys (``fold_in(keys[r], state.step)`` inside the
    step), so the loop's per-step key is not needed. Cached, so one step gives one update
    object and ``train_loop`` compiles it once."""

    def update(loop_key, state, keys, *args):
        del loop_key
        return step(keys, state, *args)

    return update


class EncoderKey(NamedTuple):
    objective: str  # "scratch" or a key of OBJECTIVES
    sources: str    # "all" or the one source dataset's name
    seed: int
    variant: str = ""  # "" or the name of an inferred-choice variant (its pretraining config)


def label(key: EncoderKey) -> str:
    names = {"scratch": "scratch", "ts_tcc": "TS-TCC", "xit": "XIT",
             "xit_no_mixup": "XIT w/o XD-MixUp", "xit_no_sicc": "XIT w/o SICC"}
    text = names[key.objective]
    if key.variant:
        text = f"{text} [{key.variant}]"
    if key.sources == ALL:
        return text
    if key.sources == HELD_OUT:
        return f"{text}, held-out"
    return f"{text}, one source ({key.sources})"


@dataclasses.dataclass(frozen=True)
class Pretrained:
    keys: tuple              # EncoderKey of each stacked run
    params: Any              # stacked encoder params [R, ...] (NumPy)
    stats: Any               # stacked encoder batch stats [R, ...]
    init_params: Any         # per seed: the initial encoder params / stats (scratch)
    init_stats: Any
    seeds: tuple
    losses: dict             # "loss"/"tc"/"cc"/"sicc": [steps, R]


def pretrain_all(ctx, key, pool: Pool, runs: list[EncoderKey], model: ModelConfig,
                 cfg: PretrainConfig, name: str = "pretrain", objective=None,
                 held_out=()) -> Pretrained:
    """Pretrain ``runs`` side by side (one compiled step, vmapped), checkpointed and resumable
    through ``ctx.checkpointer``; the run axis is sharded with ``ctx.shard``. ``objective``
    (an :class:`~jaxpapers.xit.Objective`) replaces the runs' preset weights. Runs whose
    ``sources`` is :data:`HELD_OUT` never draw the pool sets named in ``held_out``; the
    augmentation strengths of each pool set come from ``cfg`` (:func:`augment_table`)."""
    seeds = tuple(sorted({r.seed for r in runs}))
    init_keys = {s: jax.random.fold_in(jax.random.fold_in(key, 1), s) for s in seeds}
    data_keys = {s: jax.random.fold_in(jax.random.fold_in(key, 2), s) for s in seeds}
    inits = {s: init_pretrain(init_keys[s], model, cfg) for s in seeds}
    stack = lambda trees: jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *trees)
    state = stack([inits[r.seed] for r in runs])._replace(step=jnp.int32(0))
    log_probs = []
    for r in runs:
        if r.sources == ALL:
            active = None
        elif r.sources == HELD_OUT:
            active = [n not in held_out for n in pool.names]
        else:
            active = [n == r.sources for n in pool.names]
        p = dataset_probabilities(pool.counts, cfg.sampling, cfg.temperature, active)
        with np.errstate(divide="ignore"):
            log_probs.append(np.log(p).astype(np.float32))
    weights = np.asarray([(objective or OBJECTIVES[r.objective]).as_tuple() for r in runs],
                         np.float32)
    run_keys = jnp.stack([data_keys[r.seed] for r in runs])
    per_run = ctx.shard((state.params, state.batch_stats, state.opt_state, run_keys,
                         jnp.asarray(np.stack(log_probs)), jnp.asarray(weights)))
    state = state._replace(params=per_run[0], batch_stats=per_run[1], opt_state=per_run[2])
    pool_args = ctx.replicate((jnp.asarray(pool.x), jnp.asarray(pool.offsets),
                               jnp.asarray(pool.counts)))
    table = ctx.replicate(jnp.asarray(augment_table(cfg, pool.names)))
    update = _loop_update(make_pretrain_step(model, cfg))
    config = {"model": model, "pretrain": cfg, "runs": [tuple(r) for r in runs],
              "pool": list(pool.names), "pool_size": int(pool.x.shape[0])}
    state, info = train_loop(update, state, key, cfg.steps,
                             args=(per_run[3], *pool_args, *per_run[4:], table),
                             chunk=cfg.checkpoint_every,
                             checkpointer=ctx.checkpointer(name, config),
                             show_progress=ctx.show_progress and ctx.is_primary,
                             desc=f"pretrain {len(runs)} runs", timer=ctx.timer)
    params, stats, losses = ctx.gather((state.params["encoder"], state.batch_stats["encoder"],
                                        info._asdict()))
    return Pretrained(tuple(runs), params, stats,
                      {s: inits[s].params["encoder"] for s in seeds},
                      {s: inits[s].batch_stats["encoder"] for s in seeds}, seeds, losses)


def merge_pretrained(parts: list[Pretrained]) -> Pretrained:
    """Several pretrainings (e.g. one per pretraining config) as one stack of runs."""
    if len(parts) == 1:
        return parts[0]
    cat = lambda *xs: np.concatenate([np.asarray(x) for x in xs])
    first = parts[0]
    init_params, init_stats = {}, {}
    for part in parts:
        init_params.update(part.init_params)
        init_stats.update(part.init_stats)
    return Pretrained(
        sum((tuple(p.keys) for p in parts), ()),
        jax.tree_util.tree_map(cat, *[p.params for p in parts]),
        jax.tree_util.tree_map(cat, *[p.stats for p in parts]),
        init_params, init_stats, tuple(sorted(init_params)),
        {part: np.concatenate([np.asarray(p.losses[part]) for p in parts], axis=1)
         for part in first.losses})


def encoder_bank(pre: Pretrained, scratch_seeds) -> tuple[list[EncoderKey], Any, Any]:
    """All encoders to fine-tune: scratch (initial parameters of each seed) then the pretrained
    runs; stacked params and stats (NumPy)."""
    keys = [EncoderKey("scratch", ALL, s) for s in scratch_seeds] + list(pre.keys)
    stack = lambda trees: jax.tree_util.tree_map(lambda *xs: np.stack(xs), *trees)
    params = stack([pre.init_params[s] for s in scratch_seeds])
    stats = stack([pre.init_stats[s] for s in scratch_seeds])
    params = jax.tree_util.tree_map(lambda a, b: np.concatenate([a, np.asarray(b)]), params,
                                    pre.params)
    stats = jax.tree_util.tree_map(lambda a, b: np.concatenate([a, np.asarray(b)]), stats,
                                   pre.stats)
    return keys, params, stats


@dataclasses.dataclass(frozen=True)
class Target:
    name: str
    train: Any   # Dataset
    test: Any


def load_target(name: str, length: int, data_dir=None) -> Target:
    return Target(name, load_dataset(name, "train", length=length, data_dir=data_dir),
                  load_dataset(name, "test", length=length, data_dir=data_dir))


def finetune_grid(ctx, key, target: Target, k: int, subset_seeds: int, enc_params, enc_stats,
                  model: ModelConfig, cfg: FinetuneConfig) -> dict[str, np.ndarray]:
    """Fine-tune every encoder of the bank on ``k`` labels per class of ``target``'s train
    split, for each subset seed, and evaluate on its whole test split.

    Returns ``{metric: [num_encoders, subset_seeds]}``. Subset ``s`` and the head's
    initialisation and dropout stream are shared by all encoders (paired). With
    ``cfg.schedule == "plateau"`` the train-split series outside subset ``s`` are its
    validation set (their labels drive the step-size schedule only)."""
    num_enc = jax.tree_util.tree_leaves(enc_params)[0].shape[0]
    nc = target.train.num_classes
    subsets = [k_per_class(target.train.y, k, s, nc) for s in range(subset_seeds)]
    x_sub = np.stack([target.train.x[i] for i in subsets])           # [S, n, C, L]
    y_sub = np.stack([target.train.y[i] for i in subsets])
    rest = [np.setdiff1d(np.arange(target.train.y.shape[0]), i) for i in subsets]
    validation = cfg.schedule == "plateau"
    head_keys = jax.random.split(jax.random.fold_in(key, k), subset_seeds)
    rep = lambda a: np.repeat(np.asarray(a)[None], num_enc, axis=0).reshape(
        (num_enc * subset_seeds,) + np.shape(a)[1:])
    tile = lambda a: np.repeat(np.asarray(a), subset_seeds, axis=0)

    def init(head_key, p, s):
        return init_finetune(head_key, p, s, model, cfg, nc)

    params = jax.tree_util.tree_map(tile, enc_params)
    stats = jax.tree_util.tree_map(tile, enc_stats)
    all_head_keys = head_keys[jnp.tile(jnp.arange(subset_seeds), num_enc)]
    state = jax.vmap(init)(all_head_keys, params, stats)._replace(step=jnp.int32(0))
    run_keys = jax.vmap(lambda k_: jax.random.fold_in(k_, 1))(all_head_keys)
    data = [rep(x_sub), rep(y_sub)]
    if validation:
        data += [rep(np.stack([target.train.x[i] for i in rest])),
                 rep(np.stack([target.train.y[i] for i in rest]))]
    sharded = ctx.shard((state.params, state.batch_stats, state.opt_state, run_keys,
                         *[jnp.asarray(d) for d in data]))
    state = state._replace(params=sharded[0], batch_stats=sharded[1], opt_state=sharded[2])
    update = _loop_update(make_finetune_step(model, cfg, nc))
    state, _ = train_loop(update, state, key, cfg.steps, args=sharded[3:], chunk=cfg.steps,
                          timer=ctx.timer)
    x_test = ctx.replicate(jnp.asarray(target.test.x))
    y_test = ctx.replicate(jnp.asarray(target.test.y))
    scores = ctx.timer.jit(jax.vmap(
        lambda p, s, x, y: evaluate(p, s, x, y, model, nc), in_axes=(0, 0, None, None)))(
        state.params, state.batch_stats, x_test, y_test)
    scores = ctx.gather(scores)
    return {m: np.asarray(v, np.float64).reshape(num_enc, subset_seeds)
            for m, v in scores.items()}


def embed(ctx, enc_params, enc_stats, x, model: ModelConfig) -> np.ndarray:
    """Eval-mode encoder features (time-averaged normalised latents) of series ``x [N, 1, L]``
    for each stacked encoder: ``[E, N, 128]``."""
    encoder = model.encoder()

    def features(p, s, xs):
        z = encoder.apply({"params": p, "batch_stats": s}, xs)
        z = z * jax.lax.rsqrt(jnp.sum(z * z, -1, keepdims=True) + 1e-8)
        return z.mean(axis=1)

    fn = ctx.timer.jit(jax.vmap(features, in_axes=(0, 0, None)))
    return np.asarray(ctx.gather(fn(enc_params, enc_stats, jnp.asarray(x))))
