"""Drivers of the trainings: the online ExIt loop, REINFORCE at equal network evaluations, and
imitation of a fixed dataset (TPT vs CAT), over several runs (seeds) at once.

Checkpoints: the ExIt and REINFORCE loops save their whole state (networks, Adam, buffer,
snapshots, evaluation counts, iteration and keys) through ``ctx.checkpointer`` after every
iteration; the imitation trainings go through the toolkit's ``train_loop`` with its
checkpointer. Every key is derived from the run's key, the iteration and the step, so a run
resumed with ``--resume`` ends bitwise equal to an uninterrupted one.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers.experiments import train_loop
from jaxpapers.expert_iteration._exit import (
    ExItConfig,
    ExItState,
    _optimizer,
    add_positions,
    chunks_for_iteration,
    exit_step,
    generate_positions,
    init_exit,
    train_steps_for_iteration,
)
from jaxpapers.expert_iteration._experiments._runs import num_runs, over_runs
from jaxpapers.expert_iteration._reinforce import (
    ReinforceConfig,
    init_reinforce,
    reinforce_step,
)

__all__ = ["ExItRun", "ReinforceRun", "run_exit", "run_reinforce", "train_imitation"]


class _Train(NamedTuple):
    params: Any       # [R, ...]
    opt_state: Any    # [R, ...]
    step: jax.Array   # int32[] (shared by the runs)


class _Reinforce(NamedTuple):
    state: Any        # ReinforceState [R]
    step: jax.Array   # int32[]


class ExItRun(NamedTuple):
    """Snapshots ``[I + 1, R, ...]`` of the apprentice (index 0: the initial network), the
    cumulative network evaluations at each ``[I + 1, R]``, per-iteration training losses
    ``[I, R]``, the final state ``[R]`` (buffer included) and the chunks per iteration."""

    snapshots: Any
    evaluations: np.ndarray
    losses: np.ndarray
    state: Any
    chunks: list


class ReinforceRun(NamedTuple):
    snapshots: Any
    evaluations: np.ndarray
    updates: np.ndarray


def _run_keys(key, runs):
    return jax.random.split(key, runs)


@functools.lru_cache(maxsize=16)
def _exit_update(config: ExItConfig, num_devices: int, runs: int):
    """``train_loop`` update: one Adam step for every run (cached: one compile per config)."""
    def one(params, opt_state, buffer, count, key):
        state = ExItState(params, opt_state, buffer, count, jnp.float32(0.0))
        state, info = exit_step(key, state, config)
        return state.params, state.opt_state, info._asdict()

    mapped = over_runs(one, num_devices, runs, unroll=True)

    def update(key, state: _Train, buffer, count):
        keys = jax.vmap(lambda r: jax.random.fold_in(key, r))(jnp.arange(num_runs(count)))
        params, opt_state, metrics = mapped(state.params, state.opt_state, buffer, count, keys)
        return _Train(params, opt_state, state.step + 1), metrics

    return update


@functools.lru_cache(maxsize=16)
def _reinforce_step(config: ReinforceConfig, num_devices: int, runs: int):
    def one(state, key, step):
        state, info = reinforce_step(key, state, step, config)
        return state, info._asdict()

    mapped = over_runs(one, num_devices, runs, unroll=True)

    def update(key, carry: _Reinforce):
        runs_ = num_runs(carry.state.evaluations)
        keys = jax.vmap(lambda r: jax.random.fold_in(key, r))(jnp.arange(runs_))
        steps = jnp.broadcast_to(carry.step, (runs_,))
        state, metrics = mapped(carry.state, keys, steps)
        return _Reinforce(state, carry.step + 1), metrics

    return update


def run_exit(ctx, config: ExItConfig, iterations: int, key, runs: int, name: str) -> ExItRun:
    """Online ExIt for ``iterations`` iterations on ``runs`` independent runs."""
    devices = ctx.num_devices
    keys = _run_keys(key, runs)
    init = jax.jit(jax.vmap(lambda k: init_exit(k, config)))
    state = ctx.shard(init(jax.vmap(lambda k: jax.random.fold_in(k, 0))(keys)))
    snapshots = jax.tree_util.tree_map(
        lambda p: jnp.zeros((iterations + 1,) + p.shape, p.dtype).at[0].set(p), state.params)
    saved = {"state": state, "snapshots": snapshots,
             "evaluations": jnp.zeros((iterations + 1, runs), jnp.float32),
             "losses": jnp.zeros((iterations, runs), jnp.float32),
             "chunks": jnp.zeros(iterations, jnp.int32), "iteration": jnp.int32(0),
             "step": jnp.int32(0), "keys": jax.random.key_data(keys)}
    checkpointer = ctx.checkpointer(f"exit-{name}", {"config": config, "iterations": iterations,
                                                     "runs": runs})
    restored = checkpointer.restore(saved)
    if restored is not None:
        saved = restored[1]
    generate = ctx.timer.jit(over_runs(lambda k, p: generate_positions(k, p, config), devices,
                                       runs))
    add = jax.jit(jax.vmap(add_positions))
    update = _exit_update(config, devices, runs)
    key_train = jax.random.fold_in(key, 1)
    start = int(saved["iteration"])
    for it in ctx.progress(range(start, iterations), desc=f"ExIt {name}", total=iterations):
        state = saved["state"]
        count = int(np.asarray(state.count)[0])
        chunks = chunks_for_iteration(config, count)
        for c in range(chunks):
            chunk_keys = jax.vmap(lambda k, i=it, j=c: jax.random.fold_in(
                jax.random.fold_in(k, i + 1), j))(keys)
            positions, evaluations = generate(ctx.shard(chunk_keys), state.params)
            state = add(state, positions, evaluations)
        steps = train_steps_for_iteration(config, count + chunks * config.chunk_size)
        train = _Train(state.params, state.opt_state, saved["step"])
        train, metrics = train_loop(update, train, key_train, int(train.step) + steps,
                                    args=(state.buffer, state.count), chunk=config.step_chunk,
                                    timer=ctx.timer)
        state = state._replace(params=train.params, opt_state=train.opt_state)
        loss = jnp.mean(metrics["loss"][-steps:], axis=0)
        saved = {"state": state,
                 "snapshots": jax.tree_util.tree_map(lambda s, p, i=it: s.at[i + 1].set(p),
                                                     saved["snapshots"], state.params),
                 "evaluations": saved["evaluations"].at[it + 1].set(state.evaluations),
                 "losses": saved["losses"].at[it].set(loss),
                 "chunks": saved["chunks"].at[it].set(chunks),
                 "iteration": jnp.int32(it + 1), "step": train.step, "keys": saved["keys"]}
        checkpointer.save(it + 1, saved)
    checkpointer.close()
    return ExItRun(saved["snapshots"], np.asarray(ctx.gather(saved["evaluations"]), np.float64),
                   np.asarray(ctx.gather(saved["losses"]), np.float64), saved["state"],
                   [int(c) for c in np.asarray(saved["chunks"])])


def run_reinforce(ctx, config: ReinforceConfig, init_params: Any, targets, key, name: str,
                  chunk: int = 4) -> ReinforceRun:
    """REINFORCE from ``init_params [R]`` until, at each stage ``i``, the mean network
    evaluations reach ``targets[i]`` (ExIt's at its iteration ``i + 1``); a snapshot per stage."""
    devices = ctx.num_devices
    runs = num_runs(init_params)
    stages = len(targets)
    state = jax.jit(jax.vmap(lambda p: init_reinforce(p, config)))(init_params)
    snapshots = jax.tree_util.tree_map(
        lambda p: jnp.zeros((stages + 1,) + p.shape, p.dtype).at[0].set(p), init_params)
    saved = {"state": state, "snapshots": snapshots,
             "evaluations": jnp.zeros((stages + 1, runs), jnp.float32),
             "updates": jnp.zeros(stages + 1, jnp.int32), "stage": jnp.int32(0),
             "step": jnp.int32(0)}
    checkpointer = ctx.checkpointer(f"reinforce-{name}", {
        "config": config, "targets": [float(t) for t in targets], "runs": runs, "chunk": chunk})
    restored = checkpointer.restore(saved)
    if restored is not None:
        saved = restored[1]
    update = _reinforce_step(config, devices, runs)
    start = int(saved["stage"])
    for it in ctx.progress(range(start, stages), desc=f"REINFORCE {name}", total=stages):
        carry = _Reinforce(saved["state"], saved["step"])
        while float(np.mean(ctx.gather(carry.state.evaluations))) < targets[it]:
            carry, _ = train_loop(update, carry, key, int(carry.step) + chunk, chunk=chunk,
                                  timer=ctx.timer)
        saved = {"state": carry.state,
                 "snapshots": jax.tree_util.tree_map(lambda s, p, i=it: s.at[i + 1].set(p),
                                                     saved["snapshots"], carry.state.params),
                 "evaluations": saved["evaluations"].at[it + 1].set(carry.state.evaluations),
                 "updates": saved["updates"].at[it + 1].set(carry.step),
                 "stage": jnp.int32(it + 1), "step": carry.step}
        checkpointer.save(it + 1, saved)
    checkpointer.close()
    return ReinforceRun(saved["snapshots"],
                        np.asarray(ctx.gather(saved["evaluations"]), np.float64),
                        np.asarray(saved["updates"]))


def train_imitation(ctx, config: ExItConfig, buffer, count, init_params: Any, steps: int, key,
                    name: str):
    """Train fresh apprentices ``[R]`` on a fixed dataset (``config.target`` picks TPT or CAT)
    for ``steps`` Adam steps, through ``train_loop`` with a checkpointer; returns
    ``(params [R], losses [steps, R])``."""
    runs = num_runs(init_params)
    opt_state = jax.jit(jax.vmap(_optimizer(config.learning_rate).init))(init_params)
    update = _exit_update(config, ctx.num_devices, runs)
    checkpointer = ctx.checkpointer(f"imitation-{name}", {"config": config, "steps": steps,
                                                          "runs": runs})
    train, metrics = train_loop(update, _Train(init_params, opt_state, jnp.int32(0)), key, steps,
                                args=(buffer, count), chunk=config.step_chunk,
                                checkpointer=checkpointer, timer=ctx.timer)
    return train.params, np.asarray(ctx.gather(metrics["loss"]), np.float64)
