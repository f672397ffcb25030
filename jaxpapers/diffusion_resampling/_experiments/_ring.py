"""The 8-Gaussian ring experiment and its missing-object analogue (spec Sec. 6.1).

One under-trained DDPM, one time-conditioned discriminator (500 real vs generated), then:

(a) unconditional quality: plain, D-Select (best of K by the discriminator at level 0),
    discriminator guidance, PF (resampling with ``logit d``) at K in {2, 4, 8};
(b) missing object: the condition demands modes {0, 1}; Object-Select (best of K by the guiding
    detector), PF-Detector, PF-Hybrid (unconditional discriminator + detector), PF-Discriminator.

All PF variants run one compiled sampler per K: the potential is
``sum_log_potentials(logit d, detector term, weights=(a, b))`` with ``(a, b)`` traced, so
discriminator, detector and hybrid share it. The final choice (argmax of ``log phi_0``, the paper;
or a draw from the final weights) is made outside the sampler from ``final="all"``.

Results are keyed by :class:`MethodKey` ``(method, K)``.
"""

from __future__ import annotations

import dataclasses
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers import smc
from jaxpapers.diffusion_resampling import toy
from jaxpapers.diffusion_resampling._diffusion import make_ddpm_step, make_schedule
from jaxpapers.diffusion_resampling._models import TimeMLP, eps_fn_from, logit_fn_from
from jaxpapers.diffusion_resampling._potentials import (
    detector_log_potential,
    discriminator_guidance,
    discriminator_log_potential,
    predicted_x0,
    sum_log_potentials,
)
from jaxpapers.diffusion_resampling._smc import plain_sample, select_best, smc_sample
from jaxpapers.diffusion_resampling._train import (
    TrainConfig,
    discriminator_accuracy,
    train_denoiser,
    train_discriminator,
)

__all__ = ["RingConfig", "MethodKey", "run_ring", "DEMANDED"]

DEMANDED = (0, 1)


class MethodKey(NamedTuple):
    """A result's key: the method's name and its particle count ``K`` (1 for single chains)."""

    method: str
    k: int


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
    #: the schedule ablation: PF resampling only at these low-noise levels (empty: not run)
    low_noise_levels: tuple = (5, 10)

    def __post_init__(self):
        for name in ("num_steps", "denoiser_steps", "disc_steps", "num_out", "replicates"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"RingConfig.{name} must be a positive int; got {value!r}")
        if self.scheme not in smc.RESAMPLERS:
            raise ValueError(f"RingConfig.scheme must be one of {sorted(smc.RESAMPLERS)}")
        if any(not 0 < t < self.num_steps for t in self.low_noise_levels):
            raise ValueError(f"RingConfig.low_noise_levels must lie in [1, num_steps - 1]; got "
                             f"{self.low_noise_levels!r}")

    @property
    def levels(self) -> tuple[int, ...]:
        """Resampling levels: every ``resample_every``-th level in ``[1, num_steps - 1]``."""
        return tuple(t for t in range(1, self.num_steps) if t % self.resample_every == 0)


#: the weights ``(discriminator, detector)`` of each particle-filter variant
PF_WEIGHTS = {"PF": (1.0, 0.0), "PF-Detector": (0.0, 1.0), "PF-Hybrid": (1.0, 1.0)}


class _Samplers:
    """Compiled samplers taking the parameters as arguments (compiled once for all seeds)."""

    def __init__(self, cfg: RingConfig, jit):
        self.cfg = cfg
        self.schedule = schedule = make_schedule(cfg.num_steps, "linear", 1e-4, cfg.beta_end)
        self.denoiser = denoiser = TimeMLP(cfg.features, cfg.depth)
        self.disc = disc = TimeMLP(cfg.features, cfg.depth, out_features=1)
        levels = cfg.levels
        T = cfg.num_steps

        def parts(den_params, disc_params):
            eps_fn = eps_fn_from(denoiser, den_params)
            logit_fn = logit_fn_from(disc, disc_params)
            step = make_ddpm_step(eps_fn, schedule)
            disc_pot = discriminator_log_potential(logit_fn)
            det_pot = detector_log_potential(predicted_x0(eps_fn, schedule),
                                             toy.soft_mode_detector(DEMANDED), prior=cfg.prior)
            return eps_fn, logit_fn, step, disc_pot, det_pot

        def plain(k, x, den_params):
            return plain_sample(k, parts(den_params, None)[2], x, T)

        def pf_at(schedule_levels):
            def pf(k, x_init, weights, den_params, disc_params):
                _, _, step, disc_pot, det_pot = parts(den_params, disc_params)
                potential = sum_log_potentials(disc_pot, det_pot, weights=weights)
                out = smc_sample(k, step, potential, schedule_levels, x_init.shape[1], x_init,
                                 T, scheme=cfg.scheme, final="all")
                ess = jnp.nanmean(jnp.where(out.resampled, out.ess, jnp.nan))
                return out.particles, out.log_potential, out.log_weights, out.valid, ess

            return pf

        def guided(k, x, den_params, disc_params):
            eps_fn, logit_fn, _, _, _ = parts(den_params, disc_params)
            step = make_ddpm_step(discriminator_guidance(eps_fn, logit_fn, schedule,
                                                         cfg.guidance_weight), schedule)
            return plain_sample(k, step, x, T)

        def scores(x, den_params, disc_params):
            _, _, _, disc_pot, det_pot = parts(den_params, disc_params)
            return disc_pot(x, jnp.int32(0), None), det_pot(x, jnp.int32(0), None)

        self.plain = jit(plain)
        self.pf = jit(pf_at(levels))
        self.pf_low = jit(pf_at(tuple(cfg.low_noise_levels))) if cfg.low_noise_levels else None
        self.guided = jit(guided)
        self.scores = jit(scores)
        self.ed = jit(toy.energy_distance)


def _train(ctx, key, rep: int, cfg: RingConfig, samplers: _Samplers):
    schedule = samplers.schedule
    k_data, k_den, k_gen, k_disc, k_acc = jax.random.split(key, 5)
    data = toy.sample_ring(k_data, cfg.num_train)
    t0 = time.perf_counter()
    den_params, den_losses = train_denoiser(
        k_den, samplers.denoiser, data, schedule,
        TrainConfig(cfg.denoiser_steps, 256, 1e-3, checkpoint_every=cfg.denoiser_steps),
        checkpointer=ctx.checkpointer(f"ring-denoiser-rep{rep}", cfg),
        show_progress=ctx.show_progress and ctx.is_primary, timer=ctx.timer)
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
    real_small = toy.sample_ring(jax.random.fold_in(k_data, 1), cfg.num_real_disc)
    n_hold = min(2000, cfg.num_fake_disc // 5)  # generated points held out for the accuracy
    disc_params, disc_losses = train_discriminator(
        k_disc, samplers.disc, real_small, fake[:-n_hold], schedule,
        TrainConfig(cfg.disc_steps, 256, 1e-3, checkpoint_every=cfg.disc_steps),
        checkpointer=ctx.checkpointer(f"ring-discriminator-rep{rep}", cfg),
        show_progress=ctx.show_progress and ctx.is_primary, timer=ctx.timer)
    t2 = time.perf_counter()
    logit_fn = logit_fn_from(samplers.disc, disc_params)
    held_real = toy.sample_ring(jax.random.fold_in(k_data, 2), n_hold)
    accuracy = {int(t): float(discriminator_accuracy(jax.random.fold_in(k_acc, t), logit_fn,
                                                     held_real, fake[-n_hold:], schedule, t))
                for t in (0, cfg.num_steps // 10, cfg.num_steps // 5, cfg.num_steps // 2)}
    info = {"disc_accuracy_by_level": accuracy, "denoiser_s": t1 - t0,
            "discriminator_s": t2 - t1,
            "denoiser_final_loss": float(jnp.mean(den_losses[-50:])),
            "disc_final_loss": float(jnp.mean(disc_losses[-200:]))}
    return den_params, disc_params, info


def run_ring(ctx, key, cfg: RingConfig):
    """Train and sample every method for ``cfg.replicates`` independent seeds.

    Each replicate trains its own denoiser and discriminator and draws its own samples, so the
    standard errors include training variability. The output groups are sharded over
    ``ctx``'s devices.

    Returns:
      ``(results, samples, reference, info)``: ``results[MethodKey][metric]`` lists
      per-replicate values of ``ed`` (energy distance to real), ``near`` (near-mode fraction),
      ``occ`` (occurrence of the demanded modes) and ``ed_cond`` (energy distance to the
      demanded modes); ``samples[MethodKey]`` holds the first replicate's outputs;
      ``reference`` the same metrics for held-out real points.
    """
    samplers = _Samplers(cfg, ctx.timer.jit)
    k_eval, k_rep = jax.random.split(key)
    real_eval = toy.sample_ring(k_eval, cfg.num_eval_real)
    real_cond = toy.sample_ring(jax.random.fold_in(k_eval, 1), cfg.num_eval_real,
                                modes=DEMANDED)
    results: dict[MethodKey, dict[str, list[float]]] = {}
    samples: dict[MethodKey, np.ndarray] = {}
    per_seed = []

    def measure(x):
        return {"ed": float(samplers.ed(x, real_eval)),
                "near": float(toy.near_mode_fraction(x)),
                "occ": float(jnp.mean(toy.hard_mode_occurrence(x, DEMANDED))),
                "ed_cond": float(samplers.ed(x, real_cond))}

    def record(key_, x, rep, **extra):
        x = ctx.gather(x)
        for metric, value in {**measure(x), **extra}.items():
            results.setdefault(key_, {}).setdefault(metric, []).append(value)
        if rep == 0:
            samples[key_] = np.asarray(x)

    def pool_occurrence(particles):
        """Occurrence among all K final particles (before the final argmax)."""
        flat = np.reshape(ctx.gather(particles), (-1, 2))
        return float(jnp.mean(toy.hard_mode_occurrence(flat, DEMANDED)))

    kmax = max(max(cfg.ks), max(cfg.object_ks))
    sampling_s = 0.0
    for rep in ctx.progress(range(cfg.replicates), desc="seeds"):
        kr = jax.random.fold_in(k_rep, rep)
        k_train, k_init, k_plain, k_dg, k_pf, k_pick = jax.random.split(kr, 6)
        den, dsc, info = _train(ctx, k_train, rep, cfg, samplers)
        den, dsc = ctx.replicate((den, dsc))
        per_seed.append(info)
        t0 = time.perf_counter()
        x_init = ctx.shard(jax.random.normal(k_init, (cfg.num_out, kmax, 2)))
        x0 = samplers.plain(k_plain, x_init, den)  # K_max iid chains per group
        record(MethodKey("plain", 1), x0[:, 0], rep)
        dscore, oscore = samplers.scores(x0, den, dsc)
        for k in cfg.ks:
            record(MethodKey("D-Select", k), select_best(x0[:, :k], dscore[:, :k])[0], rep)
        for k in cfg.object_ks:
            record(MethodKey("Object-Select", k), select_best(x0[:, :k], oscore[:, :k])[0], rep)
        record(MethodKey("D-Guidance", 1), samplers.guided(k_dg, x_init[:, :1], den, dsc)[:, 0],
               rep)
        for k in cfg.ks:  # guided chains cost K denoiser calls per step, as PF with K particles
            xg = samplers.guided(jax.random.fold_in(k_dg, k), x_init[:, :k], den, dsc)
            record(MethodKey("D-Guidance+D-Select", k),
                   select_best(xg, samplers.scores(xg, den, dsc)[0])[0], rep)
        for k in sorted(set(cfg.ks) | set(cfg.object_ks)):
            for name, w in PF_WEIGHTS.items():
                if name == "PF" and k not in cfg.ks or name != "PF" and k not in cfg.object_ks:
                    continue
                parts, log_phi, log_w, valid, ess = samplers.pf(
                    jax.random.fold_in(k_pf, k), x_init[:, :k], jnp.asarray(w, jnp.float32),
                    den, dsc)
                if not bool(np.all(ctx.gather(valid))):
                    raise FloatingPointError(f"{name} K={k}: invalid weights in some group")
                record(MethodKey(name, k), select_best(parts, log_phi)[0], rep,
                       ess=float(ctx.gather(ess)) / k, pool_occ=pool_occurrence(parts))
                if name == "PF" and samplers.pf_low is not None and k in cfg.ks:
                    low = samplers.pf_low(jax.random.fold_in(k_pf, k), x_init[:, :k],
                                          jnp.asarray(w, jnp.float32), den, dsc)
                    record(MethodKey("PF (low-noise events)", k),
                           select_best(low[0], low[1])[0], rep,
                           ess=float(ctx.gather(low[4])) / k, pool_occ=pool_occurrence(low[0]))
                if name == "PF" and k == 4:
                    keys = jax.random.split(jax.random.fold_in(k_pick, k), cfg.num_out)
                    idx = jax.vmap(lambda kk, lw: smc.resample(kk, lw, "multinomial", 1)[0])(
                        keys, log_w)
                    record(MethodKey("PF-sample", k),
                           jax.vmap(lambda xg, i: xg[i])(parts, idx), rep)
        sampling_s += time.perf_counter() - t0
    reference = measure(toy.sample_ring(jax.random.fold_in(k_eval, 7), cfg.num_out))
    samples[MethodKey("real", 0)] = np.asarray(
        toy.sample_ring(jax.random.fold_in(k_eval, 7), cfg.num_out))
    timings = {"denoiser_s": sum(i["denoiser_s"] for i in per_seed),
               "discriminator_s": sum(i["discriminator_s"] for i in per_seed),
               "sampling_s": sampling_s}
    info = {"disc_accuracy_by_level": per_seed[0]["disc_accuracy_by_level"],
            "disc_accuracy_by_level_per_seed": [i["disc_accuracy_by_level"] for i in per_seed],
            "timings": timings,
            "denoiser_final_loss": [i["denoiser_final_loss"] for i in per_seed],
            "disc_final_loss": [i["disc_final_loss"] for i in per_seed],
            "resample_levels": list(cfg.levels)}
    return results, samples, reference, info
