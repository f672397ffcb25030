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


class _Samplers:
    """Jitted samplers taking the parameters as arguments (compiled once for all seeds)."""

    def __init__(self, cfg: RingConfig):
        self.cfg = cfg
        self.schedule = schedule = make_schedule(cfg.num_steps, "linear", 1e-4, cfg.beta_end)
        self.denoiser = denoiser = TimeMLP(cfg.features, cfg.depth)
        self.disc = disc = TimeMLP(cfg.features, cfg.depth, out_features=1)
        self.levels = levels = _schedule_levels(cfg)
        T = cfg.num_steps

        def parts(den_params, disc_params):
            eps_fn = eps_fn_from(denoiser, den_params)
            logit_fn = logit_fn_from(disc, disc_params)
            step = make_ddpm_step(eps_fn, schedule)
            disc_pot = discriminator_log_potential(logit_fn)
            det_pot = detector_log_potential(predicted_x0(eps_fn, schedule),
                                             tasks.soft_mode_detector(DEMANDED),
                                             prior=cfg.prior)
            return eps_fn, logit_fn, step, disc_pot, det_pot

        def plain(k, x, den_params):
            return plain_sample(k, parts(den_params, None)[2], x, T)

        def pf(k, x_init, weights, den_params, disc_params):
            _, _, step, disc_pot, det_pot = parts(den_params, disc_params)
            pot = lambda x, t, c: weights[0] * disc_pot(x, t, c) + weights[1] * det_pot(x, t, c)
            out = smc_sample(k, step, pot, levels, x_init.shape[1], x_init, T,
                             scheme=cfg.scheme, final="all")
            return out.particles, out.log_potential, out.log_weights, out.valid

        def guided(k, x, den_params, disc_params):
            eps_fn, logit_fn, _, _, _ = parts(den_params, disc_params)
            step = make_ddpm_step(discriminator_guidance(eps_fn, logit_fn, schedule,
                                                         cfg.guidance_weight), schedule)
            return plain_sample(k, step, x, T)

        def scores(x, den_params, disc_params):
            _, _, _, disc_pot, det_pot = parts(den_params, disc_params)
            return disc_pot(x, jnp.int32(0), None), det_pot(x, jnp.int32(0), None)

        self.plain = jax.jit(plain)
        self.pf = jax.jit(pf)
        self.guided = jax.jit(guided)
        self.scores = jax.jit(scores)
        self.ed = jax.jit(tasks.energy_distance)


def _train(key, cfg: RingConfig, samplers: _Samplers, show_progress, checkpoint_dir):
    schedule = samplers.schedule
    k_data, k_den, k_gen, k_disc, k_acc = jax.random.split(key, 5)
    data = tasks.sample_ring(k_data, cfg.num_train)
    t0 = time.perf_counter()
    den_params, den_losses = train_denoiser(
        k_den, samplers.denoiser, data, schedule,
        TrainConfig(cfg.denoiser_steps, 256, 1e-3, checkpoint_every=cfg.denoiser_steps),
        checkpoint_dir=None if checkpoint_dir is None else f"{checkpoint_dir}/denoiser",
        show_progress=show_progress)
    t1 = time.perf_counter()
    # the discriminator's generated set: the sampler's own outputs (same shapes as the runs)
    kmax = max(max(cfg.ks), max(cfg.object_ks))
    batches = -(-cfg.num_fake_disc // (cfg.num_out * kmax))
    fake = jnp.concatenate([
        jnp.reshape(samplers.plain(jax.random.fold_in(k_gen, 2 * b + 1),
                                   jax.random.normal(jax.random.fold_in(k_gen, 2 * b),
                                                     (cfg.num_out, kmax, 2)), den_params),
                    (-1, 2))
        for b in range(batches)])[:cfg.num_fake_disc]
    real_small = tasks.sample_ring(jax.random.fold_in(k_data, 1), cfg.num_real_disc)
    n_hold = min(2000, cfg.num_fake_disc // 5)  # generated points held out for the accuracy
    disc_params, disc_losses = train_discriminator(
        k_disc, samplers.disc, real_small, fake[:-n_hold], schedule,
        TrainConfig(cfg.disc_steps, 256, 1e-3, checkpoint_every=cfg.disc_steps),
        checkpoint_dir=None if checkpoint_dir is None else f"{checkpoint_dir}/discriminator",
        show_progress=show_progress)
    t2 = time.perf_counter()
    logit_fn = logit_fn_from(samplers.disc, disc_params)
    held_real = tasks.sample_ring(jax.random.fold_in(k_data, 2), n_hold)
    accuracy = {int(t): float(discriminator_accuracy(jax.random.fold_in(k_acc, t), logit_fn,
                                                     held_real, fake[-n_hold:], schedule, t))
                for t in (0, cfg.num_steps // 10, cfg.num_steps // 5, cfg.num_steps // 2)}
    info = {"disc_accuracy_by_level": accuracy, "denoiser_s": t1 - t0,
            "discriminator_s": t2 - t1,
            "denoiser_final_loss": float(jnp.mean(den_losses[-50:])),
            "disc_final_loss": float(jnp.mean(disc_losses[-200:]))}
    return den_params, disc_params, info


def run_ring(key, cfg: RingConfig, show_progress: bool = False, checkpoint_dir=None):
    """Train and sample every method for ``cfg.replicates`` independent seeds.

    Each replicate trains its own denoiser and discriminator and draws its own samples, so the
    standard errors include training variability. Returns ``(metrics, samples, info)``:
    ``metrics[name][metric]`` lists per-replicate values of ``ed``, ``near``, ``occ`` and
    ``ed_cond``; ``samples[name]`` holds the first replicate's outputs.
    """
    samplers = _Samplers(cfg)
    k_eval, k_rep = jax.random.split(key)
    real_eval = tasks.sample_ring(k_eval, cfg.num_eval_real)
    real_cond = tasks.sample_ring(jax.random.fold_in(k_eval, 1), cfg.num_eval_real,
                                  modes=DEMANDED)
    metrics: dict[str, dict[str, list[float]]] = {}
    samples: dict[str, np.ndarray] = {}
    per_seed = []

    def record(name, x, rep):
        m = metrics.setdefault(name, {"ed": [], "near": [], "occ": [], "ed_cond": []})
        m["ed"].append(float(samplers.ed(x, real_eval)))
        m["near"].append(float(tasks.near_mode_fraction(x)))
        m["occ"].append(float(jnp.mean(tasks.hard_mode_occurrence(x, DEMANDED))))
        m["ed_cond"].append(float(samplers.ed(x, real_cond)))
        if rep == 0:
            samples[name] = np.asarray(x)

    kmax = max(max(cfg.ks), max(cfg.object_ks))
    weight_sets = {"PF": (1.0, 0.0), "PF-Detector": (0.0, 1.0), "PF-Hybrid": (1.0, 1.0)}
    sampling_s = 0.0
    for rep in progress(range(cfg.replicates), total=cfg.replicates, desc="seeds",
                        enabled=show_progress):
        kr = jax.random.fold_in(k_rep, rep)
        k_train, k_init, k_plain, k_dg, k_pf, k_pick = jax.random.split(kr, 6)
        ckpt = None if checkpoint_dir is None else f"{checkpoint_dir}/seed{rep}"
        den, dsc, info = _train(k_train, cfg, samplers, show_progress, ckpt)
        per_seed.append(info)
        t0 = time.perf_counter()
        x_init = jax.random.normal(k_init, (cfg.num_out, kmax, 2))
        x0 = samplers.plain(k_plain, x_init, den)  # K_max iid chains per group
        record("plain", x0[:, 0], rep)
        dscore, oscore = samplers.scores(x0, den, dsc)
        for k in cfg.ks:
            record(f"D-Select K={k}", select_best(x0[:, :k], dscore[:, :k])[0], rep)
        for k in cfg.object_ks:
            record(f"Object-Select K={k}", select_best(x0[:, :k], oscore[:, :k])[0], rep)
        record("D-Guidance", samplers.guided(k_dg, x_init[:, :1], den, dsc)[:, 0], rep)
        for k in sorted(set(cfg.ks) | set(cfg.object_ks)):
            for name, w in weight_sets.items():
                if name == "PF" and k not in cfg.ks or name != "PF" and k not in cfg.object_ks:
                    continue
                parts, log_phi, log_w, valid = samplers.pf(
                    jax.random.fold_in(k_pf, k), x_init[:, :k], jnp.asarray(w, jnp.float32),
                    den, dsc)
                if not bool(jnp.all(valid)):
                    raise FloatingPointError(f"{name} K={k}: invalid weights in some group")
                record(f"{name} K={k}", select_best(parts, log_phi)[0], rep)
                if name == "PF" and k == 4:
                    keys = jax.random.split(jax.random.fold_in(k_pick, k), cfg.num_out)
                    idx = jax.vmap(lambda kk, lw: smc.resample(kk, lw, "multinomial", 1)[0])(
                        keys, log_w)
                    record("PF-sample K=4", jax.vmap(lambda xg, i: xg[i])(parts, idx), rep)
        sampling_s += time.perf_counter() - t0
    record("real (held-out)", tasks.sample_ring(jax.random.fold_in(k_eval, 7), cfg.num_out), 0)
    timings = {"denoiser_s": sum(i["denoiser_s"] for i in per_seed),
               "discriminator_s": sum(i["discriminator_s"] for i in per_seed),
               "sampling_s": sampling_s}
    info = {"disc_accuracy_by_level": per_seed[0]["disc_accuracy_by_level"],
            "disc_accuracy_by_level_per_seed": [i["disc_accuracy_by_level"] for i in per_seed],
            "timings": timings,
            "denoiser_final_loss": [i["denoiser_final_loss"] for i in per_seed],
            "disc_final_loss": [i["disc_final_loss"] for i in per_seed],
            "resample_levels": list(samplers.levels)}
    return metrics, samples, info
