# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Expert Iteration on Hex in JAX
#
# `jaxpapers.expert_iteration` implements Expert Iteration (Anthony, Tian & Barber, NeurIPS
# 2017): an *expert* (tree search guided by a network) labels positions that the *apprentice*
# (a convolutional policy network) reaches in self-play; the apprentice imitates the expert's
# visit distribution, and the better apprentice makes a better expert. Everything is pure JAX:
# Hex itself, the batched tree search, self-play, training and evaluation. This notebook draws a
# game, shows where the search spends its simulations, runs a few ExIt iterations, and shows
# why the expert needs a sharp prior.

# %%
import os
import subprocess
import sys

# The package's source, declared once in pyproject.toml ([project.urls] Repository).
SOURCE = "https://github.com/jaxpapers/jaxpapers"
if "google.colab" in sys.modules:  # install the package in Colab; skipped elsewhere
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", f"jaxpapers @ git+{SOURCE}"],
                   check=True)

from jaxpapers.experiments import enable_compile_cache

enable_compile_cache()  # reuse compiled programs across sessions (JAXPAPERS_COMPILE_CACHE=off: no)

SMOKE = os.environ.get("JAXPAPERS_SMOKE") == "1"

# %%
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import RegularPolygon

from jaxpapers import expert_iteration as ei
from jaxpapers.expert_iteration import hex

print(jax.devices())

# %% [markdown]
# ## Hex in the side-to-move frame
# A state holds the board from the point of view of the player to move (`+1` their stones,
# connecting row 0 to row n-1); after a move the board becomes `-board.T`, the opponent's frame.
# `hex.to_absolute` turns it back into the usual picture: Black (+1) joins top and bottom,
# White (-1) joins left and right. Here is a game of uniformly random moves on 7x7.

# %%
N = 5 if SMOKE else 7


def draw(ax, board, heat=None, title="", cmap="viridis"):
    """Draw an absolute board (Black +1, White -1) on hexagons; ``heat`` colours empty cells."""
    n = board.shape[0]
    vmax = None if heat is None else max(float(np.max(heat)), 1e-9)
    for r in range(n):
        for c in range(n):
            x, y = c + 0.5 * r, -r * np.sqrt(3) / 2
            v = board[r, c]
            face = {1: "black", -1: "white"}.get(int(v), "#e8dcb5")
            if heat is not None and v == 0:
                face = plt.get_cmap(cmap)(heat[r, c] / vmax)
            ax.add_patch(RegularPolygon((x, y), 6, radius=1 / np.sqrt(3), facecolor=face,
                                        edgecolor="gray", lw=0.8))
            if heat is not None and v == 0 and heat[r, c] > 0:
                ax.text(x, y, f"{heat[r, c]:.0f}", ha="center", va="center", fontsize=7,
                        color="white" if heat[r, c] < 0.6 * vmax else "black")
    top = -np.sqrt(3) / 2 * (n - 1)
    ax.plot([-0.5, n - 0.5], [0.8, 0.8], color="black", lw=3)                  # Black's edges
    ax.plot([-0.5 + 0.5 * (n - 1), n - 0.5 + 0.5 * (n - 1)], [top - 0.8] * 2, color="black",
            lw=3)
    ax.plot([-1.0, -1.0 + 0.5 * (n - 1)], [0, top], color="lightgray", lw=3)  # White's edges
    ax.plot([n + 0.5 * (n - 1), n], [top, 0], color="lightgray", lw=3)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title)


@jax.jit
def random_game(key):
    """A game of uniformly random legal moves (the last states repeat once it is over)."""
    def ply(state, k):
        legal = hex.legal_mask(state)
        action = jnp.argmax(jnp.where(legal, jax.random.uniform(k, legal.shape), -1.0))
        nxt = hex.play(state, action)
        return nxt, nxt

    _, states = jax.lax.scan(ply, hex.init(N), jax.random.split(key, N * N))
    return states


states = random_game(jax.random.key(3))
final = jax.tree_util.tree_map(lambda x: x[-1], states)
winner = ["Black", "White"][int(hex.winner(final))]
fig, ax = plt.subplots(figsize=(6, 4))
draw(ax, np.asarray(hex.to_absolute(final)),
     title=f"random game: {int(final.num_moves)} moves, {winner} connects")
plt.show()

# %% [markdown]
# `hex.has_won` checks a board with a flood fill; stepping keeps group labels and merges them
# (the new stone relabels its neighbours' groups), so a win is found in O(n^2) per move without
# any loop. `hex.rollout_value` fills the empty cells at random (half of them each) and asks who
# connects: on a full board exactly one player does, and this random fill has the law of a random
# playout's outcome.

# %%
board = hex.to_absolute(final)
print("has_won (Black, White):", bool(hex.has_won(board)), bool(hex.has_won(-board.T)))
values = jax.vmap(lambda k: hex.rollout_value(k, hex.init(N).board))(
    jax.random.split(jax.random.key(0), 2000))
print(f"value of the empty board for the first player, random playouts: "
      f"{float(values.mean()):+.3f} ± {float(values.std() / np.sqrt(values.size)):.3f}")

# %% [markdown]
# ## Where the search looks
# `ei.search(key, state, params, evaluate, config)` runs one tree; `jax.vmap` runs a batch.
# Pure MCTS is the same search with a uniform prior (`ei.uniform_evaluator`, `w_a = 0`). The heat
# map is the root's visit counts (the *tree-policy target* TPT after normalising) in a position
# taken from the game above; simulations pile up on the cells that matter.

# %%
sims = 64 if SMOKE else 800
config = ei.SearchConfig(num_simulations=sims)
ply_index = int(final.num_moves) // 2
position = jax.tree_util.tree_map(lambda x: x[ply_index], states)
out = jax.jit(lambda k, s: ei.search(k, s, None, ei.uniform_evaluator, config))(
    jax.random.key(1), position)
counts = np.asarray(out.visit_counts).reshape(N, N)
# the counts are in the mover's frame: transpose them back when White is to move
counts_abs = counts if int(position.color) == 0 else counts.T
mover = ["Black", "White"][int(position.color)]
fig, ax = plt.subplots(figsize=(6, 4))
draw(ax, np.asarray(hex.to_absolute(position)), heat=counts_abs,
     title=f"pure MCTS-{sims}, {mover} to move: visits per cell")
plt.show()
print("chosen move (absolute cell):", int(hex.absolute_action(position, out.action)),
      " root value for the mover:", round(float(out.value), 3))

# %% [markdown]
# ## A few ExIt iterations
# One iteration: the apprentice plays `games` self-play games, a few states of each are
# labelled by the expert (N-MCTS with the apprentice's prior), the labels join the dataset, and
# the apprentice takes Adam steps on it. We track the imitation loss and the greedy
# apprentice's win rate against the random player and against pure MCTS, over every opening
# with both colours (`ei.evaluate.play_match`). The full comparison (several seeds, REINFORCE at
# equal network evaluations, TPT against CAT, an Elo league) is
# `jaxpapers reproduce expert_iteration --scale quick`.

# %%
n = 3 if SMOKE else 5
iterations = 2 if SMOKE else 8
steps = 20 if SMOKE else 300
net = ei.ApprenticeConfig(channels=8, depth=1) if SMOKE else ei.ApprenticeConfig(channels=32,
                                                                                 depth=3)
# the expert chosen by the 5x5 sweep (results/expert_iteration/sweep5/): a sharp prior
# (temperature 0.1), unvisited edges scored at Q = 0 instead of tried first, c_b = 0.25, and the
# apprentice's value head mixed half and half with the rollouts (so the value head is trained)
expert = ei.SearchConfig(num_simulations=8 if SMOKE else 64, prior_temperature=0.1,
                         prior_weight=2.56, uct_c=0.25, value_weight=0.5, unvisited_value=0.0)
cfg = ei.ExItConfig(board_size=n, network=net, search=expert, value_loss_weight=1.0,
                    games=8 if SMOKE else 64, positions_per_game=2 if SMOKE else 6,
                    capacity=64 if SMOKE else 4096, batch_size=32 if SMOKE else 128)
module = ei.models.make_apprentice(net)
generate = jax.jit(lambda k, p: ei.generate_positions(k, p, cfg))
add = jax.jit(ei.add_positions)


@jax.jit
def train(key, state):
    def one(state, k):
        state, info = ei.exit_step(k, state, cfg)
        return state, info.policy_loss

    return jax.lax.scan(one, state, jax.random.split(key, steps))


match_config = ei.SearchConfig(num_simulations=16)
match = jax.jit(lambda k, a, b: ei.evaluate.play_match(k, a, b, module, n, match_config))
EVALUATE = not SMOKE  # the matches compile a second search program: skipped in smoke mode


def win_rates(key, params):
    greedy = ei.evaluate.make_agent(params)
    rand = ei.evaluate.make_agent(params, use_network=False, greedy=False)
    mcts = ei.evaluate.make_agent(params, use_network=False, simulations=16)
    return (float(match(key, greedy, rand).a_won.mean()),
            float(match(key, greedy, mcts).a_won.mean()))


state = ei.init_exit(jax.random.key(0), cfg)
history = {"loss": [], "vs_random": [], "vs_mcts": []}
if EVALUATE:
    r0, m0 = win_rates(jax.random.key(100), state.params)
    history["vs_random"].append(r0)
    history["vs_mcts"].append(m0)
for it in range(iterations):
    key = jax.random.fold_in(jax.random.key(1), it)
    positions, evaluations = generate(key, state.params)
    state = add(state, positions, evaluations)
    state, losses = train(key, state)
    history["loss"].append(np.asarray(losses))
    line = (f"iteration {it + 1}: loss {float(losses[-10:].mean()):.3f}, "
            f"network evaluations so far {float(state.evaluations):.0f}")
    if EVALUATE:
        r, m = win_rates(jax.random.key(100 + it), state.params)
        history["vs_random"].append(r)
        history["vs_mcts"].append(m)
        line += f", greedy vs random {r:.2f}, vs MCTS-16 {m:.2f}"
    print(line)

# %%
fig, axes = plt.subplots(1, 2 if EVALUATE else 1, figsize=(11 if EVALUATE else 6, 3.6),
                         squeeze=False)
axes = axes[0]
loss = np.concatenate(history["loss"])
axes[0].plot(loss, lw=0.8)
for it in range(1, iterations):
    axes[0].axvline(it * steps, color="gray", lw=0.5, ls=":")
axes[0].set_xlabel("Adam step (dotted: new iteration, new data)")
axes[0].set_ylabel("TPT cross-entropy")
axes[0].set_title("apprentice imitation loss")
if EVALUATE:
    x = np.arange(iterations + 1)
    axes[1].plot(x, history["vs_random"], "o-", label="vs random")
    axes[1].plot(x, history["vs_mcts"], "s-", label="vs pure MCTS-16")
    axes[1].axhline(0.5, color="gray", lw=0.8)
    axes[1].set_ylim(-0.02, 1.02)
    axes[1].set_xlabel("ExIt iteration")
    axes[1].set_ylabel(f"win rate ({2 * n * n} balanced games)")
    axes[1].set_title(f"greedy apprentice on {n}x{n}")
    axes[1].legend()
plt.show()

# %% [markdown]
# ## A flat prior and a sharp one
# The apprentice imitates visit distributions of 64-simulation searches, so its policy is flat
# even where its argmax is right. At temperature 1 the prior barely steers the search; the
# expert divides the logits by 0.1 first. Below: the prior's entropy on positions from the
# apprentice's own games at both temperatures (uniform over the legal cells for reference), and,
# outside smoke mode, N-MCTS-64 with the first expert's settings (temperature 1, `w_a = S/n²`,
# `c_b = 1`, unvisited edges first, no value) and with the tuned ones, each against the greedy
# apprentice it is built on, over every opening with both colours.

# %%
games = jax.jit(lambda k, p: ei.selfplay.self_play(k, p, module.apply, n, 32))(
    jax.random.key(5), state.params)
sample = ei.selfplay.sample_positions(jax.random.key(6), games, 2)
logits, _ = module.apply(state.params, jax.vmap(hex.features)(sample.states))
legal = jax.vmap(hex.legal_mask)(sample.states)
for temperature in (1.0, 0.1):
    dist = ei.models.policy_distribution(logits, legal, temperature)
    print(f"temperature {temperature:>3}: prior entropy {float(dist.entropy().mean()):.2f} nats, "
          f"top move {float(dist.probs.max(-1).mean()):.2f} on average")
print(f"uniform over the legal cells: {float(jnp.log(legal.sum(-1)).mean()):.2f} nats")

if EVALUATE:
    landed = ei.SearchConfig(num_simulations=64, prior_weight=64 / n**2)
    big = ei.SearchConfig(num_simulations=64)
    versus = jax.jit(lambda k, a, b: ei.evaluate.play_match(k, a, b, module, n, big))
    greedy = ei.evaluate.make_agent(state.params)
    for name, setting in (("first expert", landed), ("tuned expert", expert)):
        agent = ei.evaluate.make_agent(state.params, simulations=64,
                                       **ei.evaluate.expert_settings(setting))
        rate = float(versus(jax.random.key(7), agent, greedy).a_won.mean())
        print(f"N-MCTS-64, {name}: wins {rate:.2f} of {2 * n * n} games against the greedy "
              "apprentice")

# %% [markdown]
# With one seed and a few iterations the curves are noisy; the reproduction runs several seeds,
# compares against REINFORCE at equal network evaluations, and reports Elo with standard errors
# (see the README's Expert Iteration section for the numbers).
