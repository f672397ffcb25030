"""Bad input to the XIT kernels: refused with a message naming the argument, or NaN."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers import xit

U = jnp.asarray(np.random.default_rng(0).normal(size=(4, 5)), jnp.float32)
V = jnp.asarray(np.random.default_rng(1).normal(size=(4, 5)), jnp.float32)
PERM = jnp.asarray([1, 0, 3, 2])
LAM = jnp.full(4, 0.7)


@pytest.mark.parametrize("tau", [0.0, -0.5, float("nan")])
def test_nt_xent_tau(tau):
    with pytest.raises(ValueError, match="tau must be finite and > 0"):
        xit.nt_xent(U, V, tau)
    assert np.isnan(float(jax.jit(xit.nt_xent)(U, V, tau)))


@pytest.mark.parametrize("perm, lam, match", [
    (PERM.at[0].set(4), LAM, "perm must be in"),
    (PERM.at[0].set(-1), LAM, "perm must be in"),
    (PERM, jnp.full(4, 1.5), r"lam must be in \[0, 1\]"),
])
def test_sicc_out_of_range(perm, lam, match):
    with pytest.raises(ValueError, match=match):
        xit.sicc(U, V, perm, lam, 0.2)
    assert np.isnan(float(jax.jit(xit.sicc)(U, V, perm, lam, 0.2)))


def test_xd_mixup_alpha_and_ds_id():
    x = jnp.zeros((4, 2, 8))
    with pytest.raises(ValueError, match="alpha must be finite and > 0"):
        xit.xd_mixup(jax.random.key(0), x, jnp.asarray([0, 0, 1, 1]), -0.5)
    with pytest.raises(ValueError, match=r"ds_id must have shape \(4,\)"):
        xit.xd_mixup(jax.random.key(0), x, jnp.asarray([0, 1, 1]), 0.2)
    x_mix, _, lam = jax.jit(xit.xd_mixup)(jax.random.key(0), x, jnp.asarray([0, 0, 1, 1]), -0.5)
    assert np.all(np.isnan(lam)) and np.all(np.isnan(x_mix))


def test_metrics_refuse_labels_out_of_range():
    logits = jnp.zeros((3, 2))
    labels = jnp.asarray([0, 1, 2])
    with pytest.raises(ValueError, match="labels must be in"):
        xit.metrics.accuracy(logits, labels)
    assert np.isnan(float(jax.jit(xit.metrics.accuracy)(logits, labels)))
    with pytest.raises(ValueError, match="labels must be in"):
        xit.metrics.macro_f1(jnp.asarray([0, 1, 1]), labels, 2)


def test_augmentations_refuse_int_keys_and_negative_sigma():
    x = jnp.zeros((1, 8))
    with pytest.raises(ValueError, match="key must be a PRNG key"):
        jax.jit(xit.augment.jitter)(0, x, 0.1)
    with pytest.raises(ValueError, match="sigma must be finite and >= 0"):
        xit.augment.weak_scale(jax.random.key(0), x, -1.0)


def test_sample_batch_empty_dataset():
    x = jnp.arange(8.0).reshape(4, 2)
    args = (x, jnp.asarray([0, 2]), jnp.asarray([2, 0]), jnp.log(jnp.asarray([0.5, 0.5])))
    with pytest.raises(ValueError, match="offsets and counts"):
        xit.data.sample_batch(jax.random.key(0), *args, 8)
    rows, ds = jax.jit(xit.data.sample_batch, static_argnums=5)(jax.random.key(0), *args, 8)
    assert np.all(np.isnan(np.asarray(rows)[np.asarray(ds) == 1]))
