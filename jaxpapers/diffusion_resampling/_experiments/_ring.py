"""The 8-Gaussian ring experiment and its missing-object analogue (spec Sec. 6.1).

One under-trained DDPM, one time-conditioned discriminator (500 real vs generated), then:

(a) unconditional quality: plain, D-Select (best of K by the discriminator at level 0),
    discriminator guidance, PF (resampling with ``logit d``) at K in {2, 4, 8};
(b) missing object: the condition demands modes {0, 1}; Object-Select (best of K by the guiding
    detector), PF-Detector, PF-Hybrid (unconditional discriminator + detector), PF-Discriminator.
    The detector term's miss rate is measured once per seed on the discriminator's generated
    set (plain samples) at every resampling level and at level 0; the "(on-the-fly δ)" variants
    use the group's own fraction of particles below 0.5 instead (the reference's fallback).

All PF variants run one compiled sampler per K: the potential is
``sum_log_potentials(logit d, detector term, weights=(a, b))`` with the weights, the miss-rate
flavour (``on_the_fly``) and the resampling schedule (a boolean mask) traced, so the
discriminator, detector and hybrid potentials and both schedules share it. The final choice
(argmax of ``log phi_0``, the paper; or a draw from the final weights) is made outside the
sampler from ``final="all"``.

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


#: ``(discriminator weight, detector weight, 1 if the detector's miss rate is the on-the-fly one
#: else 0)`` of each particle-filter variant
PF_WEIGHTS = {"PF": (1.0, 0.0, 0.0), "PF-Detector": (0.0, 1.0, 0.0),
              "PF-Hybrid": (1.0, 1.0, 0.0), "PF-Hybrid (on-the-fly δ)": (1.0, 1.0, 1.0)}


class _Samplers:
    """Compiled samplers taking the parameters as arguments (compiled once for all seeds)."""

    def __init__(self, cfg: RingConfig, jit):
        self.cfg = cfg
        self.schedule = schedule = make_schedule(cfg.num_steps, "linear", 1e-4, cfg.beta_end)
        self.denoiser = denoiser = TimeMLP(cfg.features, cfg.depth)
        self.disc = disc = TimeMLP(cfg.features, cfg.depth, out_features=1)
        levels = cfg.levels
        T = cfg.num_steps
        # levels of the measured miss-rate table: every level the sampler weights at
        self.table_levels = table_levels = tuple(
            sorted(set(levels) | set(cfg.low_noise_levels), reverse=True)) + (0,)
        detector = toy.soft_mode_detector(DEMANDED)

        def parts(den_params, disc_params, miss=None, fly=False):
            eps_fn = eps_fn_from(denoiser, den_params)
            logit_fn = logit_fn_from(disc, disc_params)
            step = make_ddpm_step(eps_fn, schedule)
            disc_pot = discriminator_log_potential(logit_fn)
            det_pot = None if miss is None else detector_log_potential(
                predicted_x0(eps_fn, schedule), detector, prior=cfg.prior,
                miss_rate=tabulated_miss_rate(miss, table_levels, T), on_the_fly=fly)
            return eps_fn, logit_fn, step, (disc_pot, det_pot)

        def plain(k, x, den_params):
            return plain_sample(k, parts(den_params, None)[2], x, T)

        def plain_probs(k, x, den_params):
            """Plain samples and the guiding detector on their x0_hat at the table's levels."""
            eps_fn, _, step, _ = parts(den_params, None)
            x0, traj = plain_sample(k, step, x, T, return_trajectory=True)
            return x0, detection_probabilities(predicted_x0(eps_fn, schedule), detector, traj,
                                               table_levels)

        def pf(k, x_init, weights, mask, den_params, disc_params, miss):
            _, _, step, pots = parts(den_params, disc_params, miss, weights[2] > 0)
            potential = sum_log_potentials(*pots, weights=weights[:2])
            out = smc_sample(k, step, potential, mask, x_init.shape[1], x_init, T,
                             scheme=cfg.scheme, final="all")
            ess = jnp.nanmean(jnp.where(out.resampled, out.ess, jnp.nan))
            lineages = jnp.mean(num_lineages(out.ancestors).astype(jnp.float32))
            return out.particles, out.log_potential, out.log_weights, out.valid, ess, lineages

        def mask_of(schedule_levels):
            host = np.zeros(T + 1, bool)
            host[list(schedule_levels)] = True
            return jnp.asarray(host)

        def guided(k, x, den_params, disc_params):
            eps_fn, logit_fn, _, _ = parts(den_params, disc_params)
            step = make_ddpm_step(discriminator_guidance(eps_fn, logit_fn, schedule,
                                                         cfg.guidance_weight), schedule)
            return plain_sample(k, step, x, T)

        def scores(x, den_params, disc_params, miss):
            disc_pot, det_pot = parts(den_params, disc_params, miss, False)[3]
            fly_pot = parts(den_params, disc_params, miss, True)[3][1]
            return tuple(p(x, jnp.int32(0), None) for p in (disc_pot, det_pot, fly_pot))

        self.plain = jit(plain)
        self.plain_probs = jit(plain_probs)
        # one compiled sampler per K for both schedules (the mask is an argument)
        pf_jit = jit(pf)
        full, low = mask_of(levels), mask_of(cfg.low_noise_levels)
        self.pf = lambda k, x, w, *params: pf_jit(k, x, w, full, *params)
        self.pf_low = ((lambda k, x, w, *params: pf_jit(k, x, w, low, *params))
                       if cfg.low_noise_levels else None)
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
    # ... and the guiding detector on their x0_hat at every weighted level: the miss-rate table
    outs = [samplers.plain_probs(jax.random.fold_in(k_gen, 2 * b + 1),
                                 jax.random.normal(jax.random.fold_in(k_gen, 2 * b),
                                                   (cfg.num_out, kmax, 2)), den_params)
            for b in range(batches)]
    fake = jnp.concatenate([jnp.reshape(x, (-1, 2)) for x, _ in outs])[:cfg.num_fake_disc]
    probs = jnp.concatenate([jnp.reshape(p, (p.shape[0], -1, p.shape[-1])) for _, p in outs],
                            axis=1)[:, :cfg.num_fake_disc]
    miss = miss_rate_table(probs, None, 1)
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
            "disc_final_loss": float(jnp.mean(disc_losses[-200:])),
            "miss_rate_by_level": {int(t): float(miss[i, 0, 0])
                                   for i, t in enumerate(samplers.table_levels)}}
    return den_params, disc_params, miss, info


def _spread(scores):
    """``[G]`` max minus min of ``[G, K]`` scores."""
    scores = np.asarray(scores, np.float64)
    return scores.max(axis=1) - scores.min(axis=1)


def run_ring(ctx, key, cfg: RingConfig):
    """Train and sample every method for ``cfg.replicates`` independent seeds.

    Each replicate trains its own denoiser and discriminator and draws its own samples, so the
    standard errors include training variability. The output groups are sharded over
    ``ctx``'s devices.

    Returns:
      ``(results, samples, reference, info)``: ``results[MethodKey][metric]`` lists
      per-replicate values of ``ed`` (energy distance to real), ``near`` (near-mode fraction),
      ``occ`` (occurrence of the demanded modes), ``ed_cond`` (energy distance to the
      demanded modes) and ``demanded_share`` (occurrence over the fraction within 0.5 of any
      centre); particle filters add ``ess``, ``pool_occ`` and ``lineages`` (distinct initial
      noises per group), Object-Select ``det_flat`` (groups whose score is flat) and
      ``any_occ`` (groups where some candidate passes the evaluator); ``samples[MethodKey]``
      holds the first replicate's outputs; ``reference`` the same metrics for held-out real
      points.
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
        occ = float(jnp.mean(toy.hard_mode_occurrence(x, DEMANDED)))
        near_any = float(jnp.mean(toy.hard_mode_occurrence(x, tuple(range(8)))))
        return {"ed": float(samplers.ed(x, real_eval)),
                "near": float(toy.near_mode_fraction(x)),
                "occ": occ,
                "ed_cond": float(samplers.ed(x, real_cond)),
                # of the points within 0.5 of some centre, the share at a demanded one
                "demanded_share": occ / max(near_any, 1e-12)}

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
        den, dsc, miss, info = _train(ctx, k_train, rep, cfg, samplers)
        den, dsc, miss = ctx.replicate((den, dsc, miss))
        per_seed.append(info)
        t0 = time.perf_counter()
        x_init = ctx.shard(jax.random.normal(k_init, (cfg.num_out, kmax, 2)))
        x0 = samplers.plain(k_plain, x_init, den)  # K_max iid chains per group
        record(MethodKey("plain", 1), x0[:, 0], rep)
        dscore, oscore, fly_score = samplers.scores(x0, den, dsc, miss)
        passes = np.asarray(toy.hard_mode_occurrence(
            np.reshape(ctx.gather(x0), (-1, 2)), DEMANDED)).reshape(x0.shape[:2])
        for k in cfg.ks:
            record(MethodKey("D-Select", k), select_best(x0[:, :k], dscore[:, :k])[0], rep)
        for k in cfg.object_ks:
            spread = _spread(ctx.gather(oscore[:, :k]))
            record(MethodKey("Object-Select", k), select_best(x0[:, :k], oscore[:, :k])[0], rep,
                   det_flat=float(np.mean(spread < 1e-6)),
                   any_occ=float(np.mean(passes[:, :k].any(axis=1))))
            spread = _spread(ctx.gather(fly_score[:, :k]))
            record(MethodKey("Object-Select (on-the-fly δ)", k),
                   select_best(x0[:, :k], fly_score[:, :k])[0], rep,
                   det_flat=float(np.mean(spread < 1e-6)))
        record(MethodKey("D-Guidance", 1), samplers.guided(k_dg, x_init[:, :1], den, dsc)[:, 0],
               rep)
        for k in cfg.ks:  # guided chains cost K denoiser calls per step, as PF with K particles
            xg = samplers.guided(jax.random.fold_in(k_dg, k), x_init[:, :k], den, dsc)
            record(MethodKey("D-Guidance+D-Select", k),
                   select_best(xg, samplers.scores(xg, den, dsc, miss)[0])[0], rep)
        for k in sorted(set(cfg.ks) | set(cfg.object_ks)):
            for name, w in PF_WEIGHTS.items():
                if name == "PF" and k not in cfg.ks or name != "PF" and k not in cfg.object_ks:
                    continue
                parts, log_phi, log_w, valid, ess, lineages = samplers.pf(
                    jax.random.fold_in(k_pf, k), x_init[:, :k], jnp.asarray(w, jnp.float32),
                    den, dsc, miss)
                if not bool(np.all(ctx.gather(valid))):
                    raise FloatingPointError(f"{name} K={k}: invalid weights in some group")
                record(MethodKey(name, k), select_best(parts, log_phi)[0], rep,
                       ess=float(ctx.gather(ess)) / k, pool_occ=pool_occurrence(parts),
                       lineages=float(ctx.gather(lineages)))
                if name == "PF" and samplers.pf_low is not None and k in cfg.ks:
                    low = samplers.pf_low(jax.random.fold_in(k_pf, k), x_init[:, :k],
                                          jnp.asarray(w, jnp.float32), den, dsc, miss)
                    record(MethodKey("PF (low-noise events)", k),
                           select_best(low[0], low[1])[0], rep,
                           ess=float(ctx.gather(low[4])) / k, pool_occ=pool_occurrence(low[0]),
                           lineages=float(ctx.gather(low[5])))
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
            "resample_levels": list(cfg.levels),
            "miss_rate_by_level_per_seed": [i["miss_rate_by_level"] for i in per_seed]}
    return results, samples, reference, info
