"""The ExIt expert: Monte Carlo tree search on fixed-size arrays, one tree per position.

``search(key, state, params, evaluate, config)`` runs ``num_simulations`` simulations from one
Hex position; ``jax.vmap`` runs a batch of independent trees (no virtual loss: parallelism comes
from the batch). Each simulation descends from the root by the ExIt selection rule (Anthony et
al. 2017, Sec. 5.1; spec Sec. 3.2)

    UCT_P-NN(s, a) = Q(s, a) + c_b sqrt(ln n(s) / n(s, a)) + w_a pi(a | s) / (n(s, a) + 1)

where unvisited legal edges are taken first (UCT's infinite bonus; among them the largest prior
wins, then a random tie-break) and illegal edges never; it expands one new node, whose value is a
mix of random-fill rollouts and the network's value (spec Sec. 3.3),

    v = (1 - w_v) mean(rollouts) + w_v V(s_L),

(backing up the mixed value is the same as mixing the two backed-up means, since both are linear
in the values), and backs ``v`` up the path with alternating signs (zero-sum, no draws). A move
that wins ends the game: its node is terminal, worth ``-1`` to the player to move there (so the
edge into it has ``Q = +1`` exactly), and is never expanded. Pure MCTS is the same code with a
uniform prior and ``w_a = 0`` (:func:`uniform_evaluator`).

Bookkeeping follows mctx's conventions: node 0 is the root, visited once by its own evaluation,
so after ``S`` simulations ``node_visits[0] == S + 1`` and ``sum(children_visits[0]) == S``.
The tree holds ``S + 1`` nodes; a simulation that ends on a terminal node adds none.

Why own arrays rather than ``mctx.search``: ExIt's rule needs the unvisited-edges-first order
and interior masking of illegal cells, which mctx leaves to a custom selection function; our
arrays also take a traced simulation count (one compiled program serves every budget, which the
evaluation league relies on), mark terminal nodes and never expand them. Speed decided it too:
``benchmarks/expert_iteration.py`` times this search against ``mctx.muzero_policy`` on the same
network, batch and simulation count (docs/benchmarks/expert_iteration.md).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers._src import checks, threefry
from jaxpapers._src.checks import require_positive_int_field
from jaxpapers.expert_iteration import hex
from jaxpapers.expert_iteration._network import masked_policy

__all__ = ["SearchConfig", "SearchOutput", "Tree", "search", "uniform_evaluator",
           "tree_policy_target", "chosen_action_target", "Evaluator"]

#: ``evaluate(params, state) -> (logits [n*n], value [])``: prior logits over the cells (masked
#: by the search) and a value in ``[-1, 1]`` for the player to move.
Evaluator = Callable[[Any, hex.State], tuple[jax.Array, jax.Array]]

#: (name, lowest, highest) of the settings a search accepts; ``None``: open. Temperatures must
#: be > 0 (checked apart); every value but ``unvisited_value`` (which may be ``+inf``) must be
#: finite, and NaN is refused everywhere.
_RANGES = (("num_simulations", 0, None), ("uct_c", 0.0, None), ("prior_weight", 0.0, None),
           ("value_weight", 0.0, 1.0), ("prior_temperature", 0.0, None),
           ("unvisited_value", -1.0, None))


def _is_number(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float, np.integer,
                                                              np.floating))


def _check_range(name: str, value, low, high) -> None:
    """Refuse a concrete setting out of its range (NaN, infinities, wrong sign)."""
    if not _is_number(value):
        raise ValueError(f"{name} must be a real number; got {value!r}")
    value = float(value)
    ok = not math.isnan(value) and value >= low and (high is None or value <= high)
    if name.endswith("prior_temperature"):
        ok = ok and value > 0 and math.isfinite(value)
    elif not name.endswith("unvisited_value"):
        ok = ok and math.isfinite(value)
    if not ok:
        bound = f"in [{low}, {high}]" if high is not None else f">= {low}"
        if name.endswith("prior_temperature"):
            bound = "finite and > 0"
        elif name.endswith("unvisited_value"):
            bound = f">= {low} (+inf allowed)"
        else:
            bound = f"finite and {bound}"
        raise ValueError(f"{name} must be {bound}; got {value}")


def _traced_ok(name: str, value, low, high):
    """``bool[]``: a traced setting lies in its range (NaN fails every comparison)."""
    value = jnp.asarray(value, jnp.float32)
    ok = value >= low
    if high is not None:
        ok &= value <= high
    if name == "prior_temperature":
        ok &= (value > 0) & jnp.isfinite(value)
    elif name != "unvisited_value":
        ok &= jnp.isfinite(value)
    return ok


@dataclasses.dataclass(frozen=True)
class SearchConfig:
    """Settings of one search.

    Attributes:
      num_simulations: simulations per search; also the tree's capacity (``S + 1`` nodes). A
        traced ``simulations`` argument of :func:`search` may run fewer.
      uct_c: ``c_b``, the UCT exploration constant for values in ``[-1, 1]`` (the paper's 0.05
        came with RAVE and rewards in ``[0, 1]``, not recovered; spec Sec. 3.1, 6.3).
      prior_weight: ``w_a``; 0 gives plain UCT (pure MCTS). The paper's rule sets it near the
        number of simulations per root action (100 for 10,000 simulations on 81 cells).
      value_weight: ``w_v`` in ``[0, 1]``, the network value's share of a leaf value (0.75 in
        the paper's value-network runs, a secondary-source value).
      num_rollouts: random-fill rollouts averaged per leaf (0 only with ``value_weight = 1``).
      prior_temperature: softmax temperature of the apprentice's logits in the prior (an N-MCTS
        hyper-parameter tuned for search strength; secondary sources give 0.1 for the paper).
      unvisited_value: the ``Q`` given to an unvisited legal edge. ``inf`` (the default) is
        UCT's rule, the paper's formula: every legal edge is tried once (largest prior first)
        before the prior and ``Q`` rank them. A finite value ("first-play urgency") scores an
        unvisited edge as ``unvisited_value + c_b sqrt(ln n) + w_a pi(a | s)``, so a sharp prior
        can be followed before its siblings are tried (an inferred option, spec Sec. 9.5).

    The library's defaults are plain UCT (pure MCTS); the experts of the reproduction are set in
    its scales (``_experiments/_reproduce.py``), chosen by the sweep of
    ``results/expert_iteration/sweep5/``.

    Raises:
      ValueError: ``num_simulations`` not a positive int; a setting out of its range (NaN, a
        negative weight, ``value_weight`` outside ``[0, 1]``, a temperature not ``> 0``,
        ``unvisited_value < -1``); ``num_rollouts`` negative, or 0 with ``value_weight != 1``.
    """

    num_simulations: int = 64
    uct_c: float = 1.0
    prior_weight: float = 0.0
    value_weight: float = 0.0
    num_rollouts: int = 1
    prior_temperature: float = 1.0
    unvisited_value: float = float("inf")

    def __post_init__(self):
        require_positive_int_field("SearchConfig", "num_simulations", self.num_simulations)
        for name, low, high in _RANGES:
            if name != "num_simulations":
                _check_range(f"SearchConfig.{name}", getattr(self, name), low, high)
        if isinstance(self.num_rollouts, bool) or not isinstance(self.num_rollouts, int) \
                or self.num_rollouts < 0:
            raise ValueError(f"SearchConfig.num_rollouts must be an int >= 0; got "
                             f"{self.num_rollouts!r}")
        if self.num_rollouts == 0 and self.value_weight != 1.0:
            raise ValueError("SearchConfig.num_rollouts = 0 needs value_weight = 1 (the leaf "
                             f"value would be 0); got value_weight {self.value_weight}")


class Tree(NamedTuple):
    """One search tree (``N = S + 1`` nodes, ``A = n * n`` actions; leading axes added by vmap).

    Attributes:
      states: :class:`~jaxpapers.expert_iteration.hex.State` ``[N]``, the node positions
        (canonical frames).
      node_visits: ``int32[N]``.
      node_value: ``float32[N]`` summed values from the point of view of the player to move at
        the node.
      parents: ``int32[N]``, -1 for the root and unused nodes.
      parent_action: ``int32[N]``.
      terminal: ``bool[N]``: the player to move there has lost.
      children_index: ``int32[N, A]``, -1 where not expanded.
      children_prior: ``float32[N, A]``, 0 on illegal cells.
      children_visits: ``int32[N, A]``.
      children_value: ``float32[N, A]`` summed values from the point of view of the player to
        move at the parent.
      legal: ``bool[N, A]``.
    """

    states: hex.State
    node_visits: jax.Array
    node_value: jax.Array
    parents: jax.Array
    parent_action: jax.Array
    terminal: jax.Array
    children_index: jax.Array
    children_prior: jax.Array
    children_visits: jax.Array
    children_value: jax.Array
    legal: jax.Array


class SearchOutput(NamedTuple):
    """Result of one search.

    Attributes:
      action: ``int32[]``, the most visited root move (ties: higher Q, then higher prior).
      visit_counts: ``int32[A]`` root visit counts ``n(s, a)``.
      tree_policy: ``float32[A]`` the tree-policy target ``n(s, a) / sum_b n(s, b)`` (TPT).
      q_values: ``float32[A]`` root ``Q(s, a)`` for the player to move (0 where unvisited).
      prior: ``float32[A]`` the root prior.
      value: ``float32[]`` mean backed-up value of the root.
      num_evaluations: ``int32[]`` evaluator calls (root + one per simulation).
      valid: ``bool[]`` False when the root position was already finished, a traced override
        was out of range, or the evaluator returned a NaN or infinite logit or value.
      tree: the :class:`Tree`.
    """

    action: jax.Array
    visit_counts: jax.Array
    tree_policy: jax.Array
    q_values: jax.Array
    prior: jax.Array
    value: jax.Array
    num_evaluations: jax.Array
    valid: jax.Array
    tree: Tree


def uniform_evaluator(params: Any, state: hex.State) -> tuple[jax.Array, jax.Array]:
    """The evaluator of pure MCTS: uniform prior logits and value 0.

    Args:
      params: ignored.
      state: a :class:`~jaxpapers.expert_iteration.hex.State` (unbatched).

    Returns:
      ``(logits float32[n * n], value float32[])``, all zeros.

    Raises:
      ValueError: ``state`` is not a ``hex.State``.

    >>> from jaxpapers.expert_iteration import hex
    >>> logits, value = uniform_evaluator(None, hex.init(3))
    >>> logits.shape, float(value)
    ((9,), 0.0)
    """
    del params
    check_state(state)
    return jnp.zeros(state.board.size, jnp.float32), jnp.float32(0.0)


def check_state(state) -> None:
    checks.require(isinstance(state, hex.State),
                   f"state must be a hex.State (hex.init); got {type(state).__name__}")


def _check_counts(visit_counts):
    """Integer counts ``[..., A]``; ``[...]`` bool rows free of negative counts (raised eagerly;
    the caller makes a bad row NaN under ``jit``)."""
    counts = jnp.asarray(visit_counts)
    checks.require(counts.ndim >= 1, f"visit_counts must be [..., A]; got shape {counts.shape}")
    checks.require(jnp.issubdtype(counts.dtype, jnp.integer),
                   f"visit_counts must be integer counts; got {counts.dtype}")
    checks.raise_if_concrete(lambda c: jnp.any(c < 0), "visit_counts must be >= 0", counts)
    return counts, ~jnp.any(counts < 0, axis=-1, keepdims=True)


def tree_policy_target(visit_counts: jax.Array, temperature: float = 1.0) -> jax.Array:
    """The tree-policy target (TPT): ``n(s, a)^(1/T) / sum_b n(s, b)^(1/T)``.

    Args:
      visit_counts: ``int[..., A]`` root visit counts.
      temperature: ``T``, a static finite number ``> 0`` (1: the paper's visit distribution;
        ``T < 1`` sharpens).

    Returns:
      ``float32[..., A]``, rows summing to 1 (a row of all-zero counts gives all zeros).

    Raises:
      ValueError: ``visit_counts`` not integers; ``temperature`` not finite and ``> 0``;
        eagerly, a negative count (under ``jit`` its row is NaN).

    >>> import jax.numpy as jnp
    >>> tree_policy_target(jnp.array([0, 1, 3]))
    Array([0.  , 0.25, 0.75], dtype=float32)
    """
    counts, ok = _check_counts(visit_counts)
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float, np.integer,
                                                                     np.floating)) \
            or not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a finite number > 0 (static); got "
                         f"{temperature!r}")
    counts = counts.astype(jnp.float32)
    if temperature != 1.0:
        counts = jnp.where(counts > 0, counts ** (1.0 / temperature), 0.0)
    total = jnp.sum(counts, axis=-1, keepdims=True)
    return jnp.where(ok, counts / jnp.maximum(total, 1e-30), jnp.nan)


def chosen_action_target(visit_counts: jax.Array) -> jax.Array:
    """The chosen-action target (CAT): one-hot of the most visited action (first on ties).

    Args:
      visit_counts: ``int[..., A]`` root visit counts.

    Returns:
      ``float32[..., A]``; a row of all-zero counts gives all zeros (no move was chosen: never
      a default move 0).

    Raises:
      ValueError: ``visit_counts`` not integers; eagerly, a negative count (under ``jit`` its
        row is NaN).

    >>> import jax.numpy as jnp
    >>> chosen_action_target(jnp.array([0, 1, 3]))
    Array([0., 0., 1.], dtype=float32)
    """
    counts, ok = _check_counts(visit_counts)
    hot = jax.nn.one_hot(jnp.argmax(counts, axis=-1), counts.shape[-1], dtype=jnp.float32)
    visited = jnp.any(counts > 0, axis=-1, keepdims=True)
    return jnp.where(ok, jnp.where(visited, hot, 0.0), jnp.nan)


def _leaf_value(key, state, net_value, config: SearchConfig, value_weight):
    """Mixed value of a leaf for its player to move: ``-1`` if the game is over there."""
    if config.num_rollouts:
        keys = jax.random.split(key, config.num_rollouts)
        rollouts = jnp.mean(jax.vmap(hex.rollout_value, in_axes=(0, None))(keys, state.board))
    else:
        rollouts = jnp.float32(0.0)
    mixed = (1.0 - value_weight) * rollouts + value_weight * net_value
    return jnp.where(state.done, -1.0, mixed).astype(jnp.float32)


def _prior(logits, legal, temperature):
    return masked_policy(logits, legal, temperature).probs * legal


def _select(tree: Tree, node, noise, uct_c, prior_weight, unvisited_value):
    """The ExIt rule at ``node``. With ``unvisited_value = inf``: unvisited legal edges first
    (largest prior, then the tie-break noise), else the largest UCT + prior bonus. With a finite
    ``unvisited_value``: the largest score, an unvisited edge scoring as if ``Q`` were
    ``unvisited_value`` and it had one visit in the exploration term (none in the bonus)."""
    visits = tree.children_visits[node]
    legal = tree.legal[node]
    prior = tree.children_prior[node]
    bonus = prior_weight * prior / (visits + 1).astype(jnp.float32)
    unvisited = legal & (visits == 0)
    safe = jnp.maximum(visits, 1).astype(jnp.float32)
    q = tree.children_value[node] / safe
    log_n = jnp.log(jnp.maximum(tree.node_visits[node], 1).astype(jnp.float32))
    q = jnp.where(unvisited, jnp.minimum(unvisited_value, 1e9), q)
    uct = q + uct_c * jnp.sqrt(log_n / safe) + bonus
    first = jnp.argmax(jnp.where(unvisited, bonus + noise, -jnp.inf))
    best = jnp.argmax(jnp.where(legal, uct + noise, -jnp.inf))
    infinite = jnp.isposinf(unvisited_value)
    return jnp.where(jnp.any(unvisited) & infinite, first, best).astype(jnp.int32)


def _take(tree_states: hex.State, index) -> hex.State:
    return jax.tree_util.tree_map(lambda x: x[index], tree_states)


def search(key, state: hex.State, params: Any, evaluate: Evaluator, config: SearchConfig, *,
           simulations=None, prior_weight=None, uct_c=None, value_weight=None,
           prior_temperature=None, unvisited_value=None) -> SearchOutput:
    """Run the ExIt search from ``state`` (one tree; ``jax.vmap`` it for a batch).

    Args:
      key: PRNG key (rollouts and tie-breaks).
      state: a :class:`~jaxpapers.expert_iteration.hex.State` (unbatched).
      params: passed to ``evaluate`` (network parameters; anything for pure MCTS).
      evaluate: :data:`Evaluator`, called once at the root and once per simulation.
      config: :class:`SearchConfig`.
      simulations: optional traced ``int32`` count in ``[0, config.num_simulations]`` (one
        compiled search then serves every budget).
      prior_weight, uct_c, value_weight, prior_temperature, unvisited_value: optional traced
        overrides of the config's values.

    Returns:
      :class:`SearchOutput`.

    Raises:
      ValueError: a concrete override out of its range (as :class:`SearchConfig` refuses it), or
        ``simulations`` outside ``[0, num_simulations]``. A *traced* override out of range (NaN,
        a negative weight or budget, a budget above the tree's capacity) cannot raise: the search
        then runs no simulation and returns ``valid = False``.

    Shapes: ``n`` board size, ``A = n * n``, ``N = num_simulations + 1``.
    """
    threefry.check_key(key)
    check_state(state)
    if not isinstance(config, SearchConfig):
        raise ValueError(f"config must be a SearchConfig; got {type(config).__name__}")
    n = hex._size(state.board)
    num_actions, capacity = n * n, config.num_simulations + 1
    max_depth = min(num_actions, config.num_simulations)  # a path has at most this many edges
    checks.require(state.board.dtype == jnp.int8, "state.board must be int8 (use hex.init)")
    settings = {"num_simulations": simulations, "uct_c": uct_c, "prior_weight": prior_weight,
                "value_weight": value_weight, "prior_temperature": prior_temperature,
                "unvisited_value": unvisited_value}
    ok = jnp.bool_(True)
    for name, low, high in _RANGES:
        value = settings[name]
        if value is None:
            settings[name] = getattr(config, name)
            continue
        if name == "num_simulations":
            high = config.num_simulations
        if checks.is_concrete(value) and not isinstance(value, jax.Array):
            _check_range(f"search {name}", value, low, high)
        elif checks.is_concrete(value):
            _check_range(f"search {name}", float(value), low, high)
        else:
            ok &= _traced_ok(name, value, low, high)
    # refused settings run no simulation and never reach the arithmetic (NaN-free tree)
    sims = jnp.where(ok, jnp.asarray(settings["num_simulations"], jnp.int32), 0) \
        if simulations is not None else jnp.where(ok, config.num_simulations, 0)
    safe = lambda name, default: jnp.where(ok, jnp.asarray(settings[name], jnp.float32),
                                           default)
    w_a, c_b, w_v = safe("prior_weight", 0.0), safe("uct_c", 1.0), safe("value_weight", 0.0)
    temperature, fpu = safe("prior_temperature", 1.0), safe("unvisited_value", jnp.inf)

    key_root, key_sims = jax.random.split(key)
    root_logits, root_net = evaluate(params, state)
    root_legal = hex.legal_mask(state)
    root_prior = _prior(root_logits, root_legal, temperature)
    root_value = _leaf_value(key_root, state, root_net, config, w_v)

    zeros_state = jax.tree_util.tree_map(
        lambda x: jnp.zeros((capacity,) + x.shape, x.dtype), state)
    tree = Tree(
        states=jax.tree_util.tree_map(lambda z, x: z.at[0].set(x), zeros_state, state),
        node_visits=jnp.zeros(capacity, jnp.int32).at[0].set(1),
        node_value=jnp.zeros(capacity, jnp.float32).at[0].set(root_value),
        parents=jnp.full(capacity, -1, jnp.int32),
        parent_action=jnp.full(capacity, -1, jnp.int32),
        terminal=jnp.zeros(capacity, bool).at[0].set(state.done),
        children_index=jnp.full((capacity, num_actions), -1, jnp.int32),
        children_prior=jnp.zeros((capacity, num_actions), jnp.float32).at[0].set(root_prior),
        children_visits=jnp.zeros((capacity, num_actions), jnp.int32),
        children_value=jnp.zeros((capacity, num_actions), jnp.float32),
        legal=jnp.zeros((capacity, num_actions), bool).at[0].set(root_legal),
    )

    def simulate(i, tree: Tree) -> Tree:
        key_tie, key_leaf = jax.random.split(jax.random.fold_in(key_sims, i))
        noise = 1e-5 * jax.random.uniform(key_tie, (num_actions,))

        # 1. descend until an unexpanded edge or a terminal node, recording the path
        def more(carry):
            node, action, _, _ = carry
            return ~tree.terminal[node] & (tree.children_index[node, action] >= 0)

        def down(carry):
            node, action, depth, path = carry
            child = tree.children_index[node, action]
            return child, _select(tree, child, noise, c_b, w_a, fpu), depth + 1, \
                path.at[depth + 1].set(child)

        path = jnp.full(max_depth + 2, capacity, jnp.int32).at[0].set(0)
        root_action = _select(tree, 0, noise, c_b, w_a, fpu)
        node, action, depth, path = jax.lax.while_loop(
            more, down, (jnp.int32(0), root_action, jnp.int32(0), path))

        # 2. expand one node (unless the descent ended on a terminal node)
        expand = ~tree.terminal[node]
        new = i + 1
        child_state = hex.play(_take(tree.states, node), action)
        logits, net_value = evaluate(params, child_state)
        child_legal = hex.legal_mask(child_state)
        value = _leaf_value(key_leaf, child_state, net_value, config, w_v)
        slot = jnp.where(expand, new, capacity)  # out of range: the writes are dropped
        path = path.at[depth + 1].set(slot)
        leaf_value = jnp.where(expand, value, -1.0)

        # 3. back up along the path with alternating signs (one scatter per array); entries
        #    past the leaf hold the out-of-range index `capacity` and are dropped
        steps = jnp.arange(max_depth + 2)
        length = depth + 1 + expand.astype(jnp.int32)           # nodes on the path
        sign = jnp.where((length - 1 - steps) % 2 == 0, 1.0, -1.0)
        on_path = steps < length
        node_values = jnp.where(on_path, sign * leaf_value, 0.0)
        parent = jnp.where(steps >= 1, jnp.roll(path, 1), capacity)
        edge_actions = jnp.where(on_path & (steps >= 1),
                                 tree.parent_action.at[slot].set(action, mode="drop")[
                                     jnp.minimum(path, capacity - 1)], 0)
        parent = jnp.where(on_path & (steps >= 1), parent, capacity)
        return tree._replace(
            states=jax.tree_util.tree_map(lambda a, x: a.at[slot].set(x, mode="drop"),
                                          tree.states, child_state),
            parents=tree.parents.at[slot].set(node, mode="drop"),
            parent_action=tree.parent_action.at[slot].set(action, mode="drop"),
            terminal=tree.terminal.at[slot].set(child_state.done, mode="drop"),
            children_prior=tree.children_prior.at[slot].set(
                _prior(logits, child_legal, temperature), mode="drop"),
            legal=tree.legal.at[slot].set(child_legal, mode="drop"),
            children_index=tree.children_index.at[node, action].set(
                jnp.where(expand, new, tree.children_index[node, action])),
            node_visits=tree.node_visits.at[path].add(on_path.astype(jnp.int32), mode="drop"),
            node_value=tree.node_value.at[path].add(node_values, mode="drop"),
            children_visits=tree.children_visits.at[parent, edge_actions].add(
                on_path.astype(jnp.int32), mode="drop"),
            children_value=tree.children_value.at[parent, edge_actions].add(
                -node_values, mode="drop"),
        )

    tree = jax.lax.fori_loop(0, sims, simulate, tree)

    counts = tree.children_visits[0]
    q_values = jnp.where(counts > 0, tree.children_value[0] / jnp.maximum(counts, 1), 0.0)
    tie = 1e-4 * jax.random.uniform(key_root, (num_actions,))
    score = (counts.astype(jnp.float32) + 0.25 * (q_values + 1.0) * (counts > 0)
             + 0.2 * root_prior + tie)
    action = jnp.argmax(jnp.where(root_legal, score, -jnp.inf)).astype(jnp.int32)
    return SearchOutput(
        action=action,
        visit_counts=counts,
        tree_policy=tree_policy_target(counts),
        q_values=q_values,
        prior=root_prior,
        value=tree.node_value[0] / tree.node_visits[0].astype(jnp.float32),
        num_evaluations=(jnp.asarray(sims, jnp.int32) + 1),
        # NaN logits or values from the evaluator reach the priors or the backed-up values
        valid=(~state.done & ok & jnp.all(jnp.isfinite(tree.children_prior))
               & jnp.all(jnp.isfinite(tree.node_value))),
        tree=tree,
    )
