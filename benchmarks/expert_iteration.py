"""Benchmark: Expert Iteration on Hex (jaxpapers.expert_iteration) against pgx and mctx.

Three measurements, each with both sides in the same process, compile timed apart (first call)
and the steady state as the median of ``--repeats`` calls ended by ``block_until_ready``:

1. **Environment steps per second** on 11x11 Hex: a batch of ``B`` games, ``T`` plies of
   uniformly random legal moves inside one ``lax.scan``; ours (``hex.step``, checked moves,
   label-merge win detection) against ``pgx.make("hex")`` with the swap action masked off. Both
   sides draw the move the same way (argmax of uniform noise over the legal cells).
2. **Search simulations per second**: our batched search (``jax.vmap(search)``) against
   ``mctx.muzero_policy`` on the same apprentice network, batch and number of simulations, both
   stepping our Hex in the tree. For equal work per simulation our leaf value is the network's
   alone (``value_weight = 1``, no rollout); the selection rules differ (ExIt's UCT + prior
   bonus against mctx's PUCT), as does the bookkeeping.
3. **Self-play positions labelled per second**: one ExIt chunk (apprentice self-play, sampled
   states, the N-MCTS expert's labels) at the quick scale's settings (5x5, 64 simulations).

Anchors that are not installed are skipped with a message. Usage::

    python benchmarks/expert_iteration.py [--smoke] [--repeats 7] [--json out.json]
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    import jaxpapers  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax
import jax.numpy as jnp

from jaxpapers.experiments import bench
from jaxpapers.expert_iteration import (
    ApprenticeConfig,
    ExItConfig,
    SearchConfig,
    generate_positions,
    hex,
    init_exit,
    search,
)
from jaxpapers.expert_iteration.models import make_apprentice, network_evaluator

ENV_CASES = ((1024, 60), (4096, 60))          # (batch, plies) on 11x11
SEARCH_CASES = ((5, 64, 64), (9, 64, 128))    # (board, batch, simulations)
SMOKE_ENV = ((8, 4),)
SMOKE_SEARCH = ((3, 2, 4),)
NET = ApprenticeConfig(channels=32, depth=3)
SMOKE_NET = ApprenticeConfig(channels=4, depth=1, value_hidden=4)


def _pgx():
    try:
        import pgx
    except ImportError:
        return None, "pgx not installed (pip install pgx)"
    return pgx, f"pgx {pgx.__version__}"


def _mctx():
    try:
        import mctx
    except ImportError:
        return None, "mctx not installed (pip install mctx)"
    return mctx, f"mctx {getattr(mctx, '__version__', '?')}"


def _pick(key, legal):
    """A uniformly random legal cell (index 0 where nothing is legal)."""
    u = jax.random.uniform(key, legal.shape)
    return jnp.argmax(jnp.where(legal, u, -1.0), axis=-1).astype(jnp.int32)


def ours_env(batch, plies):
    def run(key):
        start = jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, (batch,) + x.shape),
                                       hex.init(11))

        def ply(states, k):
            actions = _pick(k, jax.vmap(hex.legal_mask)(states))
            return jax.vmap(hex.step)(states, actions), None

        final, _ = jax.lax.scan(ply, start, jax.random.split(key, plies))
        return final.board, final.done
    return jax.jit(run)


def pgx_env(pgx, batch, plies):
    env = pgx.make("hex")

    def run(key):
        state = jax.vmap(env.init)(jax.random.split(key, batch))

        def ply(state, k):
            legal = state.legal_action_mask.at[:, -1].set(False)   # no swap
            return jax.vmap(env.step)(state, _pick(k, legal)), None

        final, _ = jax.lax.scan(ply, state, jax.random.split(jax.random.fold_in(key, 1), plies))
        return final.observation, final.terminated
    return jax.jit(run)


def _positions(key, n, batch):
    """``batch`` positions a few random plies into the game (different per tree)."""
    start = jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, (batch,) + x.shape),
                                   hex.init(n))

    def ply(states, k):
        return jax.vmap(hex.step)(states, _pick(k, jax.vmap(hex.legal_mask)(states))), None

    states, _ = jax.lax.scan(ply, start, jax.random.split(key, min(n, 4)))
    return states


def ours_search(module, sims):
    config = SearchConfig(num_simulations=sims, prior_weight=sims / 25.0, value_weight=1.0,
                          num_rollouts=0)
    evaluate = network_evaluator(module)

    def run(key, params, states):
        keys = jax.random.split(key, states.board.shape[0])
        out = jax.vmap(lambda k, s: search(k, s, params, evaluate, config))(keys, states)
        return out.action, out.visit_counts
    return jax.jit(run)


def mctx_search(mctx, module, sims):
    def recurrent_fn(params, key, action, states):
        nxt = jax.vmap(hex.play)(states, action)
        logits, value_logit = module.apply(params, jax.vmap(hex.features)(nxt))
        won = nxt.done & ~states.done
        out = mctx.RecurrentFnOutput(
            reward=won.astype(jnp.float32),
            discount=jnp.where(nxt.done, 0.0, -1.0),
            prior_logits=jnp.where(jax.vmap(hex.legal_mask)(nxt), logits, -1e9),
            value=jnp.tanh(0.5 * value_logit))
        return out, nxt

    def run(key, params, states):
        logits, value_logit = module.apply(params, jax.vmap(hex.features)(states))
        root = mctx.RootFnOutput(prior_logits=logits, value=jnp.tanh(0.5 * value_logit),
                                 embedding=states)
        out = mctx.muzero_policy(params, key, root, recurrent_fn, sims,
                                 invalid_actions=~jax.vmap(hex.legal_mask)(states),
                                 dirichlet_fraction=0.0)
        return out.action, out.search_tree.summary().visit_counts
    return jax.jit(run)


def _record(row, name, timing, work):
    row[name], row[f"{name}_min_s"], row[f"{name}_compile_s"] = (
        timing.median_s, timing.min_s, timing.compile_s)
    row[f"{name}_per_s"] = work / timing.median_s


def run(env_cases, search_cases, net, repeats, smoke, seed=0):
    pgx, pgx_note = _pgx()
    mctx, mctx_note = _mctx()
    key = jax.random.key(seed)
    rows = []
    for batch, plies in env_cases:
        row = {"what": "env steps (11x11)", "case": f"B={batch}, T={plies}",
               "work": batch * plies}
        _record(row, "jaxpapers", bench.time_call(ours_env(batch, plies), key, repeats=repeats),
                batch * plies)
        if pgx is not None:
            _record(row, "anchor", bench.time_call(pgx_env(pgx, batch, plies), key,
                                                   repeats=repeats), batch * plies)
            row["anchor_name"] = "pgx"
        rows.append(row)
        print(f"  env {row['case']}: ours {row['jaxpapers_per_s']:.3g} steps/s", file=sys.stderr,
              flush=True)
    module = make_apprentice(net)
    for n, batch, sims in search_cases:
        params = module.init(jax.random.key(1), jnp.zeros((1, n, n, hex.NUM_FEATURES)))
        states = _positions(jax.random.fold_in(key, n), n, batch)
        row = {"what": f"search sims ({n}x{n})", "case": f"B={batch}, S={sims}",
               "work": batch * sims}
        _record(row, "jaxpapers", bench.time_call(ours_search(module, sims), key, params, states,
                                                  repeats=repeats), batch * sims)
        if mctx is not None:
            _record(row, "anchor", bench.time_call(mctx_search(mctx, module, sims), key, params,
                                                   states, repeats=repeats), batch * sims)
            row["anchor_name"] = "mctx muzero_policy"
        rows.append(row)
        print(f"  search {row['case']}: ours {row['jaxpapers_per_s']:.3g} sims/s",
              file=sys.stderr, flush=True)
    if smoke:
        cfg = ExItConfig(board_size=3, network=net, search=SearchConfig(num_simulations=4),
                         games=4, positions_per_game=2, capacity=8, batch_size=8)
    else:
        from jaxpapers.experiments import scales

        quick = scales("expert_iteration")["quick"].exit  # the quick scale's (tuned) expert
        cfg = ExItConfig(board_size=5, network=net, search=quick.search, games=quick.games,
                         positions_per_game=quick.positions_per_game)
    params = init_exit(jax.random.key(2), cfg).params
    chunk = jax.jit(lambda k, p: generate_positions(k, p, cfg))
    row = {"what": f"positions labelled ({cfg.board_size}x{cfg.board_size}, "
                   f"S={cfg.search.num_simulations})",
           "case": f"{cfg.games} games x {cfg.positions_per_game}", "work": cfg.chunk_size}
    _record(row, "jaxpapers", bench.time_call(chunk, key, params, repeats=repeats),
            cfg.chunk_size)
    rows.append(row)
    return rows, pgx_note, mctx_note


def _throughput_table(rows):
    out = ["| measurement | case | ours per s | anchor | anchor per s | ours / anchor |",
           "|---|---|---|---|---|---|"]
    for r in rows:
        anchor = r.get("anchor_name")
        a_rate = r.get("anchor_per_s")
        out.append("| " + " | ".join([
            r["what"], r["case"], f"{r['jaxpapers_per_s']:.3g}", anchor or "–",
            f"{a_rate:.3g}" if a_rate else "–",
            f"{r['jaxpapers_per_s'] / a_rate:.2f}x" if a_rate else "–"]) + " |")
    return "\n".join(out)


def main(argv=None):
    p = bench.parser(__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    env_cases = SMOKE_ENV if args.smoke else ENV_CASES
    search_cases = SMOKE_SEARCH if args.smoke else SEARCH_CASES
    net = SMOKE_NET if args.smoke else NET
    repeats = min(args.repeats, 2) if args.smoke else args.repeats
    _, pgx_note = _pgx()
    _, mctx_note = _mctx()
    head = bench.header({"anchors": f"{pgx_note}; {mctx_note}",
                         "setup": f"median of {repeats}; network {net}"})
    print(head)
    print()
    rows, pgx_note, mctx_note = run(env_cases, search_cases, net, repeats, args.smoke,
                                    seed=args.seed)
    print("## Throughput (steady state, median; above 1x: jaxpapers is faster)")
    print()
    print(_throughput_table(rows))
    print()
    print("## Compile time (first call: trace + compile + one run)")
    print()
    print(bench.ratio_table([{"what": r["what"], "case": r["case"],
                              "jaxpapers": r["jaxpapers_compile_s"],
                              "anchor": r.get("anchor_compile_s")} for r in rows],
                            ["what", "case"], "jaxpapers", ["anchor"]))
    bench.write_json(args.json, {"device": bench.device_name(), "header": head,
                                 "anchors": {"pgx": pgx_note, "mctx": mctx_note},
                                 "repeats": repeats, "rows": rows})
    return rows


if __name__ == "__main__":
    main()
