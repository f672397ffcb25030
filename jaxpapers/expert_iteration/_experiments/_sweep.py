"""The expert's tuning sweep: which N-MCTS settings make the strongest searcher around a given
apprentice (``jaxpapers reproduce expert_iteration --scale sweep5 | sweep7``).

The paper treats the prior's softmax temperature (and ``w_a``) as search hyper-parameters tuned
for playing strength (spec Sec. 3.2). We do the same by measurement: apprentices are trained by
online ExIt with the landed expert (``w_a = S / n^2``, ``c_b = 1``, temperature 1, value head
trained on the self-play outcomes so that ``w_v`` can be swept); at an early and the final
iteration of each run, N-MCTS-S with every setting of a grid over the prior temperature,
``w_a``, ``c_b``, ``w_v`` and the value of unvisited edges plays

* the greedy apprentice it is built on (the "expert beats its apprentice" test), and
* pure MCTS-S (uniform prior, ``c_b = 1``, rollouts; the "N-MCTS beats MCTS" test),

every opening with both colours. Win rates are pooled over the apprentices (runs x stages) with
binomial standard errors; per-stage rates are kept too. The pure-MCTS reference (same budget)
plays the greedy apprentices as well.

Choice rule (fixed before the runs): the setting with the largest *lower* of its two pooled
win rates (an expert must beat both its apprentice and pure MCTS); the scales of
``_reproduce.py`` take it, with the table in ``results/expert_iteration/sweep*/``.
"""

from __future__ import annotations

import dataclasses
import itertools

import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers.experiments import Row, RunResult
from jaxpapers.experiments.report import pyplot, save_figure
from jaxpapers.experiments.stats import Estimate
from jaxpapers.expert_iteration._evaluate import make_agent, play_matches
from jaxpapers.expert_iteration._exit import ExItConfig
from jaxpapers.expert_iteration._experiments._training import run_exit
from jaxpapers.expert_iteration._network import make_apprentice
from jaxpapers.expert_iteration._search import SearchConfig

__all__ = ["SweepScale", "run_sweep", "grid"]


@dataclasses.dataclass(frozen=True)
class SweepScale:
    """A sweep of the expert's settings at one board size and budget.

    Attributes:
      train: the apprentices' ExIt (its ``search`` is the expert they were trained with).
      iterations: ExIt iterations of the training.
      runs: independent trainings (seeds).
      stages: iterations whose apprentices are swept (0 = the untrained network).
      simulations: ``S`` of every searcher in the sweep.
      temperatures, prior_weights, uct_cs, value_weights, unvisited_values: the grid (full
        product).
      repeats: times each opening is played with each colour.
      pairs_per_call: matches per compiled call.
      one_at_a_time: instead of the full product, the base setting (the first value of every
        tuple) and every setting that changes one factor from it.
      extra: further settings appended to the grid (e.g. the landed expert).
    """

    train: ExItConfig
    iterations: int
    runs: int
    stages: tuple[int, ...]
    simulations: int
    temperatures: tuple[float, ...]
    prior_weights: tuple[float, ...]
    uct_cs: tuple[float, ...]
    value_weights: tuple[float, ...]
    unvisited_values: tuple[float, ...]
    repeats: int = 1
    pairs_per_call: int = 16
    one_at_a_time: bool = False
    extra: tuple[dict, ...] = ()

    def __post_init__(self):
        for name in ("iterations", "runs", "simulations", "repeats", "pairs_per_call"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"SweepScale.{name} must be a positive int; got {value!r}")
        if not self.stages or any(not 0 <= s <= self.iterations for s in self.stages):
            raise ValueError(f"SweepScale.stages must lie in [0, iterations]; got {self.stages}")
        for setting in grid(self):     # every grid point must be a valid search
            SearchConfig(num_simulations=self.simulations, **setting)


def grid(scale: SweepScale) -> list[dict]:
    """The settings swept (a full product, or one factor at a time; in a fixed order)."""
    names = ("prior_temperature", "prior_weight", "uct_c", "value_weight", "unvisited_value")
    axes = (scale.temperatures, scale.prior_weights, scale.uct_cs, scale.value_weights,
            scale.unvisited_values)
    if scale.one_at_a_time:
        base = {name: values[0] for name, values in zip(names, axes, strict=True)}
        settings = [base] + [{**base, name: v} for name, values in zip(names, axes, strict=True)
                             for v in values[1:]]
    else:
        settings = [dict(zip(names, point, strict=True))
                    for point in itertools.product(*axes)]
    return settings + [dict(s) for s in scale.extra]


def _label(setting: dict) -> str:
    u = setting["unvisited_value"]
    return (f"T={setting['prior_temperature']:g}, w_a={setting['prior_weight']:g}, "
            f"c_b={setting['uct_c']:g}, w_v={setting['value_weight']:g}, "
            f"unvisited={'inf' if np.isinf(u) else f'{u:g}'}")


def _stack(agents):
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *agents)


def _pooled(wins, games) -> Estimate:
    p = wins / games
    return Estimate(float(p), float(np.sqrt(max(p * (1 - p), 0.25 / games) / games)), int(games))


def run_sweep(ctx, scale: SweepScale) -> RunResult:
    key = jax.random.key(ctx.seed)
    k_train, k_match = jax.random.split(key)
    cfg = scale.train
    n, sims = cfg.board_size, scale.simulations
    exit_run = run_exit(ctx, cfg, scale.iterations, k_train, scale.runs, "sweep")
    apprentices = [(r, s, jax.tree_util.tree_map(lambda x, s=s, r=r: x[s, r],
                                                  exit_run.snapshots))
                   for s in scale.stages for r in range(scale.runs)]
    settings = grid(scale)
    some = apprentices[0][2]
    mcts = make_agent(some, use_network=False, simulations=sims)
    # players: every setting, then the pure-MCTS reference; opponents: greedy apprentice, MCTS
    pairs, tags = [], []
    for a, (_, _, params) in enumerate(apprentices):
        greedy = make_agent(params)
        for j, setting in enumerate(settings):
            expert = make_agent(params, simulations=sims, **setting)
            pairs += [(expert, greedy), (expert, mcts)]
            tags += [(j, a, "apprentice"), (j, a, "mcts")]
        pairs.append((mcts, greedy))
        tags.append((len(settings), a, "apprentice"))
    module = make_apprentice(cfg.network)
    openings = jnp.tile(jnp.arange(n * n, dtype=jnp.int32), scale.repeats)
    config = SearchConfig(num_simulations=sims, uct_c=1.0)
    match = ctx.timer.jit(lambda k, a, b: play_matches(k, a, b, module, n, config, openings))
    size = scale.pairs_per_call
    calls = [list(range(i, min(i + size, len(pairs)))) for i in range(0, len(pairs), size)]
    # wins[setting, apprentice, opponent], games per match
    wins = np.zeros((len(settings) + 1, len(apprentices), 2))
    per_match = 2 * n * n * scale.repeats
    for c, call in enumerate(ctx.progress(calls, desc="sweep")):
        padded = call + [call[0]] * (size - len(call))
        result = match(jax.random.fold_in(k_match, c), _stack([pairs[i][0] for i in padded]),
                       _stack([pairs[i][1] for i in padded]))
        a_won = np.asarray(result.a_won, np.float64).reshape(size, -1)
        for row, i in enumerate(call):
            j, a, opponent = tags[i]
            wins[j, a, 0 if opponent == "apprentice" else 1] += a_won[row].sum()
    return _result(ctx, scale, settings, apprentices, wins, per_match, exit_run)


def _result(ctx, scale, settings, apprentices, wins, per_match, exit_run) -> RunResult:
    sims, n = scale.simulations, scale.train.board_size
    num_app = len(apprentices)
    pooled = wins.sum(1)                                            # [settings + 1, 2]
    total = per_match * num_app
    rates = pooled / total
    lower = rates[:-1].min(1)
    order = np.argsort(-lower, kind="stable")
    best = int(order[0])
    stage_of = np.array([s for _, s, _ in apprentices])
    rows = []
    section = (f"N-MCTS-{sims} settings on {n}x{n}, best first (by the lower of the two win "
               f"rates; pooled over {num_app} apprentices x {per_match} balanced games, "
               "binomial s.e.)")
    for j in order:
        by_stage = ", ".join(
            f"iter {s}: {wins[j, stage_of == s, 0].sum() / (per_match * (stage_of == s).sum()):.2f}"
            f" / {wins[j, stage_of == s, 1].sum() / (per_match * (stage_of == s).sum()):.2f}"
            for s in scale.stages)
        rows.append(Row(f"{_label(settings[j])}: vs greedy apprentice",
                        _pooled(pooled[j, 0], total), section=section,
                        note=f"vs apprentice / vs MCTS by stage: {by_stage}"))
        rows.append(Row(f"{_label(settings[j])}: vs pure MCTS-{sims}",
                        _pooled(pooled[j, 1], total), section=section))
    section = "Reference"
    rows.append(Row(f"pure MCTS-{sims} vs greedy apprentice", _pooled(pooled[-1, 0], total),
                    section=section, note="uniform prior, c_b = 1, w_a = 0"))
    for s in scale.stages:
        mask = stage_of == s
        rows.append(Row(f"pure MCTS-{sims} vs greedy apprentice of iteration {s}",
                        _pooled(wins[-1, mask, 0].sum(), per_match * mask.sum()),
                        section=section))
    chosen = settings[best]
    summary = (f"{n}x{n}, S = {sims}: best setting {_label(chosen)}: "
               f"{rates[best, 0]:.2f} vs the greedy apprentice, {rates[best, 1]:.2f} vs pure "
               f"MCTS-{sims} (pooled over {num_app} apprentices); the landed setting "
               f"(T=1, w_a=S/n^2, c_b=1, w_v=0, unvisited=inf) is in the table if swept; pure "
               f"MCTS-{sims} scores {rates[-1, 0]:.2f} against the apprentices.")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 5))
    ax.scatter(rates[:-1, 1], rates[:-1, 0], s=14, color="C0", label="settings")
    ax.scatter(rates[best, 1], rates[best, 0], s=60, facecolors="none", edgecolors="C3",
               label="chosen")
    ax.axhline(0.5, color="gray", lw=0.8)
    ax.axvline(0.5, color="gray", lw=0.8)
    ax.set_xlabel(f"win rate vs pure MCTS-{sims}")
    ax.set_ylabel("win rate vs the greedy apprentice")
    ax.set_title(f"N-MCTS-{sims} settings, {n}x{n} Hex")
    ax.legend(fontsize=8)
    plots = [save_figure(ctx, fig, "sweep.png", dpi=110)]
    metrics = {
        "settings": settings,
        "wins": wins, "games_per_match": per_match,
        "apprentices": [{"run": r, "iteration": s} for r, s, _ in apprentices],
        "rate_vs_apprentice": rates[:-1, 0], "rate_vs_mcts": rates[:-1, 1],
        "mcts_vs_apprentice": float(rates[-1, 0]),
        "chosen": chosen,
        "train_evaluations": exit_run.evaluations,
    }
    notes = [
        "Apprentices: online ExIt trained with the expert "
        f"T={scale.train.search.prior_temperature:g}, w_a={scale.train.search.prior_weight:g}, "
        f"c_b={scale.train.search.uct_c:g}, w_v={scale.train.search.value_weight:g}; value "
        f"loss weight {scale.train.value_loss_weight:g}; {scale.iterations} iterations, "
        f"{scale.runs} runs; swept at iterations {list(scale.stages)}.",
        "unvisited=inf is UCT's rule (each legal edge tried once first); a finite value is the Q "
        "an unvisited edge is scored with (first-play urgency).",
        "Choice rule: largest lower of the two pooled win rates.",
    ]
    return RunResult(experiment=f"N-MCTS settings sweep on {n}x{n} Hex at S = {sims}",
                     metrics=metrics, table=rows, summary=summary, plots=plots, notes=notes,
                     config={"grid_size": len(settings)})
