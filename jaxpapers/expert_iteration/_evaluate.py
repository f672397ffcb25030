"""Evaluation: balanced matches between agents and a Bradley-Terry Elo fit.

A match plays every opening cell once with each colour (``2 n^2`` games; the protocol of the
authors' follow-up, spec Sec. 6.5): Black's first move is forced to the opening cell, then the
two agents alternate. First-move advantage cancels because each agent is Black as often as White
on the same openings.

An :class:`Agent` is N-MCTS in general: a prior (the network, or uniform), a simulation budget
(0: play from the prior, greedily or by sampling, without search) and the ExIt weights. So one
compiled match serves every pairing: the random player (uniform prior, sampled, no search), the
greedy apprentice, pure MCTS at any budget and N-MCTS, with budgets and weights traced.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers._src import checks, threefry
from jaxpapers._src.optional import distrax
from jaxpapers.expert_iteration import hex
from jaxpapers.expert_iteration._network import network_evaluator
from jaxpapers.expert_iteration._search import (
    _RANGES,
    SearchConfig,
    _traced_ok,
    search,
    uniform_evaluator,
)
from jaxpapers.expert_iteration._selfplay import broadcast_state

__all__ = ["Agent", "MatchResult", "EloFit", "make_agent", "expert_settings", "play_match",
           "play_matches",
           "bradley_terry", "ELO_PER_NAT"]

ELO_PER_NAT = 400.0 / np.log(10.0)


class Agent(NamedTuple):
    """A player: N-MCTS with its prior, budget and weights (all arrays, so they can be traced).

    Attributes:
      params: network parameters (any parameters of the same network when ``use_network`` is
        False: they are not used).
      use_network: ``bool[]``: prior (and value) from the network; else uniform.
      simulations: ``int32[]`` search budget; 0 plays from the prior without search.
      greedy: ``bool[]``: without search, take the prior's argmax (else sample the prior).
      prior_weight: ``float32[]`` ``w_a``.
      value_weight: ``float32[]`` ``w_v``.
      uct_c: ``float32[]`` ``c_b``.
      prior_temperature: ``float32[]`` temperature of the prior in the search (the greedy
        move without search is the prior's argmax at any temperature; sampling uses it).
      unvisited_value: ``float32[]`` ``Q`` of unvisited edges (``inf``: UCT's try-each-once).

    The agent's own weights override the match's :class:`SearchConfig` (which then only gives
    the tree's capacity and the rollouts), so agents with different settings share one compiled
    match.
    """

    params: Any
    use_network: jax.Array
    simulations: jax.Array
    greedy: jax.Array
    prior_weight: jax.Array
    value_weight: jax.Array
    uct_c: jax.Array
    prior_temperature: jax.Array
    unvisited_value: jax.Array


def make_agent(params: Any, *, use_network: bool = True, simulations: int = 0,
               greedy: bool = True, prior_weight: float = 0.0, value_weight: float = 0.0,
               uct_c: float = 1.0, prior_temperature: float = 1.0,
               unvisited_value: float = float("inf")) -> Agent:
    """An :class:`Agent` with checked settings.

    Examples: the greedy apprentice ``make_agent(p)``; the random player
    ``make_agent(p, use_network=False, greedy=False)``; pure MCTS-64
    ``make_agent(p, use_network=False, simulations=64)``; N-MCTS-64 with an expert's settings
    ``make_agent(p, simulations=64, **expert_settings(search_config))``.

    Args:
      params: network parameters (unused, but of the match's network, when
        ``use_network`` is False).
      use_network: prior and value from the network; else a uniform prior (pure MCTS).
      simulations: search budget, an int ``>= 0`` (0: play from the prior without search).
      greedy: without search, take the prior's argmax (else sample it).
      prior_weight, value_weight, uct_c, prior_temperature, unvisited_value: the search's
        weights, as in :class:`~jaxpapers.expert_iteration.SearchConfig`.

    Returns:
      :class:`Agent` whose settings are 0-d arrays (``bool``, ``int32``, ``float32``).

    Raises:
      ValueError: a setting out of range (as ``SearchConfig`` refuses it); ``simulations``
        negative or not an integer.

    >>> agent = make_agent(None, use_network=False, simulations=8)
    >>> int(agent.simulations), bool(agent.use_network)
    (8, False)
    """
    SearchConfig(num_simulations=max(int(simulations), 1), uct_c=uct_c,
                 prior_weight=prior_weight, value_weight=value_weight,
                 prior_temperature=prior_temperature, unvisited_value=unvisited_value)
    if isinstance(simulations, bool) or int(simulations) != simulations or simulations < 0:
        raise ValueError(f"make_agent simulations must be an int >= 0; got {simulations!r}")
    return Agent(params, jnp.bool_(use_network), jnp.int32(simulations), jnp.bool_(greedy),
                 jnp.float32(prior_weight), jnp.float32(value_weight), jnp.float32(uct_c),
                 jnp.float32(prior_temperature), jnp.float32(unvisited_value))


def expert_settings(config: SearchConfig) -> dict:
    """The keyword arguments of :func:`make_agent` that make an agent search as ``config``.

    Args:
      config: a :class:`~jaxpapers.expert_iteration.SearchConfig`.

    Returns:
      ``dict`` of ``prior_weight``, ``value_weight``, ``uct_c``, ``prior_temperature`` and
      ``unvisited_value`` (the budget is not included: pass ``simulations`` apart).

    Raises:
      ValueError: ``config`` is not a ``SearchConfig``.

    >>> from jaxpapers.expert_iteration import SearchConfig
    >>> expert_settings(SearchConfig(prior_weight=2.0))["prior_weight"]
    2.0
    """
    if not isinstance(config, SearchConfig):
        raise ValueError(f"config must be a SearchConfig; got {type(config).__name__}")
    return {"prior_weight": config.prior_weight, "value_weight": config.value_weight,
            "uct_c": config.uct_c, "prior_temperature": config.prior_temperature,
            "unvisited_value": config.unvisited_value}


class MatchResult(NamedTuple):
    """Outcome of a balanced match.

    Attributes:
      a_won: ``bool[2, O]``: agent A won; row 0: A played Black, row 1: A played White;
        column ``o`` opened on cell ``openings[o]``.
      length: ``int32[2, O]`` moves played.
      valid: ``bool[2, O]``: False where the game means nothing: an opening cell outside the
        board, or an agent setting out of range (a search budget above the tree's capacity,
        NaN or a negative weight), which a traced agent cannot raise.
    """

    a_won: jax.Array
    length: jax.Array
    valid: jax.Array


def _agents_ok(agents: Agent, config: SearchConfig):
    """``bool[P]``: every setting of each agent lies in the range a search accepts."""
    ok = (agents.simulations >= 0) & (agents.simulations <= config.num_simulations)
    for name in ("prior_weight", "value_weight", "uct_c", "prior_temperature",
                 "unvisited_value"):
        low, high = next((lo, hi) for nm, lo, hi in _RANGES if nm == name)
        ok &= _traced_ok(name, getattr(agents, name), low, high)
    return ok


def _evaluator(module, use_network):
    net = network_evaluator(module)

    def evaluate(params, state):
        return jax.lax.cond(use_network, net, uniform_evaluator, params, state)

    return evaluate


def _act(key, agent: Agent, states: hex.State, module, config: SearchConfig):
    """Moves of ``agent`` in a batch of positions ``[O]``."""
    key_search, key_sample = jax.random.split(key)
    evaluate = _evaluator(module, agent.use_network)
    keys = jax.random.split(key_search, states.board.shape[0])
    out = jax.vmap(lambda k, s: search(
        k, s, agent.params, evaluate, config, simulations=agent.simulations,
        prior_weight=agent.prior_weight, value_weight=agent.value_weight, uct_c=agent.uct_c,
        prior_temperature=agent.prior_temperature,
        unvisited_value=agent.unvisited_value))(keys, states)
    greedy = jnp.argmax(out.prior, axis=-1).astype(jnp.int32)
    sampled = distrax().Categorical(probs=out.prior).sample(seed=key_sample).astype(jnp.int32)
    from_prior = jnp.where(agent.greedy, greedy, sampled)
    return jnp.where(agent.simulations > 0, out.action, from_prior)


def play_matches(key, agents_a: Agent, agents_b: Agent, module, board_size: int,
                 config: SearchConfig, openings=None) -> MatchResult:
    """A batch of ``P`` balanced matches, ``agents_a[p]`` against ``agents_b[p]``.

    At every ply the ``2P`` agents move one after another (``lax.map``), each on its ``O``
    boards as one batch, and an agent whose games are all over skips its search. One compiled
    program thus serves any mix of pairings (greedy networks, N-MCTS, pure MCTS at any budget,
    the random player); mapping rather than vmapping over agents keeps each network's
    convolutions unbatched over parameters (batched parameters are slow on CPUs).

    Args:
      key: PRNG key.
      agents_a, agents_b: :class:`Agent` with a leading pair axis ``[P]``.
      module, board_size, config, openings: as in :func:`play_match` (``openings`` may repeat
        cells to play each opening several times).

    Returns:
      :class:`MatchResult` ``[P, 2, O]``.
    """
    n = board_size
    threefry.check_key(key)
    if not isinstance(config, SearchConfig):
        raise ValueError(f"config must be a SearchConfig; got {type(config).__name__}")
    n = hex._check_size(n)
    for name, agents in (("agents_a", agents_a), ("agents_b", agents_b)):
        if checks.is_concrete(agents.simulations):
            sims = np.asarray(agents.simulations)
            checks.require(np.all((sims >= 0) & (sims <= config.num_simulations)),
                           f"{name}: simulations must lie in [0, config.num_simulations = "
                           f"{config.num_simulations}] (the tree's capacity); got {sims}")
    if openings is not None:
        checks.require(jnp.issubdtype(jnp.asarray(openings).dtype, jnp.integer),
                       f"openings must be integer cells; got {jnp.asarray(openings).dtype}")
        checks.raise_if_concrete(lambda o: jnp.any((o < 0) | (o >= n * n)),
                                 f"openings must be cells in [0, {n * n}); got {openings}",
                                 jnp.asarray(openings))
    openings = jnp.arange(n * n, dtype=jnp.int32) if openings is None else jnp.asarray(
        openings, jnp.int32)
    num_open = openings.shape[0]
    num_pairs = jax.tree_util.tree_leaves(agents_a)[0].shape[0]
    opened = jax.vmap(hex.play)(broadcast_state(hex.init(n), (num_open,)), openings)
    states = broadcast_state(opened, (num_pairs, 2))   # [P, 2, O]: row 0 A Black, row 1 A White
    agents = jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a, b]), agents_a, agents_b)

    def pick(tree, g):
        return jax.tree_util.tree_map(lambda x: x[:, g], tree)

    def move(xs):
        k, agent, boards = xs
        return jax.lax.cond(jnp.all(boards.done),
                            lambda: jnp.zeros(num_open, jnp.int32),
                            lambda: _act(k, agent, boards, module, config))

    def more(carry):
        t, states = carry
        return (t < n * n) & ~jnp.all(states.done)

    def ply(carry):
        t, states = carry
        g = t % 2   # Black (even plies) is A in row 0; White (odd plies) is A in row 1
        sa, sb = pick(states, g), pick(states, 1 - g)
        boards = jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a, b]), sa, sb)
        keys = jax.random.split(jax.random.fold_in(key, t), 2 * num_pairs)
        moves = jax.lax.map(move, (keys, agents, boards))
        played = jax.vmap(jax.vmap(hex.play))(boards, moves)
        na, nb = (jax.tree_util.tree_map(lambda x, s=s: x[s], played)
                  for s in (slice(0, num_pairs), slice(num_pairs, None)))
        states = jax.tree_util.tree_map(
            lambda x, y: jnp.where(g == 0, jnp.stack([x, y], 1), jnp.stack([y, x], 1)), na, nb)
        return t + 1, states

    _, final = jax.lax.while_loop(more, ply, (jnp.int32(1), states))
    winner = jax.vmap(jax.vmap(jax.vmap(hex.winner)))(final)
    a_won = winner == jnp.arange(2, dtype=jnp.int8)[None, :, None]
    valid = (_agents_ok(agents_a, config) & _agents_ok(agents_b, config))[:, None, None] & \
        ((openings >= 0) & (openings < n * n))[None, None, :]
    return MatchResult(a_won, final.num_moves, jnp.broadcast_to(valid, a_won.shape))


def play_match(key, agent_a: Agent, agent_b: Agent, module, board_size: int,
               config: SearchConfig, openings=None) -> MatchResult:
    """Agent A against agent B on every opening, once with each colour.

    Args:
      key: PRNG key.
      agent_a, agent_b: :class:`Agent` (parameters of the same network ``module``).
      module: the apprentice module (:func:`make_apprentice`).
      board_size: ``n``.
      config: :class:`SearchConfig` giving the tree capacity (``num_simulations``: the largest
        budget either agent may use), ``uct_c``, rollouts and prior temperature.
      openings: ``int32[O]`` opening cells (default: all ``n * n``).

    Returns:
      :class:`MatchResult` ``[2, O]``.

    Raises:
      ValueError: ``key`` is not a PRNG key; ``config`` is not a ``SearchConfig``; a bad
        ``board_size``; a concrete agent budget outside ``[0, config.num_simulations]``;
        ``openings`` not integers or (eagerly) outside the board. Under ``jit`` bad settings
        or openings make ``valid`` False.
    """
    batch = lambda agent: jax.tree_util.tree_map(lambda x: jnp.asarray(x)[None], agent)
    result = play_matches(key, batch(agent_a), batch(agent_b), module, board_size, config,
                          openings)
    return jax.tree_util.tree_map(lambda x: x[0], result)


class EloFit(NamedTuple):
    """Bradley-Terry ratings in Elo with their standard errors.

    Attributes:
      ratings: ``float64[K]`` Elo ratings, the anchor at 0.
      se: ``float64[K]`` standard errors from the observed information (the anchor's is 0).
    """

    ratings: np.ndarray
    se: np.ndarray


def bradley_terry(wins, *, anchor: int = 0, prior_games: float = 1.0, max_iter: int = 200,
                  tol: float = 1e-10) -> EloFit:
    """Maximum-likelihood Bradley-Terry fit: ``P(i beats j) = sigmoid((R_i - R_j) / 400 * ln 10)``.

    Every pair that played gets ``prior_games`` virtual games split evenly (a weak prior that
    keeps ratings finite when one side won every game). Newton's method in float64 on the
    free ratings (``R_anchor = 0``); standard errors from the inverse of the observed
    information.

    Args:
      wins: ``[K, K]`` games won by ``i`` against ``j``.
      anchor: the player fixed at 0 Elo (the random player in our tables).
      prior_games: virtual games per played pair (0: plain maximum likelihood).
      max_iter: Newton iterations at most.
      tol: stop when no rating moves by more than ``tol`` nats.

    Returns:
      :class:`EloFit`.

    Raises:
      ValueError: not square, negative counts, a player with no games, ``anchor`` outside
        ``[0, K)``, ``prior_games`` negative or not finite, ``max_iter < 1`` or ``tol``
        negative; no convergence (a singular information matrix).

    >>> fit = bradley_terry([[0, 30], [10, 0]], prior_games=0)
    >>> round(float(fit.ratings[1]))
    -191
    """
    w = np.asarray(wins, np.float64)
    if w.ndim != 2 or w.shape[0] != w.shape[1]:
        raise ValueError(f"wins must be a square [K, K] matrix; got shape {w.shape}")
    if np.any(w < 0) or not np.all(np.isfinite(w)):
        raise ValueError("wins must be finite and non-negative")
    k = w.shape[0]
    if isinstance(anchor, bool) or not isinstance(anchor, (int, np.integer)) or \
            not 0 <= anchor < k:
        raise ValueError(f"anchor must be a player index in [0, {k}); got {anchor!r}")
    if not (np.isfinite(prior_games) and prior_games >= 0):
        raise ValueError(f"prior_games must be finite and >= 0; got {prior_games}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive int; got {max_iter!r}")
    if not (np.isfinite(tol) and tol >= 0):
        raise ValueError(f"tol must be finite and >= 0; got {tol}")
    games = w + w.T
    np.fill_diagonal(games, 0.0)
    if k > 1 and np.any(games.sum(1) == 0):
        raise ValueError(f"players {np.flatnonzero(games.sum(1) == 0).tolist()} played no games")
    w = w + 0.5 * prior_games * (games > 0)
    np.fill_diagonal(w, 0.0)
    n = w + w.T
    free = np.array([i for i in range(k) if i != anchor])
    r = np.zeros(k)
    for _ in range(max_iter):
        p = 1.0 / (1.0 + np.exp(-(r[:, None] - r[None, :])))
        grad = (w - n * p).sum(1)
        info = n * p * (1 - p)
        hess = np.diag(info.sum(1)) - info
        try:
            step = np.linalg.solve(hess[np.ix_(free, free)], grad[free])
        except np.linalg.LinAlgError as exc:
            raise ValueError("wins: the Bradley-Terry information matrix is singular (a group "
                             "of players never met the others?)") from exc
        r[free] += step
        if np.max(np.abs(step)) < tol:
            break
    p = 1.0 / (1.0 + np.exp(-(r[:, None] - r[None, :])))
    info = n * p * (1 - p)
    hess = np.diag(info.sum(1)) - info
    try:
        cov = np.linalg.inv(hess[np.ix_(free, free)])
    except np.linalg.LinAlgError as exc:
        raise ValueError("wins: the Bradley-Terry information matrix is singular") from exc
    se = np.zeros(k)
    se[free] = np.sqrt(np.diag(cov))
    return EloFit(r * ELO_PER_NAT, se * ELO_PER_NAT)
