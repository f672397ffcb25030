"""Procedurally generated 32x32 "shapes" images (spec Sec. 6.3): the GPU-scale setting.

No image datasets or pretrained weights can be downloaded here, so the text-to-image
missing-object experiment is replaced by a renderer of 1-3 coloured shapes (circle, square,
triangle) on a black background. The condition is the *set* of shape kinds present, a multi-hot
vector ``[3]``; the denoiser sees it as one integer set id ``sum_k 2^k y_k`` in ``1..7`` (the
8 possible sets, so no information is lost and the existing label-embedding models apply; id 8
is the null label for classifier-free guidance).

* :func:`make_shapes` -- pure-JAX renderer, vmapped, deterministic per key.
* :class:`ShapeDetector` -- a small multi-label CNN (3 sigmoid logits and a feature vector).
  One instance trained on clean renders guides sampling on ``x0_hat`` (the paper's DETR-R50
  on the predicted clean image); a second, independently initialised and trained one evaluates
  (the paper's DETR-R101): occurrence = the evaluator finds every requested shape, Frechet
  distance in its penultimate features.
* :func:`run_shapes` -- the experiment, following :func:`run_digits`.

Layout (our choice, not from the paper): the image is split into a 2x2 grid of 16x16 cells and
each shape is drawn inside its own cell, so shapes never overlap and every drawn kind is visible;
the label of kind ``k`` is set iff a shape of kind ``k`` was drawn.
"""

from __future__ import annotations

import dataclasses
import functools
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxpapers._src.progress import progress
from jaxpapers.diffusion_resampling import _tasks as tasks
from jaxpapers.diffusion_resampling._diffusion import cfg_eps, make_ddpm_step, make_schedule
from jaxpapers.diffusion_resampling._models import ConvDenoiser, ConvDiscriminator, logit_fn_from
from jaxpapers.diffusion_resampling._potentials import (
    detector_log_potential,
    discriminator_log_potential,
    predicted_x0,
)
from jaxpapers.diffusion_resampling._smc import plain_sample, select_best, smc_sample
from jaxpapers.diffusion_resampling._train import (
    TrainConfig,
    _fit,
    train_denoiser,
    train_discriminator,
)

__all__ = ["SHAPE_KINDS", "NUM_SETS", "make_shapes", "set_id", "multi_hot", "ShapeDetector",
           "train_detector", "ShapesConfig", "run_shapes"]

SHAPE_KINDS = ("circle", "square", "triangle")
#: set ids are 1..7; the label embedding has rows 0..8 (8 = null label)
NUM_SETS = 8
SIZE = 32
CELL = 16


def set_id(labels):
    """Multi-hot ``[..., 3]`` -> integer set id ``sum_k 2^k y_k`` ``[...]`` (int32)."""
    labels = jnp.asarray(labels, jnp.int32)
    weights = jnp.reshape(jnp.asarray([1, 2, 4], jnp.int32), (1,) * (labels.ndim - 1) + (3,))
    return jnp.sum(labels * weights, axis=-1)


def multi_hot(ids):
    """Set id ``[...]`` -> multi-hot ``[..., 3]`` float32 (inverse of :func:`set_id`)."""
    ids = jnp.asarray(ids, jnp.int32)
    bits = jnp.reshape(jnp.arange(3, dtype=jnp.int32), (1,) * ids.ndim + (3,))
    return ((ids[..., None] >> bits) & 1).astype(jnp.float32)


def _render_one(key):
    k_n, k_cell, k_kind, k_col, k_r, k_pos = jax.random.split(key, 6)
    num = jax.random.randint(k_n, (), 1, 4)                       # 1..3 shapes
    cells = jax.random.permutation(k_cell, 4)[:3]                 # distinct cells
    kinds = jax.random.randint(k_kind, (3,), 0, 3)
    colours = jax.random.uniform(k_col, (3, 3), minval=0.3, maxval=1.0)
    radius = jax.random.uniform(k_r, (3,), minval=4.0, maxval=7.0)
    offset = jax.random.uniform(k_pos, (3, 2))
    active = jnp.arange(3) < num
    # centre inside the cell, at least ``radius`` from its border
    origin = jnp.stack([(cells % 2) * CELL, (cells // 2) * CELL], -1).astype(jnp.float32)
    centre = origin + radius[:, None] + offset * (CELL - 2 * radius[:, None])   # [3, (x, y)]
    coords = jnp.arange(SIZE, dtype=jnp.float32) + 0.5
    px = coords[None, None, :]
    py = coords[None, :, None]
    dx = px - centre[:, 0, None, None]
    dy = py - centre[:, 1, None, None]
    r = radius[:, None, None]
    circle = dx**2 + dy**2 <= r**2
    square = (jnp.abs(dx) <= r) & (jnp.abs(dy) <= r)
    # apex up at y = cy - r, base at y = cy + r of half-width r
    triangle = (jnp.abs(dy) <= r) & (2 * jnp.abs(dx) <= dy + r)
    masks = jnp.stack([circle, square, triangle], 0)                # [kind, 3, H, W]
    mask = jnp.take_along_axis(masks, kinds[None, :, None, None], axis=0)[0]
    mask = mask & active[:, None, None]                             # [3, H, W]
    image = jnp.sum(mask[..., None] * colours[:, None, None, :], axis=0)   # disjoint cells
    labels = jnp.any((kinds[:, None] == jnp.arange(3)[None, :]) & active[:, None], axis=0)
    return 2.0 * image - 1.0, labels.astype(jnp.float32)


@functools.partial(jax.jit, static_argnums=1)
def make_shapes(key, num: int):
    """Render ``num`` shapes images.

    Args:
      key: PRNG key (the output is a deterministic function of it).
      num: number of images (static).

    Returns:
      ``(images [num, 32, 32, 3] in [-1, 1] (background -1), labels [num, 3] multi-hot float32
      in the order of :data:`SHAPE_KINDS`)``.
    """
    return jax.vmap(_render_one)(jax.random.split(key, num))


class ShapeDetector(nn.Module):
    """Multi-label shape detector: ``[B, 32, 32, 3] -> (logits [B, 3], features [B, F])``."""

    channels: int = 32

    @nn.compact
    def __call__(self, x):
        h = x
        for mult in (1, 2, 4):
            h = nn.silu(nn.Conv(self.channels * mult, (3, 3))(h))
            h = nn.silu(nn.Conv(self.channels * mult, (3, 3), strides=(2, 2))(h))
        feats = nn.silu(nn.Dense(4 * self.channels)(jnp.mean(h, axis=(1, 2))))
        return nn.Dense(3)(feats), feats


@functools.lru_cache(maxsize=16)
def _detector_loss(module: ShapeDetector, batch_size: int):
    def loss_fn(params, k):
        images, labels = make_shapes(k, batch_size)
        logits, _ = module.apply(params, images)
        return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, labels))

    return loss_fn


def train_detector(key, module: ShapeDetector, config: TrainConfig,
                   checkpoint_dir: str | None = None, show_progress: bool = False):
    """Train a detector on fresh clean renders each step (binary cross-entropy per kind).

    Returns:
      ``(params, losses [steps])``.
    """
    key_init, key_train = jax.random.split(key)
    params = jax.jit(module.init)(key_init, jnp.zeros((1, SIZE, SIZE, 3), jnp.float32))
    return _fit(key_train, params, _detector_loss(module, config.batch_size), (), config,
                checkpoint_dir, show_progress, "detector")


@dataclasses.dataclass(frozen=True)
class ShapesConfig:
    """Sizes of the shapes experiment (defaults: ``--scale paper`` on one GPU)."""

    num_steps: int = 100
    channels: int = 192                 # ConvDenoiser width (about 9.6 M parameters)
    denoiser_steps: int = 4000          # deliberately short
    num_train: int = 10000              # fixed training renders for the denoiser
    batch_size: int = 128
    guidance: float = 0.0
    detector_channels: int = 32
    detector_steps: int = 2000
    disc_channels: int = 32
    disc_steps: int = 3000
    num_real_disc: int = 2000
    num_fake_disc: int = 20000
    num_out: int = 2000
    num_eval_real: int = 5000
    ks: tuple = (1, 2, 4, 8)
    replicates: int = 3
    resample_levels: tuple = (5, 10, 15, 20, 25)
    scheme: str = "multinomial"
    chunk: int = 250                    # groups per sampling call (bounds device memory)

    def __post_init__(self):
        for name in ("num_steps", "channels", "denoiser_steps", "num_train", "batch_size",
                     "detector_channels", "detector_steps", "disc_channels", "disc_steps",
                     "num_real_disc", "num_fake_disc", "num_out", "num_eval_real", "replicates",
                     "chunk"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"ShapesConfig.{name} must be a positive int; got {value!r}")
        if not self.ks or any(int(k) < 1 for k in self.ks):
            raise ValueError(f"ShapesConfig.ks must be positive ints; got {self.ks!r}")
        if self.num_out % self.chunk or self.num_fake_disc % self.chunk:
            raise ValueError(f"ShapesConfig.chunk={self.chunk} must divide num_out="
                             f"{self.num_out} and num_fake_disc={self.num_fake_disc}")
        if any(not 0 < t < self.num_steps for t in self.resample_levels):
            raise ValueError(f"ShapesConfig.resample_levels must lie in [1, num_steps - 1]; got "
                             f"{self.resample_levels!r}")


def run_shapes(key, cfg: ShapesConfig, show_progress: bool = False, checkpoint_dir=None):
    """Train denoiser, detectors and discriminator, then sample with every method.

    Methods (per ``K`` in ``cfg.ks``): ``plain`` (first particle), ``Object-Select K`` (best of
    ``K`` plain samples by the guiding detector on the final image), ``PF-Detector K``,
    ``PF-Hybrid K`` (discriminator + detector), ``PF-Discriminator K``; all PF variants take the
    argmax of the final ``log phi`` (the paper). All methods of one replicate share the initial
    noise and the trained models, so per-replicate differences are paired.

    Returns:
      ``(metrics {method: {"occ": [R], "fd": [R]}}, samples {method: [n, 32, 32, 3]},
      info)``.
    """
    timings = {}
    ckpt = (lambda name: None) if checkpoint_dir is None else (
        lambda name: f"{checkpoint_dir}/shapes_{name}")
    k_den, k_det, k_eval, k_fake, k_disc, k_real, k_rep = jax.random.split(key, 7)
    schedule = make_schedule(cfg.num_steps, "cosine")
    t0 = time.perf_counter()
    train_images, train_labels = make_shapes(jax.random.fold_in(k_den, 7), cfg.num_train)
    denoiser = ConvDenoiser(cfg.channels, num_classes=NUM_SETS)
    params, _ = train_denoiser(
        k_den, denoiser, train_images, schedule,
        TrainConfig(cfg.denoiser_steps, cfg.batch_size, 2e-4, checkpoint_every=500),
        labels=set_id(train_labels), label_dropout=0.1, checkpoint_dir=ckpt("denoiser"),
        show_progress=show_progress)
    timings["denoiser_s"] = time.perf_counter() - t0
    eps = cfg_eps(lambda x, t, y: denoiser.apply(params, x, t, y), NUM_SETS, cfg.guidance)
    step = make_ddpm_step(eps, schedule, clip_x0=1.0)

    t1 = time.perf_counter()
    detector = ShapeDetector(cfg.detector_channels)
    det_cfg = TrainConfig(cfg.detector_steps, cfg.batch_size, 1e-3, checkpoint_every=500)
    det_params, _ = train_detector(k_det, detector, det_cfg, ckpt("detector"), show_progress)
    eval_params, _ = train_detector(k_eval, detector, det_cfg, ckpt("evaluator"), show_progress)
    timings["detectors_s"] = time.perf_counter() - t1

    def detector_fn(x0, cond):
        probs = jax.nn.sigmoid(detector.apply(det_params, x0)[0])
        return jnp.where(multi_hot(cond) > 0, probs, 1.0)   # unrequested kinds contribute 0

    eval_jit = jax.jit(lambda x: detector.apply(eval_params, x))

    def evaluate(x, cond):
        logits, feats = [], []
        for i in range(0, len(x), cfg.chunk):
            lg, ft = eval_jit(jnp.asarray(x[i:i + cfg.chunk]))
            logits.append(np.asarray(lg))
            feats.append(np.asarray(ft))
        found = np.concatenate(logits) > 0
        want = np.asarray(multi_hot(cond)) > 0
        occ = np.mean(np.all(found | ~want, axis=-1))
        return np.concatenate(feats), float(occ)

    plain_jit = jax.jit(lambda k, x, c: plain_sample(k, step, x, cfg.num_steps, c))

    def sample_plain(k, x_init, cond):
        out = [plain_jit(jax.random.fold_in(k, i), x_init[i:i + cfg.chunk], cond[i:i + cfg.chunk])
               for i in range(0, x_init.shape[0], cfg.chunk)]
        return jnp.concatenate(out)

    t2 = time.perf_counter()
    _, fake_labels = make_shapes(jax.random.fold_in(k_fake, 0), cfg.num_fake_disc)
    fake = sample_plain(k_fake, jax.random.normal(jax.random.fold_in(k_fake, 1),
                                                  (cfg.num_fake_disc, 1, SIZE, SIZE, 3)),
                        set_id(fake_labels))[:, 0]
    real, _ = make_shapes(k_real, cfg.num_real_disc)
    disc = ConvDiscriminator(cfg.disc_channels)
    dparams, _ = train_discriminator(
        k_disc, disc, real, fake, schedule,
        TrainConfig(cfg.disc_steps, cfg.batch_size, 3e-4, checkpoint_every=500),
        checkpoint_dir=ckpt("disc"), show_progress=show_progress)
    timings["discriminator_s"] = time.perf_counter() - t2
    logit_fn = logit_fn_from(disc, dparams)
    disc_pot = discriminator_log_potential(lambda x, t, y: logit_fn(x, t))
    det_pot = detector_log_potential(predicted_x0(eps, schedule), detector_fn)

    def pot(x, t, c, w):
        return w[0] * disc_pot(x, t, c) + w[1] * det_pot(x, t, c)

    @functools.partial(jax.jit, static_argnums=4)
    def pf_chunk(k, x_init, cond, w, num_particles):
        out = smc_sample(k, step, lambda x, t, c: pot(x, t, c, w), cfg.resample_levels,
                         num_particles, x_init, cfg.num_steps, cond, scheme=cfg.scheme,
                         final="argmax")
        return out.samples

    select_jit = jax.jit(lambda x, c: select_best(x, det_pot(x, jnp.int32(0), c))[0])

    eval_real, eval_labels = make_shapes(jax.random.fold_in(k_real, 1), cfg.num_eval_real)
    real_feats, real_occ = evaluate(np.asarray(eval_real), np.asarray(set_id(eval_labels)))
    metrics: dict[str, dict[str, list[float]]] = {}
    samples = {}

    def record(name, x, cond, rep):
        feats, occ = evaluate(np.asarray(x), np.asarray(cond))
        m = metrics.setdefault(name, {"fd": [], "occ": []})
        m["fd"].append(tasks.frechet_distance(feats, real_feats))
        m["occ"].append(occ)
        if rep == 0:
            samples[name] = np.asarray(x[:16])

    weights = {"PF-Detector": (0.0, 1.0), "PF-Hybrid": (1.0, 1.0),
               "PF-Discriminator": (1.0, 0.0)}
    kmax = max(cfg.ks)
    t3 = time.perf_counter()
    for rep in progress(range(cfg.replicates), total=cfg.replicates, desc="shapes",
                        enabled=show_progress):
        k_c, k_init, k_plain, k_pf = jax.random.split(jax.random.fold_in(k_rep, rep), 4)
        _, labels = make_shapes(k_c, cfg.num_out)       # conditions drawn like the real data
        cond = set_id(labels)
        x_init = jax.random.normal(k_init, (cfg.num_out, kmax, SIZE, SIZE, 3))
        x0 = sample_plain(k_plain, x_init, cond)
        record("plain", x0[:, 0], cond, rep)
        if rep == 0:
            sample_conditions = np.asarray(cond[:16])
        for k in cfg.ks:
            picked = jnp.concatenate([select_jit(x0[i:i + cfg.chunk, :k], cond[i:i + cfg.chunk])
                                      for i in range(0, cfg.num_out, cfg.chunk)])
            record(f"Object-Select K={k}", picked, cond, rep)
            for name, w in weights.items():
                out = jnp.concatenate([
                    pf_chunk(jax.random.fold_in(k_pf, i), x_init[i:i + cfg.chunk, :k],
                             cond[i:i + cfg.chunk], jnp.asarray(w, jnp.float32), k)
                    for i in range(0, cfg.num_out, cfg.chunk)])
                record(f"{name} K={k}", out, cond, rep)
    timings["sampling_s"] = time.perf_counter() - t3
    record("real (renders)", eval_real[:cfg.num_out], set_id(eval_labels[:cfg.num_out]), 0)
    num_params = sum(int(np.prod(p.shape)) for p in jax.tree_util.tree_leaves(params))
    info = {"timings": timings, "denoiser_params": num_params, "real_occurrence": real_occ,
            "sample_conditions": sample_conditions}
    return metrics, samples, info
