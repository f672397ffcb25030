"""Particle filtering during diffusion sampling (Liu, Zhang, Jaakkola & Chang, CVPR 2024).

Public API::

    smc_sample(key, transition_fn, log_potential_fn, resample_schedule, num_particles,
               x_init, num_steps, cond=None, *, scheme, ess_threshold, final, ...) -> SMCOutput
    plain_sample(key, transition_fn, x_init, num_steps, cond=None) -> x0 [G, K, ...]
    select_best(particles, scores) -> (samples, chosen)          # best-of-K baselines
    make_schedule / q_sample / predict_x0 / epsilon_loss / make_ddpm_step / make_ddim_step

Every resampling step goes through :mod:`jaxpapers.smc`.
"""

from jaxpapers.diffusion_resampling._diffusion import (
    Schedule,
    cfg_eps,
    epsilon_loss,
    make_ddim_step,
    make_ddpm_step,
    make_schedule,
    predict_x0,
    q_sample,
)
from jaxpapers.diffusion_resampling._smc import (
    FINAL_CHOICES,
    SMCOutput,
    plain_sample,
    schedule_mask,
    select_best,
    smc_sample,
)

__all__ = [
    "FINAL_CHOICES",
    "SMCOutput",
    "Schedule",
    "cfg_eps",
    "epsilon_loss",
    "make_ddim_step",
    "make_ddpm_step",
    "make_schedule",
    "plain_sample",
    "predict_x0",
    "q_sample",
    "schedule_mask",
    "select_best",
    "smc_sample",
]
