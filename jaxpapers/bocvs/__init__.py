"""Bayesian optimisation with cost-varying variable subsets (BOCVS; Tay et al., NeurIPS 2023).

Policies (UCB-CVS, UCB-PSQ, ETC-50/100/Ada), the expected UCB and its maximisation per control
set, and :func:`run_bo`, one traceable BO loop (or round by round: :func:`init`, :func:`step`,
:func:`history`); the paper's problems are in
:mod:`jaxpapers.bocvs.problems`, regret in :mod:`jaxpapers.bocvs.metrics`. Seeds in parallel,
compiled once::

    problem = problems.make_problem("hartmann3", "moderate", 0.02)
    run = jax.jit(jax.vmap(lambda k: run_bo(k, problem_spec(problem), etc_ada(problem.costs),
                                            problem.objective, BOConfig(num_samples=64))))
    history = run(jax.random.split(jax.random.key(0), 10))

Bad input raises ``ValueError`` naming the argument; under ``jit`` a bad value stops
:func:`run_bo` with a fault status (:data:`STATUS`, :func:`raise_for_status`).
"""

from jaxpapers.bocvs import acquisition, metrics, problems
from jaxpapers.bocvs._acquisition import (
    OptimizerConfig,
    expected_ucb,
    maximize_expected_ucb,
)
from jaxpapers.bocvs._loop import (
    STATUS,
    BOConfig,
    BOError,
    BOInfo,
    BOState,
    History,
    ProblemSpec,
    history,
    init,
    problem_spec,
    raise_for_status,
    run_bo,
    step,
)
from jaxpapers.bocvs._policy import (
    Policy,
    etc,
    etc_ada,
    select_control_set,
    ucb_cvs,
    ucb_psq,
    ucb_psq_per_cost,
)

__all__ = [
    "acquisition",
    "STATUS",
    "BOConfig",
    "BOError",
    "BOInfo",
    "BOState",
    "History",
    "OptimizerConfig",
    "Policy",
    "ProblemSpec",
    "etc",
    "etc_ada",
    "expected_ucb",
    "history",
    "init",
    "maximize_expected_ucb",
    "metrics",
    "problem_spec",
    "problems",
    "raise_for_status",
    "run_bo",
    "select_control_set",
    "step",
    "ucb_cvs",
    "ucb_psq",
    "ucb_psq_per_cost",
]
