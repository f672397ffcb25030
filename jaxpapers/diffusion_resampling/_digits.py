"""Class-conditional sklearn 8x8 digits (spec Sec. 6.2): the image-shaped analogue.

A short-trained class-conditional DDPM (conv U-Net on 8x8x1, or an MLP on 64-vectors; label
dropout for classifier-free guidance, guidance weight configurable); a guiding classifier
(multinomial logistic regression, made a JAX function) plays the detector on ``x0_hat``; an
independently trained evaluation classifier (a one-hidden-layer MLP on a disjoint split) gives
the requested-class accuracy ("occurrence") and the features for a Frechet distance.
"""

from __future__ import annotations

import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers._src.progress import progress
from jaxpapers.diffusion_resampling import _tasks as tasks
from jaxpapers.diffusion_resampling._diffusion import cfg_eps, make_ddpm_step, make_schedule
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
)
from jaxpapers.diffusion_resampling._smc import plain_sample, select_best, smc_sample
from jaxpapers.diffusion_resampling._train import (
    TrainConfig,
    train_denoiser,
    train_discriminator,
)

__all__ = ["DigitsConfig", "load_digits_images", "run_digits"]


@dataclasses.dataclass(frozen=True)
class DigitsConfig:
    num_steps: int = 100
    channels: int = 32
    denoiser_steps: int = 1000          # deliberately short, like the ring's denoiser
    batch_size: int = 128
    guidance: float = 0.0               # CFG weight; 1.0 already saturates class accuracy
    disc_steps: int = 3000
    num_real_disc: int = 300
    num_fake_disc: int = 5000
    num_out: int = 500
    k: int = 4
    replicates: int = 3
    resample_levels: tuple = (10, 20, 30, 40, 50)
    scheme: str = "multinomial"
    model: str = "conv"          # "conv": ConvDenoiser on 8x8x1; "mlp": TimeMLP on 64-vectors
    mlp_features: int = 256

    def __post_init__(self):
        if self.model not in ("conv", "mlp"):
            raise ValueError(f"DigitsConfig.model must be 'conv' or 'mlp'; got {self.model!r}")


def load_digits_images():
    """``(images [1797, 8, 8, 1] in [-1, 1], labels [1797])`` from the wheel-bundled data."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = bunch.images.astype(np.float32) / 8.0 - 1.0
    return images[..., None], bunch.target.astype(np.int32)


def _classifiers(images, labels, seed):
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    rng = np.random.default_rng(seed)
    order = rng.permutation(len(labels))
    split_a, split_b = order[: len(order) // 2], order[len(order) // 2:]
    flat = images.reshape(len(labels), -1)
    guide = LogisticRegression(max_iter=500).fit(flat[split_a], labels[split_a])
    evaluator = MLPClassifier(hidden_layer_sizes=(64,), max_iter=600, random_state=seed)
    evaluator.fit(flat[split_b], labels[split_b])
    w = jnp.asarray(guide.coef_.T, jnp.float32)
    b = jnp.asarray(guide.intercept_, jnp.float32)

    def detector_fn(x0, cond):
        probs = jax.nn.softmax(jnp.reshape(x0, (x0.shape[0], -1)) @ w + b[None, :], axis=-1)
        return jnp.take_along_axis(probs, cond[:, None].astype(jnp.int32), axis=1)

    def evaluate(x, cond):
        flat_x = np.asarray(x, np.float64).reshape(len(x), -1)
        feats = np.maximum(flat_x @ evaluator.coefs_[0] + evaluator.intercepts_[0], 0.0)
        acc = float(np.mean(evaluator.predict(flat_x) == np.asarray(cond)))
        return feats, acc

    return detector_fn, evaluate


def run_digits(key, cfg: DigitsConfig, show_progress: bool = False, checkpoint_dir=None):
    """Train and sample; returns ``(metrics, samples, info)`` like :func:`run_ring`."""
    timings = {}
    t0 = time.perf_counter()
    images, labels = load_digits_images()
    detector_fn, evaluate = _classifiers(images, labels, 0)
    if cfg.model == "mlp":
        images = images.reshape(len(labels), -1)
    event = images.shape[1:]
    schedule = make_schedule(cfg.num_steps, "cosine")
    k_den, k_fake, k_disc, k_rep = jax.random.split(key, 4)
    denoiser = (ConvDenoiser(cfg.channels, num_classes=10) if cfg.model == "conv" else
                TimeMLP(cfg.mlp_features, 3, num_classes=10))
    params, _ = train_denoiser(
        k_den, denoiser, images, schedule,
        TrainConfig(cfg.denoiser_steps, cfg.batch_size, 1e-3, checkpoint_every=500),
        labels=labels, label_dropout=0.1,
        checkpoint_dir=None if checkpoint_dir is None else f"{checkpoint_dir}/digits_denoiser",
        show_progress=show_progress)
    eps = cfg_eps(lambda x, t, y: denoiser.apply(params, x, t, y), 10, cfg.guidance)
    step = make_ddpm_step(eps, schedule, clip_x0=1.0)
    timings["denoiser_s"] = time.perf_counter() - t0

    plain_jit = jax.jit(lambda k, x, c: plain_sample(k, step, x, cfg.num_steps, c))
    fake_cond = jnp.arange(cfg.num_fake_disc, dtype=jnp.int32) % 10
    fake = plain_jit(k_fake, jax.random.normal(jax.random.fold_in(k_fake, 1),
                                               (cfg.num_fake_disc, 1) + event), fake_cond)[:, 0]
    rng = np.random.default_rng(1)
    real_idx = rng.choice(len(labels), cfg.num_real_disc, replace=False)
    disc = (ConvDiscriminator(cfg.channels) if cfg.model == "conv" else
            TimeMLP(cfg.mlp_features // 2, 3, out_features=1))
    t1 = time.perf_counter()
    dparams, _ = train_discriminator(
        k_disc, disc, images[real_idx], fake, schedule,
        TrainConfig(cfg.disc_steps, cfg.batch_size, 3e-4, checkpoint_every=500),
        checkpoint_dir=None if checkpoint_dir is None else f"{checkpoint_dir}/digits_disc",
        show_progress=show_progress)
    timings["discriminator_s"] = time.perf_counter() - t1
    logit_fn = logit_fn_from(disc, dparams)
    disc_pot = discriminator_log_potential(lambda x, t, y: logit_fn(x, t))
    det_pot = detector_log_potential(predicted_x0(eps, schedule), detector_fn)

    def pf_run(k, x_init, cond, weights):
        pot = lambda x, t, c: weights[0] * disc_pot(x, t, c) + weights[1] * det_pot(x, t, c)
        out = smc_sample(k, step, pot, cfg.resample_levels, cfg.k, x_init, cfg.num_steps, cond,
                         scheme=cfg.scheme, final="all")
        return out.particles, out.log_potential

    pf_jit = jax.jit(pf_run)
    score_jit = jax.jit(lambda x, c, w: w[0] * disc_pot(x, jnp.int32(0), c)
                        + w[1] * det_pot(x, jnp.int32(0), c))
    real_feats, _ = evaluate(images, labels)
    metrics: dict[str, dict[str, list[float]]] = {}
    samples = {}

    def record(name, x, cond, rep):
        feats, acc = evaluate(np.asarray(x), np.asarray(cond))
        m = metrics.setdefault(name, {"fd": [], "acc": []})
        m["fd"].append(tasks.frechet_distance(feats, real_feats))
        m["acc"].append(acc)
        if rep == 0:
            samples[name] = np.asarray(x)

    cond = jnp.arange(cfg.num_out, dtype=jnp.int32) % 10
    weights = {"PF-Discriminator": (1.0, 0.0), "PF-Hybrid": (1.0, 1.0)}
    t2 = time.perf_counter()
    for rep in progress(range(cfg.replicates), total=cfg.replicates, desc="digits",
                        enabled=show_progress):
        k_init, k_plain, k_pf = jax.random.split(jax.random.fold_in(k_rep, rep), 3)
        x_init = jax.random.normal(k_init, (cfg.num_out, cfg.k) + event)
        x0 = plain_jit(k_plain, x_init, cond)
        record("plain", x0[:, 0], cond, rep)
        for name, w in (("D-Select", (1.0, 0.0)), ("Object-Select", (0.0, 1.0))):
            scores = score_jit(x0, cond, jnp.asarray(w))
            record(f"{name} K={cfg.k}", select_best(x0, scores)[0], cond, rep)
        for name, w in weights.items():
            parts, log_phi = pf_jit(k_pf, x_init, cond, jnp.asarray(w))
            record(f"{name} K={cfg.k}", select_best(parts, log_phi)[0], cond, rep)
    timings["sampling_s"] = time.perf_counter() - t2
    record("real (training images)", images[: cfg.num_out], labels[: cfg.num_out], 0)
    return metrics, samples, {"timings": timings}
