"""Bayesian optimisation with cost-varying variable subsets (BOCVS; Tay et al., NeurIPS 2023).

Problems (``make_problem``, ``problem_spec``), policies (UCB-CVS, UCB-PSQ, ETC-50/100/Ada:
``ucb_cvs``, ``ucb_psq``, ``etc``, ``etc_ada``), the expected UCB and its maximisation per
control set, and ``run_bo``, one traceable BO loop. Seeds in parallel, compiled once::

    problem = make_problem("hartmann3", "moderate", 0.02)
    run = jax.jit(jax.vmap(lambda k: run_bo(k, problem_spec(problem), etc_ada(problem.costs),
                                            problem.objective, BOConfig(num_samples=64))))
    history = run(jax.random.split(jax.random.key(0), 10))

Bad input: a wrong shape, dtype or setting raises ``ValueError`` naming the argument, at call or
trace time. A bad value (NaN/inf, out of range) raises eagerly; under ``jit``
``select_control_set`` returns ``-1`` (never set 0), ``run_bo`` stops with a fault status
(:data:`STATUS`; :func:`raise_for_status` raises) and the acquisition functions return NaN.
"""

from jaxpapers.bocvs._acquisition import (
    OptimizerConfig,
    expected_ucb,
    maximize_per_control_set,
)
from jaxpapers.bocvs._loop import (
    STATUS,
    BOConfig,
    BOError,
    History,
    ProblemSpec,
    problem_spec,
    raise_for_status,
    run_bo,
)
from jaxpapers.bocvs._metrics import (
    cumulative_regret,
    final_simple_regret,
    simple_regret_curve,
)
from jaxpapers.bocvs._newton import maximize_expected_ucb, newton_refine
from jaxpapers.bocvs._policy import (
    Policy,
    etc,
    etc_ada,
    select_control_set,
    ucb_cvs,
    ucb_psq,
    ucb_psq_per_cost,
)
from jaxpapers.bocvs._problems import (
    COST_REGIMES,
    PROBLEMS,
    Problem,
    make_problem,
)

__all__ = [
    "COST_REGIMES",
    "PROBLEMS",
    "STATUS",
    "BOConfig",
    "BOError",
    "History",
    "OptimizerConfig",
    "Policy",
    "Problem",
    "ProblemSpec",
    "cumulative_regret",
    "etc",
    "etc_ada",
    "expected_ucb",
    "final_simple_regret",
    "make_problem",
    "maximize_expected_ucb",
    "maximize_per_control_set",
    "newton_refine",
    "problem_spec",
    "raise_for_status",
    "run_bo",
    "select_control_set",
    "simple_regret_curve",
    "ucb_cvs",
    "ucb_psq",
    "ucb_psq_per_cost",
]
