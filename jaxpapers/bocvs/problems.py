"""The benchmark problems of the BOCVS paper: test functions, cost regimes and input noise.

>>> from jaxpapers.bocvs.problems import make_problem
>>> problem = make_problem("hartmann3", "moderate", 0.02)
>>> problem.dim, len(problem.control_sets), problem.budget
(3, 7, 50.0)
"""

from jaxpapers.bocvs._problems import (
    COST_REGIMES,
    PROBLEMS,
    Problem,
    ackley,
    gp_sample_objective,
    hartmann3,
    hartmann6,
    make_problem,
    sample_inputs,
)

__all__ = ["COST_REGIMES", "PROBLEMS", "Problem", "ackley", "gp_sample_objective", "hartmann3",
           "hartmann6", "make_problem", "sample_inputs"]
