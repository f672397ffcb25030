"""The 8-Gaussian ring experiment and its missing-object analogue (spec Sec. 6.1).

One under-trained DDPM, one time-conditioned discriminator (500 real vs generated), then:

(a) unconditional quality: plain, D-Select (best of K by the discriminator at level 0),
    discriminator guidance, PF (resampling with ``logit d``) at K in {2, 4, 8};
(b) missing object: the condition demands modes {0, 1}; Object-Select (best of K by the guiding
    detector), PF-Detector, PF-Hybrid (unconditional discriminator + detector), PF-Discriminator.

All PF variants run one compiled sampler per K: the potential is
``a * logit d + b * detector term`` with ``(a, b)`` traced, so disc/detector/hybrid share it.
The final choice (argmax of ``log phi_0``, the paper; or a draw from the final weights) is made
outside the sampler from ``final="all"``.
"""

from __future__ import annotations

import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers import smc
from jaxpapers._src.progress import progress
from jaxpapers.diffusion_resampling import _tasks as tasks
from jaxpapers.diffusion_resampling._diffusion import make_ddpm_step, make_schedule
from jaxpapers.diffusion_resampling._models import TimeMLP, eps_fn_from, logit_fn_from
from jaxpapers.diffusion_resampling._potentials import (
    detector_log_potential,
    discriminator_guidance,
    discriminator_log_potential,
    predicted_x0,
)
from jaxpapers.diffusion_resampling._smc import plain_sample, select_best, smc_sample
from jaxpapers.diffusion_resampling._train import (
    TrainConfig,
    discriminator_accuracy,
    train_denoiser,
    train_discriminator,
)

__all__ = ["RingConfig", "run_ring"]

DEMANDED = (0, 1)


@dataclasses.dataclass(frozen=True)
class RingConfig:
    num_steps: int = 50
    beta_end: float = 0.2
    features: int = 128
    depth: int = 3
    denoiser_steps: int = 600           # deliberately under-trained (spec: 600)
    num_train: int = 20000
    disc_steps: int = 4000
    num_real_disc: int = 500            # "a small set" of real samples
    num_fake_disc: int = 20000
    num_out: int = 2000                 # outputs per method and replicate
    num_eval_real: int = 3000
    replicates: int = 3
    ks: tuple = (2, 4, 8)
    object_ks: tuple = (4, 8)
    resample_every: int = 5
    scheme: str = "multinomial"
    guidance_weight: float = 1.0
    prior: float = 0.2

    def __post_init__(self):
        for name in ("num_steps", "denoiser_steps", "disc_steps", "num_out", "replicates"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"RingConfig.{name} must be a positive int; got {value!r}")
        if self.scheme not in smc.RESAMPLERS:
            raise ValueError(f"RingConfig.scheme must be one of {sorted(smc.RESAMPLERS)}")


def _schedule_levels(cfg: RingConfig):
    return tuple(t for t in range(1, cfg.num_steps) if t % cfg.resample_every == 0)


def run_ring(key, cfg: RingConfig, show_progress: bool = False, checkpoint_dir=None):
    """Train, sample every method, and return ``(metrics, samples, info)``.

    ``metrics[name]`` holds per-replicate lists of ``ed``, ``near`` (unconditional) or ``occ``,
    ``ed_cond``, ``near`` (missing-object); ``samples[name]`` the first replicate's outputs.
    """
    timings = {}
    start = time.perf_counter()
    schedule = make_schedule(cfg.num_steps, "linear", 1e-4, cfg.beta_end)
    k_data, k_den, k_gen, k_disc, k_acc, k_eval, k_rep = jax.random.split(key, 7)
    data = tasks.sample_ring(k_data, cfg.num_train)
    denoiser = TimeMLP(cfg.features, cfg.depth)
    den_params, den_losses = train_denoiser(
        k_den, denoiser, data, schedule,
        TrainConfig(cfg.denoiser_steps, 256, 1e-3, checkpoint_every=cfg.denoiser_steps),
        checkpoint_dir=None if checkpoint_dir is None else f"{checkpoint_dir}/denoiser",
        show_progress=show_progress)
    eps_fn = eps_fn_from(denoiser, den_params)
    step = make_ddpm_step(eps_fn, schedule)
    timings["denoiser_s"] = time.perf_counter() - start

    # generated set for the discriminator (the sampler's own outputs)
    plain_jit = jax.jit(lambda k, x: plain_sample(k, step, x, cfg.num_steps))
    kmax = max(max(cfg.ks), max(cfg.object_ks))
    batches = -(-cfg.num_fake_disc // (cfg.num_out * kmax))  # same shape as the runs below
    fake = jnp.concatenate([
        jnp.reshape(plain_jit(jax.random.fold_in(k_gen, 2 * b + 1),
                              jax.random.normal(jax.random.fold_in(k_gen, 2 * b),
                                                (cfg.num_out, kmax, 2))), (-1, 2))
        for b in range(batches)])[:cfg.num_fake_disc]
    real_small = tasks.sample_ring(jax.random.fold_in(k_data, 1), cfg.num_real_disc)
    n_hold = min(2000, cfg.num_fake_disc // 5)  # generated points held out for the accuracy
    disc = TimeMLP(cfg.features, cfg.depth, out_features=1)
    t0 = time.perf_counter()
    disc_params, disc_losses = train_discriminator(
        k_disc, disc, real_small, fake[:-n_hold], schedule,
        TrainConfig(cfg.disc_steps, 256, 1e-3, checkpoint_every=cfg.disc_steps),
        checkpoint_dir=None if checkpoint_dir is None else f"{checkpoint_dir}/discriminator",
        show_progress=show_progress)
    logit_fn = logit_fn_from(disc, disc_params)
    timings["discriminator_s"] = time.perf_counter() - t0
    held_real = tasks.sample_ring(jax.random.fold_in(k_data, 2), n_hold)
    held_fake = fake[-n_hold:]
    accuracy = {int(t): float(discriminator_accuracy(jax.random.fold_in(k_acc, t), logit_fn,
                                                     held_real, held_fake, schedule, t))
                for t in (0, cfg.num_steps // 10, cfg.num_steps // 5, cfg.num_steps // 2)}

    disc_pot = discriminator_log_potential(logit_fn)
    det_pot = detector_log_potential(predicted_x0(eps_fn, schedule),
                                     tasks.soft_mode_detector(DEMANDED), prior=cfg.prior)
    levels = _schedule_levels(cfg)

    def pf_run(k, x_init, weights):
        pot = lambda x, t, c: weights[0] * disc_pot(x, t, c) + weights[1] * det_pot(x, t, c)
        out = smc_sample(k, step, pot, levels, x_init.shape[1], x_init, cfg.num_steps,
                         scheme=cfg.scheme, final="all")
        return out.particles, out.log_potential, out.log_weights, out.valid

    pf_jit = jax.jit(pf_run)
    guided_step = make_ddpm_step(discriminator_guidance(eps_fn, logit_fn, schedule,
                                                        cfg.guidance_weight), schedule)
    dg_jit = jax.jit(lambda k, x: plain_sample(k, guided_step, x, cfg.num_steps))
    disc_score = jax.jit(lambda x: disc_pot(x, jnp.int32(0), None))
    det_score = jax.jit(lambda x: det_pot(x, jnp.int32(0), None))

    real_eval = tasks.sample_ring(k_eval, cfg.num_eval_real)
    real_cond = tasks.sample_ring(jax.random.fold_in(k_eval, 1), cfg.num_eval_real,
                                  modes=DEMANDED)
    ed = jax.jit(tasks.energy_distance)
    metrics: dict[str, dict[str, list[float]]] = {}
    samples: dict[str, np.ndarray] = {}

    def record(name, x, rep):
        m = metrics.setdefault(name, {"ed": [], "near": [], "occ": [], "ed_cond": []})
        m["ed"].append(float(ed(x, real_eval)))
        m["near"].append(float(tasks.near_mode_fraction(x)))
        m["occ"].append(float(jnp.mean(tasks.hard_mode_occurrence(x, DEMANDED))))
        m["ed_cond"].append(float(ed(x, real_cond)))
        if rep == 0:
            samples[name] = np.asarray(x)

    weight_sets = {"PF": (1.0, 0.0), "PF-Detector": (0.0, 1.0), "PF-Hybrid": (1.0, 1.0)}
    t0 = time.perf_counter()
    for rep in progress(range(cfg.replicates), total=cfg.replicates, desc="replicates",
                        enabled=show_progress):
        kr = jax.random.fold_in(k_rep, rep)
        k_init, k_plain, k_dg, k_pf, k_pick = jax.random.split(kr, 5)
        x_init = jax.random.normal(k_init, (cfg.num_out, kmax, 2))
        x0 = plain_jit(k_plain, x_init)  # K_max iid chains per group
        record("plain", x0[:, 0], rep)
        dscore = disc_score(x0)
        oscore = det_score(x0)
        for k in cfg.ks:
            record(f"D-Select K={k}", select_best(x0[:, :k], dscore[:, :k])[0], rep)
        for k in cfg.object_ks:
            record(f"Object-Select K={k}", select_best(x0[:, :k], oscore[:, :k])[0], rep)
        record("D-Guidance", dg_jit(k_dg, x_init[:, :1])[:, 0], rep)
        for k in sorted(set(cfg.ks) | set(cfg.object_ks)):
            for name, w in weight_sets.items():
                if name == "PF" and k not in cfg.ks:
                    continue
                if name != "PF" and k not in cfg.object_ks:
                    continue
                parts, log_phi, log_w, valid = pf_jit(jax.random.fold_in(k_pf, k), x_init[:, :k],
                                                      jnp.asarray(w, jnp.float32))
                if not bool(jnp.all(valid)):
                    raise FloatingPointError(f"{name} K={k}: invalid weights in some group")
                record(f"{name} K={k}", select_best(parts, log_phi)[0], rep)
                if name == "PF" and k == 4:
                    keys = jax.random.split(jax.random.fold_in(k_pick, k), cfg.num_out)
                    idx = jax.vmap(lambda kk, lw: smc.resample(kk, lw, "multinomial", 1)[0])(
                        keys, log_w)
                    record("PF-sample K=4", jax.vmap(lambda xg, i: xg[i])(parts, idx), rep)
    timings["sampling_s"] = time.perf_counter() - t0
    record("real (held-out)", tasks.sample_ring(jax.random.fold_in(k_eval, 7), cfg.num_out), 0)
    info = {"disc_accuracy_by_level": accuracy, "timings": timings,
            "denoiser_final_loss": float(jnp.mean(den_losses[-50:])),
            "disc_final_loss": float(jnp.mean(disc_losses[-200:])),
            "resample_levels": list(levels)}
    return metrics, samples, info
