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
* :func:`shapes_task` -- the setting as an ``ImageTask`` for the shared image driver.

Layout (our choice, not from the paper): the image is split into a 2x2 grid of 16x16 cells and
each shape is drawn inside its own cell, so shapes never overlap and every drawn kind is visible;
the label of kind ``k`` is set iff a shape of kind ``k`` was drawn.
"""

from __future__ import annotations

import dataclasses
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxpapers.diffusion_resampling._experiments._images import ImageTask
from jaxpapers.diffusion_resampling._train import TrainConfig, _fit

__all__ = ["SHAPE_KINDS", "NUM_SETS", "make_shapes", "set_id", "multi_hot", "ShapeDetector",
           "train_detector", "ShapesConfig", "shapes_task"]

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


def train_detector(key, module: ShapeDetector, config: TrainConfig, checkpointer=None,
                   show_progress: bool = False, timer=None):
    """Train a detector on fresh clean renders each step (binary cross-entropy per kind).

    Returns:
      ``(params, losses [steps])``.
    """
    key_init, key_train = jax.random.split(key)
    params = jax.jit(module.init)(key_init, jnp.zeros((1, SIZE, SIZE, 3), jnp.float32))
    return _fit(key_train, params, _detector_loss(module, config.batch_size), (), config,
                checkpointer, show_progress, "detector", timer)


@dataclasses.dataclass(frozen=True)
class ShapesConfig:
    """The shapes data and its two detectors (the image driver's sizes are an ImageConfig)."""

    num_train: int = 10000              # fixed training renders for the denoiser
    detector_channels: int = 32
    detector_steps: int = 2000
    detector_batch: int = 128
    num_eval_real: int = 5000           # renders for the Frechet reference
    chunk: int = 250                    # images per evaluator call

    def __post_init__(self):
        for name in ("num_train", "detector_channels", "detector_steps", "detector_batch",
                     "num_eval_real", "chunk"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"ShapesConfig.{name} must be a positive int; got {value!r}")


def shapes_task(ctx, key, cfg: ShapesConfig) -> ImageTask:
    """Render the training set and train the guiding detector and the evaluator.

    The guide and the evaluator are two ``ShapeDetector`` CNNs, initialised and trained
    independently on fresh renders (the paper guides with DETR-R50 and evaluates with DETR-R101).
    Occurrence: the evaluator finds every requested kind (logit > 0).
    """
    k_train, k_det, k_eval, k_real = jax.random.split(key, 4)
    train_images, train_labels = make_shapes(k_train, cfg.num_train)
    detector = ShapeDetector(cfg.detector_channels)
    det_cfg = TrainConfig(cfg.detector_steps, cfg.detector_batch, 1e-3, checkpoint_every=500)
    show = ctx.show_progress and ctx.is_primary
    det_params, _ = train_detector(k_det, detector, det_cfg,
                                   ctx.checkpointer("shapes-detector", cfg), show, ctx.timer)
    eval_params, _ = train_detector(k_eval, detector, det_cfg,
                                    ctx.checkpointer("shapes-evaluator", cfg), show, ctx.timer)

    def detector_fn(x0, cond):
        probs = jax.nn.sigmoid(detector.apply(det_params, x0)[0])
        return jnp.where(multi_hot(cond) > 0, probs, 1.0)   # unrequested kinds contribute 0

    eval_jit = ctx.timer.jit(lambda x: detector.apply(eval_params, x))

    def evaluate(x, cond):
        logits, feats = [], []
        for i in range(0, len(x), cfg.chunk):
            lg, ft = eval_jit(jnp.asarray(x[i:i + cfg.chunk]))
            logits.append(np.asarray(lg))
            feats.append(np.asarray(ft))
        found = np.concatenate(logits) > 0
        want = np.asarray(multi_hot(cond)) > 0
        return np.concatenate(feats), float(np.mean(np.all(found | ~want, axis=-1)))

    def conditions(k, n):
        return set_id(make_shapes(k, n)[1])

    def real_images(k, n):
        images, labels = make_shapes(k, n)
        return images, set_id(labels)

    eval_real, eval_labels = make_shapes(jax.random.fold_in(k_real, 1), cfg.num_eval_real)
    return ImageTask(name="shapes", train_images=train_images,
                     train_labels=set_id(train_labels), num_labels=NUM_SETS,
                     conditions=conditions, real_images=real_images, detector_fn=detector_fn,
                     evaluate=evaluate, reference=(eval_real, set_id(eval_labels)),
                     occurrence="occurrence (the evaluator finds every requested kind)",
                     info={"guide": "ShapeDetector CNN", "evaluator": "an independent "
                           "ShapeDetector CNN"})
