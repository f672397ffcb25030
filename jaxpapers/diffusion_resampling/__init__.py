"""Particle filtering during diffusion sampling (Liu, Zhang, Jaakkola & Chang, CVPR 2024).

Public API::

    smc_sample(key, transition_fn, log_potential_fn, resample_schedule, num_particles,
               x_init, num_steps, cond=None, *, scheme, ess_threshold, final, ...) -> SMCOutput
    plain_sample(key, transition_fn, x_init, num_steps, cond=None) -> x0 [G, K, ...]
    select_best(particles, scores) -> (samples, chosen)          # best-of-K baselines
    make_schedule / q_sample / predict_x0 / epsilon_loss / make_ddpm_step / make_ddim_step
    ddpm_transition(eps_fn, schedule, x, t, cond=None) -> distrax distribution of x_{t-1} | x_t
    TimeMLP / ConvDenoiser / ConvDiscriminator; train_denoiser / train_discriminator
    discriminator_log_potential / detector_log_potential / sum_log_potentials (hybrid)
    discriminator_guidance (baseline)
    sample_ring / soft_mode_detector / hard_mode_occurrence / energy_distance (toy tasks)
    run_ring(key, RingConfig) / run_digits(key, DigitsConfig) (the reproduction experiments)
    make_shapes / ShapeDetector / run_shapes(key, ShapesConfig) (32x32 shapes, --scale paper)

Every resampling step goes through :mod:`jaxpapers.smc`.
"""

from jaxpapers.diffusion_resampling._diffusion import (
    Schedule,
    cfg_eps,
    ddpm_transition,
    epsilon_loss,
    make_ddim_step,
    make_ddpm_step,
    make_schedule,
    predict_x0,
    q_sample,
)
from jaxpapers.diffusion_resampling._digits import DigitsConfig, load_digits_images, run_digits
from jaxpapers.diffusion_resampling._models import (
    ConvDenoiser,
    ConvDiscriminator,
    TimeMLP,
    eps_fn_from,
    logit_fn_from,
    timestep_embedding,
)
from jaxpapers.diffusion_resampling._potentials import (
    LOGIT_CLIP,
    detector_log_potential,
    detector_term,
    discriminator_guidance,
    discriminator_log_potential,
    flatten_call,
    predicted_x0,
    sum_log_potentials,
)
from jaxpapers.diffusion_resampling._ring import RingConfig, run_ring
from jaxpapers.diffusion_resampling._shapes import (
    ShapeDetector,
    ShapesConfig,
    make_shapes,
    run_shapes,
)
from jaxpapers.diffusion_resampling._smc import (
    FINAL_CHOICES,
    SMCOutput,
    plain_sample,
    schedule_mask,
    select_best,
    smc_sample,
)
from jaxpapers.diffusion_resampling._tasks import (
    energy_distance,
    frechet_distance,
    hard_mode_occurrence,
    near_mode_fraction,
    ring_centres,
    sample_ring,
    soft_mode_detector,
)
from jaxpapers.diffusion_resampling._train import (
    TrainConfig,
    TrainState,
    discriminator_accuracy,
    sample_levels,
    train_denoiser,
    train_discriminator,
)

__all__ = [
    "cfg_eps",
    "ConvDenoiser",
    "ConvDiscriminator",
    "ddpm_transition",
    "detector_log_potential",
    "detector_term",
    "DigitsConfig",
    "discriminator_accuracy",
    "discriminator_guidance",
    "discriminator_log_potential",
    "energy_distance",
    "eps_fn_from",
    "epsilon_loss",
    "FINAL_CHOICES",
    "flatten_call",
    "frechet_distance",
    "hard_mode_occurrence",
    "load_digits_images",
    "make_shapes",
    "LOGIT_CLIP",
    "logit_fn_from",
    "make_ddim_step",
    "make_ddpm_step",
    "make_schedule",
    "near_mode_fraction",
    "plain_sample",
    "predict_x0",
    "predicted_x0",
    "q_sample",
    "ring_centres",
    "RingConfig",
    "run_digits",
    "run_ring",
    "run_shapes",
    "sample_levels",
    "sample_ring",
    "Schedule",
    "schedule_mask",
    "select_best",
    "ShapeDetector",
    "ShapesConfig",
    "smc_sample",
    "SMCOutput",
    "soft_mode_detector",
    "sum_log_potentials",
    "TimeMLP",
    "timestep_embedding",
    "train_denoiser",
    "train_discriminator",
    "TrainConfig",
    "TrainState",
]
