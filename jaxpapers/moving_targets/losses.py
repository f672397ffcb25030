"""The network's runs, the moving-targets errors and the exact weight solves.

A free run feeds the network its own outputs (only inputs are clamped); one step feeds it the
moving targets. The activation deficit is quadratic in the weights, which
:func:`solve_weights` solves exactly; :func:`reduced_act` is the error left as a function of
the hidden trajectories alone (variable projection).
"""

from jaxpapers.moving_targets._losses import (
    act_deficit,
    bptt_loss,
    out_deficit,
    reduced_act,
    reduced_act_grad,
    shooting_loss,
    solve_events,
    solve_weights,
)
from jaxpapers.moving_targets._model import (
    compose,
    free_run,
    free_run_error,
    one_step,
    one_step_error,
)

__all__ = ["act_deficit", "bptt_loss", "compose", "free_run", "free_run_error", "one_step",
           "one_step_error", "out_deficit", "reduced_act", "reduced_act_grad", "shooting_loss",
           "solve_events", "solve_weights"]
