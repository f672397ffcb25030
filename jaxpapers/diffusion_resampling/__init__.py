"""Particle filtering during diffusion sampling (Liu, Zhang, Jaakkola & Chang, CVPR 2024).

Public API::

    smc_sample(key, transition_fn, log_potential_fn, resample_schedule, num_particles,
               x_init, num_steps, cond=None, *, scheme, ess_threshold, final, ...) -> SMCOutput
    plain_sample(key, transition_fn, x_init, num_steps, cond=None) -> x0 [G, K, ...]
    select_best(particles, scores) -> (samples, chosen)          # best-of-K baselines
    make_schedule / q_sample / predict_x0 / epsilon_loss / make_ddpm_step / make_ddim_step /
        cfg_eps                                                  # the DDPM substrate
    ddpm_transition(eps_fn, schedule, x, t, cond=None) -> distrax distribution of x_{t-1} | x_t
    discriminator_log_potential / detector_log_potential / predicted_x0 /
        sum_log_potentials (hybrid, weighted) / discriminator_guidance (baseline)
    detection_probabilities / miss_rate_table / tabulated_miss_rate  # measured miss rate
    initial_ancestors / num_lineages                             # ancestry diagnostics
    TimeMLP / ConvDenoiser / ConvDiscriminator, eps_fn_from / logit_fn_from (Flax models)
    TrainConfig, train_denoiser / train_discriminator           # Optax, checkpointed
    discriminator_accuracy(key, logit_fn, real, fake, schedule, level)

Every resampling step goes through :mod:`jaxpapers.smc`. Toy tasks with known answers (the
8-Gaussian ring, its detectors and distances) are in :mod:`jaxpapers.diffusion_resampling.toy`;
the reproduction's drivers (ring, digits, shapes) are private.

Bad input (the rule of every function here): a wrong shape, dtype or setting raises
``ValueError`` naming the argument, at call or trace time (so does a sampler asked for more steps
than its transition was built for). A bad value (a level outside ``[0, T]``, NaN/inf data, a
condition or ancestor index out of range) raises eagerly; under ``jit`` the affected results are
NaN (never a clamped or wrapped level), ``smc_sample``'s ``valid`` is False for a group with a
NaN, and a selection without a valid choice returns ``-1`` (never particle 0).
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
from jaxpapers.diffusion_resampling._models import (
    ConvDenoiser,
    ConvDiscriminator,
    TimeMLP,
    eps_fn_from,
    logit_fn_from,
)
from jaxpapers.diffusion_resampling._potentials import (
    detection_probabilities,
    detector_log_potential,
    discriminator_guidance,
    discriminator_log_potential,
    miss_rate_table,
    predicted_x0,
    sum_log_potentials,
    tabulated_miss_rate,
)
from jaxpapers.diffusion_resampling._smc import (
    SMCOutput,
    initial_ancestors,
    num_lineages,
    plain_sample,
    select_best,
    smc_sample,
)
from jaxpapers.diffusion_resampling._train import (
    TrainConfig,
    discriminator_accuracy,
    train_denoiser,
    train_discriminator,
)

__all__ = [
    "ConvDenoiser",
    "ConvDiscriminator",
    "SMCOutput",
    "Schedule",
    "TimeMLP",
    "TrainConfig",
    "cfg_eps",
    "ddpm_transition",
    "detection_probabilities",
    "detector_log_potential",
    "discriminator_accuracy",
    "discriminator_guidance",
    "discriminator_log_potential",
    "eps_fn_from",
    "initial_ancestors",
    "epsilon_loss",
    "logit_fn_from",
    "make_ddim_step",
    "make_ddpm_step",
    "make_schedule",
    "miss_rate_table",
    "num_lineages",
    "plain_sample",
    "predict_x0",
    "predicted_x0",
    "q_sample",
    "select_best",
    "smc_sample",
    "sum_log_potentials",
    "tabulated_miss_rate",
    "train_denoiser",
    "train_discriminator",
]
