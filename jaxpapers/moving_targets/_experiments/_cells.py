"""One cell of the experiment: a trainer on a task, all seeds vmapped in one compiled program.

A cell runs ``block`` (``check_every`` iterations and one free-run check) over the seeds inside the
toolkit's checkpointed :func:`~jaxpapers.experiments.train_loop`: one loop step is one block for
every seed, skipped by a ``lax.cond`` once every seed is done, so a cell ends early and an
interrupted cell resumes bitwise from its checkpoint. Seed ``i`` uses the keys
``vmap(train)`` would give it, so a cell equals ``jax.vmap(train)`` over the same keys (tested).

Results are keyed by :class:`CellKey` ``(task, D, H, method)``.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers.experiments import RunContext, train_loop
from jaxpapers.moving_targets import _train
from jaxpapers.moving_targets._events import EventSpec
from jaxpapers.moving_targets._model import free_run_error
from jaxpapers.moving_targets._optim import Minimizer
from jaxpapers.moving_targets._tasks import delay_task, limit_cycle_task, parity_task
from jaxpapers.moving_targets._train import (
    BPTT,
    Budget,
    Hybrid,
    MTAlternating,
    MTJoint,
    MTShooting,
    MTVarpro,
    RandomSearch,
)

__all__ = ["CellKey", "METHODS", "run_cell", "task_specs", "TASK_THRESHOLDS"]


class CellKey(NamedTuple):
    """A cell's key: the task, its size (the delay ``D``; 0 for the fixed tasks), the number of
    hidden nodes and the method's name."""

    task: str
    size: int
    hidden: int
    method: str


#: the headline temporal weighting of the paper method: eq. 13's alpha is "small and positive"
#: with no value given; 0.01 is the smallest positive value of the sweep {0, 0.01, 1}, fixed
#: before any run (the sweep is reported beside it)
HEADLINE_ALPHA = 0.01

#: the runner's method names -> trainer configs (paper methods first, then beyond the paper).
#: "MT-joint" is the paper's method: weights and moving targets minimised jointly on the quartic,
#: temporally weighted output deficit (eq. 13; [TT]); "MT-varpro" is the activation-space
#: formalism with the exact weight solve inside every evaluation.
METHODS: dict[str, Any] = {
    "MT-joint": MTJoint(power=4, alpha=HEADLINE_ALPHA),
    "MT-varpro": MTVarpro(lam=1e-3),
    "MT-alternating": MTAlternating(lam=1e-3, inner=10),
    "BPTT-LBFGS": BPTT(),
    "BPTT-Adam": BPTT(minimizer=Minimizer("adam", learning_rate=0.05, clip_norm=1.0)),
    "random": RandomSearch(scale=10.0, batch=50),
    "random [-100, 100]": RandomSearch(scale=100.0, batch=50),
    "hybrid": Hybrid(MTJoint(power=4, alpha=HEADLINE_ALPHA), BPTT(), 0.5),
    # the alpha sweep of the paper method
    "MT-joint alpha=0": MTJoint(power=4, alpha=0.0),
    "MT-joint alpha=1": MTJoint(power=4, alpha=1.0),
    # beyond the paper
    "MT-joint don't-care": MTJoint(power=4, alpha=HEADLINE_ALPHA),
    "MT-varpro don't-care": MTVarpro(lam=1e-3),
    "MT-varpro curvature": MTVarpro(lam=1e-3, minimizer=Minimizer("curvature")),
    "MT-varpro margin": MTVarpro(lam=1e-3, margin=0.05),
    "MT-varpro alpha=1": MTVarpro(lam=1e-3, alpha=1.0),
    "MT-varpro constant init": MTVarpro(lam=1e-3, init="constant", init_scale=3.0),
    "hybrid MT-varpro": Hybrid(MTVarpro(lam=1e-3), BPTT(), 0.5),
    # sensitivity: the spec's earlier inferred task (targets 0.1 / 0.9, initial outputs 0.1)
    "MT-joint @0.1/0.9": MTJoint(power=4, alpha=HEADLINE_ALPHA),
    "MT-varpro @0.1/0.9": MTVarpro(lam=1e-3),
    "BPTT-LBFGS @0.1/0.9": BPTT(),
}
#: methods trained on the delay task with a don't-care target before the decision step
DONT_CARE = ("MT-joint don't-care", "MT-varpro don't-care")
#: the delay task's target outputs: 0 / 1 (off / on); the activation-space trainers need finite
#: targets and train on the nearest levels inside the success band (inferred); the sensitivity
#: cells ("@0.1/0.9") train and are judged on the spec's earlier inferred 0.1 / 0.9
PAPER_LEVELS = (0.0, 1.0)
FINITE_LEVELS = (0.05, 0.95)
OLD_LEVELS = (0.1, 0.9)
#: free-run success thresholds ([TT]: 5 % on the limit cycle, 10 % on the 100-step problem)
TASK_THRESHOLDS = {"delay": 0.1, "limit_cycle": 0.05, "parity": 0.1}


def shooting_method(segment: int) -> MTShooting:
    return MTShooting(segment=segment)


def method_config(name: str):
    if name.startswith("MT-shooting K="):
        return shooting_method(int(name.split("=")[1]))
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose from {sorted(METHODS)} or "
                         "'MT-shooting K=<segment>'")
    return METHODS[name]


def _activation_space(method) -> bool:
    first = method.first if isinstance(method, Hybrid) else method
    return first.activation_space


def delay_levels(name: str) -> tuple[tuple[float, float], tuple[float, float], float]:
    """``(training levels, judged levels, initial output)`` of a method on the delay task."""
    if name.endswith("@0.1/0.9"):
        return OLD_LEVELS, OLD_LEVELS, OLD_LEVELS[0]
    if _activation_space(method_config(name)):
        return FINITE_LEVELS, PAPER_LEVELS, 0.0
    return PAPER_LEVELS, PAPER_LEVELS, 0.0


def task_specs(task: str, size: int, hidden: int, method: str, dtype
               ) -> tuple[EventSpec, EventSpec, EventSpec | None]:
    """``(training events, events judged during training, full-task events or None)`` of a cell.

    A don't-care cell is judged during training on what it was trained on (the decision step
    ``D+1`` only) and, at the end, also on the full task (third element); other cells are judged
    on the full task throughout (third element None)."""
    if task == "delay":
        (low, high), (e_low, e_high), initial = delay_levels(method)
        dc = method in DONT_CARE
        train = delay_task(size, hidden, low=low, high=high, initial=initial, dont_care=dc,
                           dtype=dtype)
        full = delay_task(size, hidden, low=e_low, high=e_high, initial=initial, dtype=dtype)
        if dc:
            judged = delay_task(size, hidden, low=e_low, high=e_high, initial=initial,
                                dont_care=True, dtype=dtype)
            return train, judged, full
        return train, full, None
    if task == "limit_cycle":
        spec = limit_cycle_task(hidden, dtype=dtype)
    elif task == "parity":
        spec = parity_task(hidden, dtype=dtype)
    else:
        raise ValueError(f"unknown task {task!r}")
    return spec, spec, None


def checkpoint_name(key: CellKey, phase: str) -> str:
    """The cell's checkpoint folder stem: only ``[A-Za-z0-9_.=-]`` (a method name such as
    ``random [-100, 100]`` or ``MT-joint @0.1/0.9`` would otherwise make a nested folder or a
    path the checkpoint store cannot read back)."""
    raw = f"{key.task}-D{key.size}-H{key.hidden}-{key.method}-{phase}"
    return re.sub(r"[^A-Za-z0-9_.=-]", "_", raw)


class Loop(NamedTuple):
    """The checkpointed loop's state: every seed's training state and the shared block count."""

    seeds: Any
    step: jax.Array


@dataclasses.dataclass(frozen=True)
class CellSettings:
    budget: int
    check_every: int
    chunk: int
    restarts: bool = False


def _phase(ctx: RunContext, key: CellKey, phase: str, method, spec, eval_spec, budget: Budget,
           state, loop_keys, settings: CellSettings, config_extra: dict):
    """Run one trainer over every seed to the end of ``budget`` (checkpointed)."""
    # every iteration costs at least one evaluation; a whole number of chunks (one compiled
    # program per phase: chunks past the end are skipped in a cond once every seed is done)
    blocks = math.ceil(budget.evaluations / budget.check_every) + 1
    blocks = settings.chunk * math.ceil(blocks / settings.chunk)

    def update(_key, loop: Loop, loop_keys):
        def run(seeds):
            return jax.vmap(lambda k, s: _train.block(jax.random.fold_in(k, loop.step), s, spec,
                                                      method, budget, eval_spec))(loop_keys,
                                                                                  seeds)

        def skip(seeds):
            return seeds, _train.TrainInfo(seeds.loss, jnp.zeros_like(seeds.evals))

        seeds, info = jax.lax.cond(jnp.all(loop.seeds.done), skip, run, loop.seeds)
        metrics = {"evals": seeds.evals, "free_run_error": seeds.free_run_error,
                   "loss": seeds.loss}
        return Loop(seeds, loop.step + 1), metrics

    name = checkpoint_name(key, phase)
    config = {"cell": key._asdict(), "phase": phase, "method": method, "budget": budget,
              "seeds": int(loop_keys.shape[0]), **config_extra}
    loop, metrics = train_loop(update, Loop(state, jnp.int32(0)), jax.random.key(0), blocks,
                               args=(loop_keys,), chunk=settings.chunk,
                               checkpointer=ctx.checkpointer(name, config),
                               show_progress=ctx.show_progress and ctx.is_primary,
                               desc=f"{key.method} D={key.size}" if key.task == "delay"
                               else f"{key.method} {key.task}", timer=ctx.timer)
    return loop.seeds, metrics


def run_cell(ctx: RunContext, seed_keys, key: CellKey, settings: CellSettings, dtype,
             config_extra: dict | None = None) -> dict[str, Any]:
    """Train ``key.method`` on one task for every seed; per-seed results as NumPy arrays."""
    method = method_config(key.method)
    spec, eval_spec, full_spec = task_specs(key.task, key.size, key.hidden, key.method, dtype)
    budget = Budget(evaluations=settings.budget, threshold=TASK_THRESHOLDS[key.task],
                    check_every=settings.check_every,
                    restarts=settings.restarts and getattr(method, "restartable", True))
    extra = config_extra or {}
    keys = jax.vmap(jax.random.split)(seed_keys)             # as train(): (init, loop) per seed
    init_keys, loop_keys = ctx.shard(keys[:, 0]), ctx.shard(keys[:, 1])
    first = method.first if isinstance(method, Hybrid) else method
    first_budget = method.first_budget(budget) if isinstance(method, Hybrid) else budget
    init = ctx.timer.jit(jax.vmap(lambda k: _train.init(k, spec, first)))
    state = init(init_keys)
    state, metrics = _phase(ctx, key, "train", first, spec, eval_spec, first_budget, state,
                            loop_keys, settings, extra)
    curves = [metrics]
    if isinstance(method, Hybrid):
        start = ctx.timer.jit(jax.vmap(lambda s: _train.hybrid_start(s, spec, method, budget)))
        state = start(state)
        second_keys = jax.vmap(lambda k: jax.random.fold_in(k, 2**31 - 1))(loop_keys)
        state, metrics = _phase(ctx, key, "bptt", method.second, spec, eval_spec, budget, state,
                                second_keys, settings, extra)
        curves.append(metrics)
    summary_method = method.second if isinstance(method, Hybrid) else method
    summarize = ctx.timer.jit(jax.vmap(lambda s: _train.summarize(s, spec, summary_method,
                                                                  eval_spec=eval_spec)))
    out = ctx.gather(summarize(state))
    result = {name: np.asarray(value) for name, value in out._asdict().items()}
    if full_spec is not None:
        full_error = ctx.gather(ctx.timer.jit(jax.vmap(
            lambda s: free_run_error(s.weights, full_spec)))(state))
        result["free_run_error_full_task"] = np.asarray(full_error)
        result["success_full_task"] = np.asarray(budget.succeeded(np.asarray(full_error)))
    result["curve_evals"] = np.concatenate([np.asarray(ctx.gather(c["evals"])) for c in curves])
    result["curve_error"] = np.concatenate([np.asarray(ctx.gather(c["free_run_error"]))
                                            for c in curves])
    result["state"] = state
    return result


def run_cells_equal_vmap_train(seed_keys, key: CellKey, budget: int, check_every: int, dtype,
                               restarts: bool = False):
    """``jax.vmap(train)`` over the cell's seeds, for the test that a cell equals it."""
    method = method_config(key.method)
    spec, eval_spec, _ = task_specs(key.task, key.size, key.hidden, key.method, dtype)
    b = Budget(evaluations=budget, threshold=TASK_THRESHOLDS[key.task], check_every=check_every,
               restarts=restarts and getattr(method, "restartable", True))
    return jax.jit(jax.vmap(lambda k: _train.train(k, spec, method, b, eval_spec=eval_spec)))(
        seed_keys)
