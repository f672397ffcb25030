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
    detection_probabilities,
    detector_log_potential,
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
    train_denoiser,
    train_discriminator,
)

__all__ = ["ImageConfig", "ImageTask", "run_images", "WEIGHTS", "weights_of_method"]

#: the potentials a method combines: ``disc`` (unconditional discriminator), ``det`` (detector
#: term, its miss rate measured once on plain samples, the reference code's main path),
#: ``cdisc`` (class-conditional discriminator: the paper's PF-Discriminator conditions on the
#: prompt; the "(cond)" methods use it); ``fly`` = 1 switches the detector term to the
#: on-the-fly miss rate within the group (the reference's fallback)
WEIGHTS = {"D-Select": {"disc": 1.0}, "Object-Select": {"det": 1.0},
           "Object-Select (on-the-fly δ)": {"det": 1.0, "fly": 1.0},
           "PF-Discriminator": {"disc": 1.0}, "PF-Detector": {"det": 1.0},
           "PF-Detector (on-the-fly δ)": {"det": 1.0, "fly": 1.0},
           "PF-Hybrid": {"disc": 1.0, "det": 1.0},
           "PF-Hybrid (on-the-fly δ)": {"disc": 1.0, "det": 1.0, "fly": 1.0},
           "D-Select (cond)": {"cdisc": 1.0}, "PF-Discriminator (cond)": {"cdisc": 1.0},
           "PF-Hybrid (cond)": {"cdisc": 1.0, "det": 1.0}}
SELECT = ("D-Select", "Object-Select", "Object-Select (on-the-fly δ)", "D-Select (cond)")
COMPONENTS = ("disc", "det", "cdisc")


def hybrid_ablation_name(weight: float) -> str:
    """The method name of PF-Hybrid with discriminator weight ``weight`` (detector weight 1)."""
    return f"PF-Hybrid (disc. weight {weight:g})"


def weights_of_method(name: str) -> dict:
    """``{component: weight}`` of a selection or particle-filter method."""
    if name in WEIGHTS:
        return WEIGHTS[name]
    prefix = "PF-Hybrid (disc. weight "
    if name.startswith(prefix) and name.endswith(")"):
        return {"disc": float(name[len(prefix):-1]), "det": 1.0}
    raise KeyError(name)


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
    #: the hybrid's discriminator-weight ablation: extra PF-Hybrid runs with these weights on the
    #: discriminator (detector weight 1; 0 is PF-Detector and 1 PF-Hybrid), at every K
    hybrid_disc_weights: tuple = ()
    #: the K ablation: these extra particle counts for ``ablation_methods`` (and the
    #: hybrid-weight ablation); the main tables use the largest of ``ks``
    ablation_ks: tuple = ()
    ablation_methods: tuple = ("Object-Select", "PF-Detector", "PF-Hybrid")
    #: independently trained model sets (denoiser, discriminators, miss-rate table); with more
    #: than one, the standard errors are over model sets (each the mean of its ``replicates``)
    model_replicates: int = 1
    prior: float = 0.2                  # pi0 of the detector term

    def __post_init__(self):
        for name in ("num_steps", "channels", "mlp_features", "denoiser_steps", "batch_size",
                     "disc_channels", "disc_steps", "num_real_disc", "num_fake_disc", "num_out",
                     "replicates", "checkpoint_every", "model_replicates"):
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
        if any(int(k) < 1 for k in self.ablation_ks) or any(
                m not in self.methods for m in self.ablation_methods if self.ablation_ks):
            raise ValueError(f"ImageConfig.ablation_ks must be positive and ablation_methods "
                             f"among methods; got {self.ablation_ks!r}, "
                             f"{self.ablation_methods!r}")
        if any(not w >= 0 for w in self.hybrid_disc_weights):
            raise ValueError(f"ImageConfig.hybrid_disc_weights must be >= 0; got "
                             f"{self.hybrid_disc_weights!r}")
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


def _methods(cfg: ImageConfig, k: int) -> list[str]:
    """Every non-plain method to sample at ``K = k``: ``cfg.methods`` (at ``cfg.ks``) or
    ``cfg.ablation_methods`` (at ``cfg.ablation_ks``), then the hybrid-weight ablation."""
    extra = [hybrid_ablation_name(w) for w in cfg.hybrid_disc_weights]
    base = cfg.methods if k in cfg.ks else cfg.ablation_methods
    return [m for m in base if m != "plain"] + [m for m in extra if m not in base]


def _spread(scores):
    """``[G]`` max minus min of ``[G, K]`` scores."""
    scores = np.asarray(scores, np.float64)
    return scores.max(axis=1) - scores.min(axis=1)


def run_images(ctx, key, task: ImageTask, cfg: ImageConfig):
    """Train the denoiser, discriminators and miss-rate table of ``task``; sample every method.

    The miss rate ``delta_c(t)`` of the detector term is measured on the discriminator's
    generated set (plain samples, ``num_fake_disc`` of them): per class and per resampling level
    (and level 0), the fraction whose guiding-detector probability on ``x0_hat`` is below 0.5.
    Methods named "(on-the-fly δ)" use the group's own fraction instead.

    Returns:
      ``(results, samples, reference, info)``: ``results[MethodKey][metric]`` lists per
      replicate (per model set when ``model_replicates > 1``) ``fd`` (Frechet distance in the
      evaluator's features) and ``occ`` (the task's occurrence), and for the particle filters
      ``lineages`` (distinct initial noises per group), ``ess`` (ESS/K at the events),
      ``pool_occ`` (occurrence among all K final particles), for methods with a detector term
      ``det_flat`` (fraction of groups whose detector term has no spread over the K final
      candidates), for the hybrids ``det_pick_occ`` (the final particle chosen by the detector
      term alone); ``samples[MethodKey]`` the first replicate's outputs; ``reference`` the
      metrics of the first ``num_out`` reference images; ``info`` timings, diagnostics of the
      first model set and the first replicate's conditions.
    """
    timings = {"denoiser_s": 0.0, "discriminator_s": 0.0, "sampling_s": 0.0}
    images = _flatten(jnp.asarray(task.train_images, jnp.float32), cfg)
    labels = task.train_labels
    event = images.shape[1:]
    T = cfg.num_steps
    schedule = make_schedule(T, "cosine")
    denoiser = (ConvDenoiser(cfg.channels, num_classes=task.num_labels) if cfg.model == "conv"
                else TimeMLP(cfg.mlp_features, 3, num_classes=task.num_labels))
    disc = (ConvDiscriminator(cfg.disc_channels) if cfg.model == "conv" else
            TimeMLP(cfg.mlp_features // 2, 3, out_features=1))
    cdisc = (ConvDiscriminator(cfg.disc_channels, num_classes=task.num_labels)
             if cfg.model == "conv" else
             TimeMLP(cfg.mlp_features // 2, 3, out_features=1, num_classes=task.num_labels))
    components = [c for c in COMPONENTS if c != "cdisc" or cfg.conditional_discriminator]
    # levels of the miss-rate table: the resampling levels, then level 0 (the final row)
    table_levels = tuple(sorted(set(cfg.resample_levels), reverse=True)) + (0,)
    show = ctx.show_progress and ctx.is_primary

    def eps_of(models):
        return cfg_eps(lambda x, t, y: denoiser.apply(models["den"], x, t, y), task.num_labels,
                       cfg.guidance)

    def step_of(models):
        return make_ddpm_step(eps_of(models), schedule, clip_x0=1.0)

    def potentials_of(models, fly):
        """``{component: log-potential}``; ``fly`` (traced bool) picks the on-the-fly miss rate."""
        pots = {"disc": discriminator_log_potential(
                    lambda x, t, y: logit_fn_from(disc, models["disc"])(x, t)),
                "det": detector_log_potential(
                    predicted_x0(eps_of(models), schedule), task.detector_fn, cfg.prior,
                    miss_rate=tabulated_miss_rate(models["miss"], table_levels, T),
                    on_the_fly=fly)}
        if cfg.conditional_discriminator:
            pots["cdisc"] = discriminator_log_potential(logit_fn_from(cdisc, models["cdisc"]))
        return pots

    def combined(models, weights):
        """``weights``: one per component, then the on-the-fly flag (all traced)."""
        pots = potentials_of(models, weights[-1] > 0)
        return sum_log_potentials(*(pots[c] for c in components), weights=weights[:-1])

    def weights_of(name):
        w = weights_of_method(name)
        return jnp.asarray([w.get(c, 0.0) for c in components] + [w.get("fly", 0.0)],
                           jnp.float32)

    def det_weights(name):
        """The detector term alone, in the method's miss-rate flavour (None without one)."""
        w = weights_of_method(name)
        if not w.get("det", 0.0):
            return None
        return weights_of("PF-Detector (on-the-fly δ)" if w.get("fly") else "PF-Detector")

    def plain_run(k, x, c, models):
        return plain_sample(k, step_of(models), x, T, c)

    def plain_probs(k, x, c, models):
        """Plain samples and the guiding detector on their ``x0_hat`` at the table's levels."""
        x0, traj = plain_sample(k, step_of(models), x, T, c, return_trajectory=True)
        probs = detection_probabilities(predicted_x0(eps_of(models), schedule), task.detector_fn,
                                        traj, table_levels, c)
        return x0, probs

    def pf_run(k, x_init, cond, models, weights):
        out = smc_sample(k, step_of(models), combined(models, weights), cfg.resample_levels,
                         x_init.shape[1], x_init, T, cond, scheme=cfg.scheme, final="all")
        ess = jnp.nanmean(jnp.where(out.resampled, out.ess, jnp.nan), axis=0) / x_init.shape[1]
        return out.particles, out.log_potential, num_lineages(out.ancestors), ess

    def score_run(x, cond, models, weights):
        return combined(models, weights)(x, jnp.int32(0), cond)

    def parts_run(x, cond, models):
        """Level-0 scores of every component (the mechanism diagnostics); ``det_fly`` is the
        detector term with the on-the-fly miss rate."""
        pots = potentials_of(models, jnp.bool_(False))
        out = {c: pots[c](x, jnp.int32(0), cond) for c in components}
        out["det_fly"] = potentials_of(models, jnp.bool_(True))["det"](x, jnp.int32(0), cond)
        return out

    plain_jit = ctx.timer.jit(plain_run)
    probs_jit = ctx.timer.jit(plain_probs)
    pf_jit = ctx.timer.jit(pf_run)
    score_jit = ctx.timer.jit(score_run)
    parts_jit = ctx.timer.jit(parts_run)

    ref_images, ref_conds = task.reference
    ref_images = np.asarray(_flatten(jnp.asarray(ref_images, jnp.float32), cfg))
    ref_conds = np.asarray(ref_conds)
    real_feats, real_occ = task.evaluate(ref_images, ref_conds)
    results: dict[MethodKey, dict[str, list[float]]] = {}
    samples: dict[MethodKey, np.ndarray] = {}
    diagnostics: dict[str, Any] = {}
    first_conditions = None
    all_ks = sorted(set(cfg.ks) | set(cfg.ablation_ks))

    def train_models(m):
        mkey = key if m == 0 else jax.random.fold_in(key, 1000 + m)
        k_den, k_fake, k_disc, k_rep = jax.random.split(mkey, 4)
        tag = "" if m == 0 else f"-model{m}"
        t0 = time.perf_counter()
        params, _ = train_denoiser(
            k_den, denoiser, images, schedule,
            TrainConfig(cfg.denoiser_steps, cfg.batch_size, cfg.denoiser_lr,
                        checkpoint_every=cfg.checkpoint_every),
            labels=labels, label_dropout=0.1,
            checkpointer=ctx.checkpointer(f"{task.name}-denoiser{tag}", cfg),
            show_progress=show, timer=ctx.timer)
        models = {"den": params}
        timings["denoiser_s"] += time.perf_counter() - t0
        t1 = time.perf_counter()
        fake_cond = task.conditions(jax.random.fold_in(k_fake, 0), cfg.num_fake_disc)
        noise = jax.random.normal(jax.random.fold_in(k_fake, 1), (cfg.num_fake_disc, 1) + event)
        fake, probs = [], []
        step = cfg.chunk or cfg.num_fake_disc
        for i in range(0, cfg.num_fake_disc, step):
            kk = k_fake if step >= cfg.num_fake_disc else jax.random.fold_in(k_fake, i // step)
            x0, pr = probs_jit(kk, noise[i:i + step], fake_cond[i:i + step], models)
            fake.append(x0[:, 0])
            probs.append(pr[:, :, 0])
        fake = jnp.concatenate(fake)
        probs = jnp.concatenate(probs, axis=1)                    # [L, N, C]
        models["miss"] = miss_rate_table(probs, fake_cond, task.num_labels)
        real, real_cond = task.real_images(jax.random.fold_in(k_disc, 1), cfg.num_real_disc)
        real = _flatten(jnp.asarray(real, jnp.float32), cfg)
        models["disc"], _ = train_discriminator(
            k_disc, disc, real, fake, schedule,
            TrainConfig(cfg.disc_steps, cfg.batch_size, cfg.disc_lr,
                        checkpoint_every=cfg.checkpoint_every),
            checkpointer=ctx.checkpointer(f"{task.name}-discriminator{tag}", cfg),
            show_progress=show, timer=ctx.timer)
        if cfg.conditional_discriminator:
            models["cdisc"], _ = train_discriminator(
                jax.random.fold_in(k_disc, 2), cdisc, real, fake, schedule,
                TrainConfig(cfg.disc_steps, cfg.batch_size, cfg.disc_lr,
                            checkpoint_every=cfg.checkpoint_every),
                real_labels=real_cond, fake_labels=fake_cond,
                checkpointer=ctx.checkpointer(f"{task.name}-discriminator-cond{tag}", cfg),
                show_progress=show, timer=ctx.timer)
        timings["discriminator_s"] += time.perf_counter() - t1
        return ctx.replicate(models), k_rep

    kmax = max(all_ks)

    def sample_model(m, models, k_rep):
        """Every method's samples and metrics for one model set, ``cfg.replicates`` times."""
        nonlocal first_conditions
        per_model: dict[MethodKey, dict[str, list[float]]] = {}

        def record(key_, x, cond, rep, **extra):
            x, cond = ctx.gather((x, cond))
            feats, occ = task.evaluate(x, cond)
            entry = per_model.setdefault(key_, {})
            entry.setdefault("fd", []).append(toy.frechet_distance(feats, real_feats))
            entry.setdefault("occ", []).append(float(occ))
            for name, value in extra.items():
                entry.setdefault(name, []).append(float(value))
            if rep == 0 and m == 0:
                samples[key_] = np.asarray(x)

        def pool_occurrence(parts, cond):
            parts, cond = ctx.gather((parts, cond))
            k = parts.shape[1]
            flat = np.reshape(parts, (-1,) + parts.shape[2:])
            return task.evaluate(flat, np.repeat(np.asarray(cond), k))[1]

        t2 = time.perf_counter()
        for rep in ctx.progress(range(cfg.replicates), desc=task.name):
            rep_key = jax.random.fold_in(k_rep, rep)
            k_init, k_plain, k_pf = jax.random.split(rep_key, 3)
            cond = task.conditions(jax.random.fold_in(rep_key, 3), cfg.num_out)
            x_init = jax.random.normal(k_init, (cfg.num_out, kmax) + event)
            x_init, cond = ctx.shard((x_init, jnp.asarray(cond, jnp.int32)))
            if rep == 0 and m == 0:
                first_conditions = ctx.gather(cond)
            x0 = _chunked(lambda kk, x, c: plain_jit(kk, x, c, models), cfg, k_plain, x_init,
                          cond)
            record(MethodKey("plain", 1), x0[:, 0], cond, rep)
            if rep == 0 and m == 0:
                diagnostics.update(_diagnostics(task, ctx.gather(x0), ctx.gather(cond),
                                                parts_jit, models, ref_images, ref_conds, cfg,
                                                table_levels))
            for k in all_ks:
                for name in _methods(cfg, k):
                    w = weights_of(name)
                    wd = det_weights(name)
                    extra = {}
                    if name in SELECT:
                        scores = _chunked(lambda _k, x, c, w=w: score_jit(x, c, models, w), cfg,
                                          k_pf, x0[:, :k], cond)
                        picked = select_best(x0[:, :k], scores)[0]
                        candidates = x0[:, :k]
                    else:
                        parts, log_phi, lineages, ess = _chunked_tuple(
                            lambda kk, x, c, w=w: pf_jit(kk, x, c, models, w), cfg, k_pf,
                            x_init[:, :k], cond)
                        picked = select_best(parts, log_phi)[0]
                        candidates = parts
                        extra.update(lineages=np.mean(ctx.gather(lineages)),
                                     ess=np.mean(ctx.gather(ess)),
                                     pool_occ=pool_occurrence(parts, cond))
                    if wd is not None:
                        det_scores = _chunked(lambda _k, x, c, wd=wd: score_jit(x, c, models, wd),
                                              cfg, k_pf, candidates, cond)
                        extra["det_flat"] = np.mean(_spread(ctx.gather(det_scores)) < 1e-6)
                        if name not in SELECT and weights_of_method(name).get(
                                "disc", weights_of_method(name).get("cdisc", 0.0)):
                            by_det = select_best(candidates, det_scores)[0]
                            extra["det_pick_occ"] = task.evaluate(
                                *ctx.gather((by_det, cond)))[1]
                    record(MethodKey(name, k), picked, cond, rep, **extra)
        timings["sampling_s"] += time.perf_counter() - t2
        return per_model

    for m in range(cfg.model_replicates):
        models, k_rep = train_models(m)
        per_model = sample_model(m, models, k_rep)
        for key_, by_metric in per_model.items():
            entry = results.setdefault(key_, {})
            for metric, values in by_metric.items():
                if cfg.model_replicates == 1:
                    entry[metric] = values
                else:
                    entry.setdefault(metric, []).append(float(np.mean(values)))
    num_params = sum(int(np.prod(p.shape)) for p in jax.tree_util.tree_leaves(models["den"]))
    info = {"timings": timings, "denoiser_params": num_params, "real_occurrence": float(real_occ),
            "sample_conditions": first_conditions, "diagnostics": diagnostics,
            "miss_rate_levels": list(table_levels), **task.info}
    head_feats, head_occ = task.evaluate(ref_images[:cfg.num_out], ref_conds[:cfg.num_out])
    reference = {"fd": toy.frechet_distance(head_feats, real_feats), "occ": float(head_occ)}
    samples[MethodKey("real", 0)] = ref_images[:cfg.num_out]
    return results, samples, reference, info


def _chunked_tuple(fn, cfg: ImageConfig, key, *arrays):
    """:func:`_chunked` for a function returning a tuple of arrays."""
    n = arrays[0].shape[0]
    if cfg.chunk is None or cfg.chunk >= n:
        return fn(key, *arrays)
    outs = [fn(jax.random.fold_in(key, i), *(a[i:i + cfg.chunk] for a in arrays))
            for i in range(0, n, cfg.chunk)]
    return tuple(jnp.concatenate(parts) for parts in zip(*outs, strict=True))


def _diagnostics(task: ImageTask, x0, cond, parts_jit, models, ref_images, ref_conds,
                 cfg: ImageConfig, table_levels):
    """Mechanism checks on the first replicate's plain samples (``[G, K, ...]``) at level 0.

    * within-group spread (max - min over the K plain samples) of each component's log-potential:
      how much the discriminator's logit varies against the detector term;
    * the discriminator's mean logit on real (the first ``num_out`` reference images) and on
      generated samples;
    * the miss-rate table (mean over classes per level, and how many classes have 0 at level 0);
    * occurrence of the plain samples in the upper and the lower half of the unconditional
      discriminator's logit (do more realistic samples pass the evaluator more often?);
    * with a class-conditional discriminator: on real images, how often the logit with the true
      label exceeds the logit with another label (0.5: no label information).
    """
    g, k = x0.shape[:2]
    parts = {c: np.asarray(v) for c, v in parts_jit(jnp.asarray(x0), jnp.asarray(cond),
                                                    models).items()}
    out: dict[str, Any] = {"spread_at_level0": {c: float(np.mean(_spread(v)))
                                                for c, v in parts.items()},
                           "flat_at_level0": {c: float(np.mean(_spread(v) < 1e-6))
                                              for c, v in parts.items()}}
    table = np.asarray(models["miss"])
    out["miss_rate_mean_by_level"] = {int(t): float(table[i].mean())
                                      for i, t in enumerate(table_levels)}
    out["classes_with_zero_miss_rate_at_level0"] = int(np.sum(table[-1] == 0.0))
    real = jnp.asarray(ref_images[:cfg.num_out])
    real_cond = jnp.asarray(ref_conds[:cfg.num_out], jnp.int32)
    real_parts = parts_jit(real[:, None], real_cond, models)
    out["disc_logit_real"] = float(np.mean(np.asarray(real_parts["disc"])))
    out["disc_logit_generated"] = float(np.mean(parts["disc"]))
    flat = np.reshape(x0, (g * k,) + x0.shape[2:])
    flat_cond = np.repeat(np.asarray(cond), k)
    logit = parts["disc"].reshape(-1)
    order = np.argsort(logit)
    low, high = order[: len(order) // 2], order[len(order) // 2:]
    out["occ_plain_upper_half_disc"] = float(task.evaluate(flat[high], flat_cond[high])[1])
    out["occ_plain_lower_half_disc"] = float(task.evaluate(flat[low], flat_cond[low])[1])
    if "cdisc" in parts:
        n = real.shape[0]
        rng = np.random.default_rng(0)
        wrong = (np.asarray(real_cond) + rng.integers(1, task.num_labels, n)) % task.num_labels
        true_logit = np.asarray(parts_jit(real[:, None], real_cond, models)["cdisc"])[:, 0]
        wrong_logit = np.asarray(parts_jit(real[:, None], jnp.asarray(wrong, jnp.int32),
                                           models)["cdisc"])[:, 0]
        out["cdisc_true_label_higher_on_real"] = float(np.mean(true_logit > wrong_logit))
        out["cdisc_logit_real"] = float(np.mean(true_logit))
        out["cdisc_logit_generated"] = float(np.mean(parts["cdisc"]))
    return out
