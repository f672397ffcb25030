"""Particle filtering during diffusion sampling (Liu, Zhang, Jaakkola & Chang, CVPR 2024).

A DDPM/DDIM reverse chain is the proposal of a particle filter (:func:`smc_sample`) whose
potentials come from a discriminator, a detector or both. Flax models are in
:mod:`~jaxpapers.diffusion_resampling.models`, evaluation in
:mod:`~jaxpapers.diffusion_resampling.metrics`, toy tasks with known answers in
:mod:`~jaxpapers.diffusion_resampling.toy`. Every resampling step goes through
:mod:`jaxpapers.smc`. Bad input: a wrong shape, dtype or setting raises ``ValueError`` naming the
argument; a bad value raises eagerly and, under ``jit``, gives NaN or a False ``valid`` flag.
"""

from jaxpapers.diffusion_resampling import metrics, models, toy
from jaxpapers.diffusion_resampling._diffusion import (
    Schedule,
    cfg_eps,
    ddpm_transition,
    epsilon_loss,
    make_ddim_step,
    make_ddpm_step,
    make_schedule,
    q_sample,
)
from jaxpapers.diffusion_resampling._potentials import (
    detector_log_potential,
    discriminator_guidance,
    discriminator_log_potential,
    predicted_x0,
    sum_log_potentials,
)
from jaxpapers.diffusion_resampling._smc import (
    SMCOutput,
    plain_sample,
    select_best,
    smc_sample,
)
from jaxpapers.diffusion_resampling._train import (
    TrainConfig,
    train_denoiser,
    train_discriminator,
)

__all__ = [
    "SMCOutput",
    "Schedule",
    "TrainConfig",
    "cfg_eps",
    "ddpm_transition",
    "detector_log_potential",
    "discriminator_guidance",
    "discriminator_log_potential",
    "epsilon_loss",
    "make_ddim_step",
    "make_ddpm_step",
    "make_schedule",
    "metrics",
    "models",
    "plain_sample",
    "predicted_x0",
    "q_sample",
    "select_best",
    "smc_sample",
    "sum_log_potentials",
    "toy",
    "train_denoiser",
    "train_discriminator",
]
