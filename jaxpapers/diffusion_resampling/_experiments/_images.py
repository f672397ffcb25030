"""One image driver for the class- or set-conditional settings (digits, spec 6.2; shapes, 6.3).

A setting is an :class:`ImageTask`, a (data, evaluator) pair: training images with integer
conditions, how conditions and real images are drawn, the guiding detector on ``x0_hat`` and an
independent evaluator (occurrence and features for a Frechet distance). :func:`run_images` trains
a short class-conditional DDPM (labels dropped for classifier-free guidance) and an
unconditional time-conditioned discriminator, then samples every method per ``K``:

* ``plain`` -- one chain per output;
* ``D-Select`` / ``Object-Select`` -- best of ``K`` plain samples by the discriminator / the
  guiding detector at level 0;
* ``PF-Discriminator`` / ``PF-Detector`` / ``PF-Hybrid`` -- resampling with the discriminator,
  detector or both (``sum_log_potentials`` with traced weights: one compiled sampler), final
  argmax of ``log phi_0`` (the paper).

All methods of a replicate share the initial noise, the conditions and the trained models, so
per-replicate differences are paired. Results are keyed by ``MethodKey(method, K)``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers import smc
from jaxpapers.diffusion_resampling import toy
from jaxpapers.diffusion_resampling._diffusion import cfg_eps, make_ddpm_step, make_schedule
from jaxpapers.diffusion_resampling._experiments._ring import MethodKey
from jaxpapers.diffusion_resampling._models import (
    ConvDenoiser,
    ConvDiscriminator,
    TimeMLP,
    logit_fn_from,
)
from jaxpapers.diffusion_resampling._potentials import (
    detector_log_potential,
    discriminator_log_potential,
    predicted_x0,
    sum_log_potentials,
)
from jaxpapers.diffusion_resampling._smc import plain_sample, select_best, smc_sample
from jaxpapers.diffusion_resampling._train import (
    TrainConfig,
    train_denoiser,
    train_discriminator,
)

__all__ = ["ImageConfig", "ImageTask", "run_images", "WEIGHTS"]

#: ``(discriminator, detector[, class-conditional discriminator])`` weights of the selection and
#: particle-filter methods; the "(cond)" methods use the class-conditional discriminator, which
#: the paper's PF-Discriminator is (it conditions on the prompt)
WEIGHTS = {"D-Select": (1.0, 0.0), "Object-Select": (0.0, 1.0), "PF-Discriminator": (1.0, 0.0),
           "PF-Detector": (0.0, 1.0), "PF-Hybrid": (1.0, 1.0),
           "D-Select (cond)": (0.0, 0.0, 1.0), "PF-Discriminator (cond)": (0.0, 0.0, 1.0),
           "PF-Hybrid (cond)": (0.0, 1.0, 1.0)}
SELECT = ("D-Select", "Object-Select", "D-Select (cond)")


@dataclasses.dataclass(frozen=True)
class ImageConfig:
    """Sizes and settings of one image setting."""

    num_steps: int = 100
    model: str = "conv"                 # "conv": ConvDenoiser on images; "mlp": TimeMLP on vectors
    channels: int = 32                  # ConvDenoiser width
    mlp_features: int = 256             # TimeMLP width ("mlp" model; the discriminator's is half)
    denoiser_steps: int = 1000          # deliberately short
    denoiser_lr: float = 1e-3
    batch_size: int = 128
    guidance: float = 0.0               # CFG weight
    disc_channels: int = 32
    disc_steps: int = 3000
    disc_lr: float = 3e-4
    num_real_disc: int = 300
    num_fake_disc: int = 5000
    num_out: int = 500                  # outputs per method and replicate
    ks: tuple = (4,)
    methods: tuple = ("plain", "D-Select", "Object-Select", "PF-Discriminator", "PF-Hybrid")
    replicates: int = 3
    resample_levels: tuple = (10, 20, 30, 40, 50)
    scheme: str = "multinomial"
    chunk: int | None = None            # groups per sampling call (bounds device memory)
    checkpoint_every: int = 500
    conditional_discriminator: bool = False   # also train a class-conditional discriminator

    def __post_init__(self):
        for name in ("num_steps", "channels", "mlp_features", "denoiser_steps", "batch_size",
                     "disc_channels", "disc_steps", "num_real_disc", "num_fake_disc", "num_out",
                     "replicates", "checkpoint_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"ImageConfig.{name} must be a positive int; got {value!r}")
        if self.model not in ("conv", "mlp"):
            raise ValueError(f"ImageConfig.model must be 'conv' or 'mlp'; got {self.model!r}")
        if not self.ks or any(int(k) < 1 for k in self.ks):
            raise ValueError(f"ImageConfig.ks must be positive ints; got {self.ks!r}")
        unknown = [m for m in self.methods if m != "plain" and m not in WEIGHTS]
        if unknown or "plain" not in self.methods:
            raise ValueError(f"ImageConfig.methods must include 'plain' and come from "
                             f"{['plain', *WEIGHTS]}; got {self.methods!r}")
        if self.chunk is not None and (self.num_out % self.chunk
                                       or self.num_fake_disc % self.chunk):
            raise ValueError(f"ImageConfig.chunk={self.chunk} must divide num_out="
                             f"{self.num_out} and num_fake_disc={self.num_fake_disc}")
        if any(not 0 < t < self.num_steps for t in self.resample_levels):
            raise ValueError(f"ImageConfig.resample_levels must lie in [1, num_steps - 1]; got "
                             f"{self.resample_levels!r}")
        if self.scheme not in smc.RESAMPLERS:
            raise ValueError(f"ImageConfig.scheme must be one of {sorted(smc.RESAMPLERS)}")
        needs_cond = [m for m in self.methods if m.endswith("(cond)")]
        if needs_cond and not self.conditional_discriminator:
            raise ValueError(f"ImageConfig.methods {needs_cond} need "
                             "conditional_discriminator=True")


@dataclasses.dataclass(frozen=True)
class ImageTask:
    """A conditional image setting: data, conditions, guiding detector and evaluator.

    Attributes:
      name: "digits" or "shapes" (prefix of checkpoint names and plot files).
      train_images: ``[N, *event]`` in ``[-1, 1]``; train_labels: ``[N]`` int conditions.
      num_labels: number of condition ids; the CFG null label is ``num_labels``.
      conditions: ``(key, n) -> int32[n]`` conditions of the outputs (drawn like the data).
      real_images: ``(key, n) -> (images [n, *event], conds [n])`` real images (and their
        conditions) for the discriminators.
      detector_fn: ``(x0 [B, *event], cond [B]) -> [B, C]`` probabilities of the requested
        objects (1 for slots not requested); guides sampling on ``x0_hat``.
      evaluate: ``(x [n, *event], cond [n]) -> (features [n, F], occurrence)`` by an evaluator
        independent of the guide (NumPy).
      reference: ``(images, conds)`` real images for the Frechet reference and the "real" row.
      occurrence: what ``evaluate``'s occurrence measures, in words.
      info: facts about the task's own models for the report.
    """

    name: str
    train_images: Any
    train_labels: Any
    num_labels: int
    conditions: Callable
    real_images: Callable
    detector_fn: Callable
    evaluate: Callable
    reference: tuple
    occurrence: str
    info: dict = dataclasses.field(default_factory=dict)


def _flatten(images, cfg: ImageConfig):
    return jnp.reshape(images, (images.shape[0], -1)) if cfg.model == "mlp" else images


def _chunked(fn, cfg: ImageConfig, key, *arrays):
    """``fn(key, *arrays)`` over chunks of ``cfg.chunk`` groups (key ``fold_in(key, i)`` per
    chunk), concatenated; one call with ``key`` itself when there is a single chunk."""
    n = arrays[0].shape[0]
    if cfg.chunk is None or cfg.chunk >= n:
        return fn(key, *arrays)
    return jnp.concatenate([fn(jax.random.fold_in(key, i), *(a[i:i + cfg.chunk] for a in arrays))
                            for i in range(0, n, cfg.chunk)])


def run_images(ctx, key, task: ImageTask, cfg: ImageConfig):
    """Train the denoiser and discriminator of ``task`` and sample every method.

    Returns:
      ``(results, samples, reference, info)``: ``results[MethodKey][metric]`` lists per
      replicate ``fd`` (Frechet distance in the evaluator's features) and ``occ`` (the task's
      occurrence); ``samples[MethodKey]`` the first replicate's outputs; ``reference`` the
      metrics of the first ``num_out`` reference images; ``info`` timings and the first
      replicate's conditions.
    """
    timings = {}
    t0 = time.perf_counter()
    images = _flatten(jnp.asarray(task.train_images, jnp.float32), cfg)
    labels = task.train_labels
    event = images.shape[1:]
    schedule = make_schedule(cfg.num_steps, "cosine")
    k_den, k_fake, k_disc, k_rep = jax.random.split(key, 4)
    denoiser = (ConvDenoiser(cfg.channels, num_classes=task.num_labels) if cfg.model == "conv"
                else TimeMLP(cfg.mlp_features, 3, num_classes=task.num_labels))
    show = ctx.show_progress and ctx.is_primary
    params, _ = train_denoiser(
        k_den, denoiser, images, schedule,
        TrainConfig(cfg.denoiser_steps, cfg.batch_size, cfg.denoiser_lr,
                    checkpoint_every=cfg.checkpoint_every),
        labels=labels, label_dropout=0.1,
        checkpointer=ctx.checkpointer(f"{task.name}-denoiser", cfg), show_progress=show,
        timer=ctx.timer)
    eps = cfg_eps(lambda x, t, y: denoiser.apply(params, x, t, y), task.num_labels, cfg.guidance)
    step = make_ddpm_step(eps, schedule, clip_x0=1.0)
    timings["denoiser_s"] = time.perf_counter() - t0

    plain_jit = ctx.timer.jit(lambda k, x, c: plain_sample(k, step, x, cfg.num_steps, c))
    t1 = time.perf_counter()
    fake_cond = task.conditions(jax.random.fold_in(k_fake, 0), cfg.num_fake_disc)
    fake = _chunked(plain_jit, cfg, k_fake,
                    jax.random.normal(jax.random.fold_in(k_fake, 1),
                                      (cfg.num_fake_disc, 1) + event), fake_cond)[:, 0]
    real, real_cond = task.real_images(jax.random.fold_in(k_disc, 1), cfg.num_real_disc)
    real = _flatten(jnp.asarray(real, jnp.float32), cfg)
    disc = (ConvDiscriminator(cfg.disc_channels) if cfg.model == "conv" else
            TimeMLP(cfg.mlp_features // 2, 3, out_features=1))
    dparams, _ = train_discriminator(
        k_disc, disc, real, fake, schedule,
        TrainConfig(cfg.disc_steps, cfg.batch_size, cfg.disc_lr,
                    checkpoint_every=cfg.checkpoint_every),
        checkpointer=ctx.checkpointer(f"{task.name}-discriminator", cfg), show_progress=show,
        timer=ctx.timer)
    logit_fn = logit_fn_from(disc, dparams)
    disc_pot = discriminator_log_potential(lambda x, t, y: logit_fn(x, t))
    det_pot = detector_log_potential(predicted_x0(eps, schedule), task.detector_fn)
    potentials = [disc_pot, det_pot]
    if cfg.conditional_discriminator:
        cdisc = (ConvDiscriminator(cfg.disc_channels, num_classes=task.num_labels)
                 if cfg.model == "conv" else
                 TimeMLP(cfg.mlp_features // 2, 3, out_features=1, num_classes=task.num_labels))
        cparams, _ = train_discriminator(
            jax.random.fold_in(k_disc, 2), cdisc, real, fake, schedule,
            TrainConfig(cfg.disc_steps, cfg.batch_size, cfg.disc_lr,
                        checkpoint_every=cfg.checkpoint_every),
            real_labels=real_cond, fake_labels=fake_cond,
            checkpointer=ctx.checkpointer(f"{task.name}-discriminator-cond", cfg),
            show_progress=show, timer=ctx.timer)
        potentials.append(discriminator_log_potential(logit_fn_from(cdisc, cparams)))
    timings["discriminator_s"] = time.perf_counter() - t1

    def weights_of(name):
        w = WEIGHTS[name]
        return jnp.asarray(w + (0.0,) * (len(potentials) - len(w)), jnp.float32)

    def pf_run(k, x_init, cond, weights):
        potential = sum_log_potentials(*potentials, weights=weights)
        out = smc_sample(k, step, potential, cfg.resample_levels, x_init.shape[1], x_init,
                         cfg.num_steps, cond, scheme=cfg.scheme, final="all")
        return out.particles, out.log_potential

    def score_run(x, cond, weights):
        return sum_log_potentials(*potentials, weights=weights)(x, jnp.int32(0), cond)

    pf_jit = ctx.timer.jit(pf_run)
    score_jit = ctx.timer.jit(score_run)

    def pf_pick(k, x_init, cond, weights):
        return select_best(*pf_jit(k, x_init, cond, weights))[0]

    def select_pick(x, cond, weights):
        return select_best(x, score_jit(x, cond, weights))[0]

    ref_images, ref_conds = task.reference
    ref_images = np.asarray(_flatten(jnp.asarray(ref_images, jnp.float32), cfg))
    real_feats, real_occ = task.evaluate(ref_images, np.asarray(ref_conds))
    results: dict[MethodKey, dict[str, list[float]]] = {}
    samples: dict[MethodKey, np.ndarray] = {}

    def record(key_, x, cond, rep):
        x, cond = ctx.gather((x, cond))
        feats, occ = task.evaluate(x, cond)
        entry = results.setdefault(key_, {"fd": [], "occ": []})
        entry["fd"].append(toy.frechet_distance(feats, real_feats))
        entry["occ"].append(float(occ))
        if rep == 0:
            samples[key_] = np.asarray(x)

    kmax = max(cfg.ks)
    t2 = time.perf_counter()
    first_conditions = None
    for rep in ctx.progress(range(cfg.replicates), desc=task.name):
        rep_key = jax.random.fold_in(k_rep, rep)
        k_init, k_plain, k_pf = jax.random.split(rep_key, 3)
        cond = task.conditions(jax.random.fold_in(rep_key, 3), cfg.num_out)
        x_init = jax.random.normal(k_init, (cfg.num_out, kmax) + event)
        x_init, cond = ctx.shard((x_init, jnp.asarray(cond, jnp.int32)))
        if rep == 0:
            first_conditions = ctx.gather(cond)
        x0 = _chunked(plain_jit, cfg, k_plain, x_init, cond)
        record(MethodKey("plain", 1), x0[:, 0], cond, rep)
        for k in cfg.ks:
            for name in cfg.methods:
                if name == "plain":
                    continue
                w = weights_of(name)
                if name in SELECT:
                    picked = _chunked(lambda _k, x, c, w=w: select_pick(x, c, w), cfg, k_pf,
                                      x0[:, :k], cond)
                else:
                    picked = _chunked(lambda kk, x, c, w=w: pf_pick(kk, x, c, w), cfg, k_pf,
                                      x_init[:, :k], cond)
                record(MethodKey(name, k), picked, cond, rep)
    timings["sampling_s"] = time.perf_counter() - t2
    num_params = sum(int(np.prod(p.shape)) for p in jax.tree_util.tree_leaves(params))
    info = {"timings": timings, "denoiser_params": num_params, "real_occurrence": float(real_occ),
            "sample_conditions": first_conditions, **task.info}
    head_feats, head_occ = task.evaluate(ref_images[:cfg.num_out],
                                         np.asarray(ref_conds)[:cfg.num_out])
    reference = {"fd": toy.frechet_distance(head_feats, real_feats), "occ": float(head_occ)}
    samples[MethodKey("real", 0)] = ref_images[:cfg.num_out]
    return results, samples, reference, info
