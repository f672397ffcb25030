"""Class-conditional sklearn 8x8 digits (spec Sec. 6.2): the image-shaped analogue, as a task.

The conditions are the ten classes; a guiding classifier (multinomial logistic regression, made a
JAX function) plays the detector on ``x0_hat``; an independently trained evaluation classifier (a
one-hidden-layer MLP on a disjoint half) gives the requested-class accuracy ("occurrence") and the
features for a Frechet distance. :func:`digits_task` packages them for
:func:`~jaxpapers.diffusion_resampling._experiments._images.run_images`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers.diffusion_resampling._experiments._images import ImageTask

__all__ = ["digits_task", "load_digits_images"]


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


def digits_task() -> ImageTask:
    """The digits setting: all 1 797 images for training, outputs asking for classes
    ``0, 1, ..., 9, 0, ...`` in turn, a fixed random subset as the discriminator's real set."""
    images, labels = load_digits_images()
    detector_fn, evaluate = _classifiers(images, labels, 0)

    def conditions(key, n):
        del key  # the classes in turn, the same for every replicate
        return jnp.arange(n, dtype=jnp.int32) % 10

    def real_images(key, n):
        del key
        chosen = np.random.default_rng(1).choice(len(labels), n, replace=False)
        return images[chosen], labels[chosen]

    return ImageTask(name="digits", train_images=images, train_labels=labels, num_labels=10,
                     conditions=conditions, real_images=real_images, detector_fn=detector_fn,
                     evaluate=evaluate, reference=(images, labels),
                     occurrence="requested-class accuracy (evaluation MLP classifier)",
                     info={"guide": "logistic regression on one half of the digits",
                           "evaluator": "MLP classifier (64 hidden) on the other half"})
