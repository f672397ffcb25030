"""Spec Sec. 8.3 oracles 1-8 for the losses (float64 NumPy oracles, finite differences)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers.xit import nt_xent, sicc, tc_infonce


def _normalize(a):
    return a / np.linalg.norm(a, axis=-1, keepdims=True)


def _log_softmax(s):
    s = s - s.max(-1, keepdims=True)
    return s - np.log(np.exp(s).sum(-1, keepdims=True))


def _info_nce(m, r, labels, tau):
    logits = _normalize(m) @ _normalize(r).T / tau
    return -np.mean(_log_softmax(logits)[np.arange(len(m)), labels])


def _data(seed, b=6, d=5):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(b, d)), rng.normal(size=(b, d)), rng.permutation(b), \
        rng.uniform(size=b)


def test_sicc_reduces_to_info_nce_at_lambda_0_and_1():
    m, r, perm, _ = _data(0)
    b = len(m)
    for lam, labels in ((np.ones(b), np.arange(b)), (np.zeros(b), perm)):
        got = sicc(jnp.asarray(m, jnp.float32), jnp.asarray(r, jnp.float32), jnp.asarray(perm),
                   jnp.asarray(lam, jnp.float32), 0.2)
        np.testing.assert_allclose(float(got), _info_nce(m, r, labels, 0.2), rtol=1e-4)


def test_sicc_is_affine_in_each_lambda():
    m, r, perm, lam = _data(1)
    logp = _log_softmax(_normalize(m) @ _normalize(r).T / 0.5)
    b = len(m)
    expected = -np.mean(lam * logp[np.arange(b), np.arange(b)] + (1 - lam) * logp[np.arange(b),
                                                                                 perm])
    got = sicc(jnp.asarray(m, jnp.float32), jnp.asarray(r, jnp.float32), jnp.asarray(perm),
               jnp.asarray(lam, jnp.float32), 0.5)
    np.testing.assert_allclose(float(got), expected, rtol=1e-4)


def test_sicc_invariances():
    m, r, perm, lam = (jnp.asarray(a) for a in _data(2))
    m, r, lam = m.astype(jnp.float32), r.astype(jnp.float32), lam.astype(jnp.float32)
    base = sicc(m, r, perm, lam, 0.2)
    scale = jnp.arange(1.0, 7.0)[:, None]
    np.testing.assert_allclose(sicc(3.0 * m * scale, 0.5 * r, perm, lam, 0.2), base, rtol=1e-5)
    p = np.random.default_rng(3).permutation(6)  # reindex: item i -> position of p
    inv = np.argsort(p)
    np.testing.assert_allclose(sicc(m[p], r[p], jnp.asarray(inv[np.asarray(perm)[p]]), lam[p],
                                    0.2), base, rtol=1e-5)


def test_gradients_match_finite_differences_in_float64():
    with jax.enable_x64(True):
        m, r, perm, lam = _data(4, b=4, d=3)
        fut = np.random.default_rng(5).normal(size=(2, 4, 3))
        fns = [
            (lambda a: sicc(a, jnp.asarray(r), jnp.asarray(perm), jnp.asarray(lam), 0.3), m),
            (lambda a: sicc(a, jnp.asarray(r), jnp.asarray(perm), jnp.asarray(lam), 0.3,
                            extra_negatives=True), m),
            (lambda a: nt_xent(a, jnp.asarray(r), 0.3), m),
            (lambda a: tc_infonce(a, jnp.asarray(fut)), fut * 0.7 + 0.1),
        ]
        for fn, x0 in fns:
            x0 = jnp.asarray(x0, jnp.float64)
            grad = np.asarray(jax.jit(jax.grad(fn))(x0))
            fn = jax.jit(fn)  # one compile, then 2 * size calls
            eps = 1e-6
            fd = np.zeros(x0.size)
            for i in range(x0.size):
                e = np.zeros(x0.size)
                e[i] = eps
                e = jnp.asarray(e.reshape(x0.shape))
                fd[i] = (float(fn(x0 + e)) - float(fn(x0 - e))) / (2 * eps)
            np.testing.assert_allclose(grad.ravel(), fd, rtol=1e-6, atol=1e-9)


def test_nt_xent_symmetric_finite_at_tiny_tau_and_matches_numpy():
    u, v, _, _ = _data(6)
    u32, v32 = jnp.asarray(u, jnp.float32), jnp.asarray(v, jnp.float32)
    np.testing.assert_allclose(nt_xent(u32, v32, 0.2), nt_xent(v32, u32, 0.2), rtol=1e-6)
    assert np.isfinite(float(nt_xent(u32, v32, 1e-4)))
    q = _normalize(np.concatenate([u, v]))
    s = q @ q.T / 0.2
    np.fill_diagonal(s, -np.inf)
    b = len(u)
    pos = (np.arange(2 * b) + b) % (2 * b)
    expected = -np.mean(_log_softmax(s)[np.arange(2 * b), pos])
    np.testing.assert_allclose(float(nt_xent(u32, v32, 0.2)), expected, rtol=1e-5)


def test_sicc_extra_negatives_equals_half_of_nt_xent():
    u, v, _, _ = _data(7)
    b = len(u)
    u32, v32 = jnp.asarray(u, jnp.float32), jnp.asarray(v, jnp.float32)
    # nt_xent's u -> v half: rows a < B; candidates are v (positives at a) and the other u
    q = _normalize(np.concatenate([u, v]))
    s = q @ q.T / 0.2
    np.fill_diagonal(s, -np.inf)
    half = -np.mean(_log_softmax(s)[np.arange(b), np.arange(b) + b])
    got = sicc(u32, v32, jnp.arange(b), jnp.ones(b), 0.2, extra_negatives=True)
    np.testing.assert_allclose(float(got), half, rtol=1e-5)


@pytest.mark.parametrize("tau", [0.1, 0.5])
def test_nt_xent_closed_form_for_orthonormal_pairs(tau):
    b = 4
    u = jnp.eye(2 * b)[:b]
    expected = -np.log(np.exp(1 / tau) / (np.exp(1 / tau) + 2 * b - 2))
    np.testing.assert_allclose(float(nt_xent(u, u, tau)), expected, rtol=1e-4, atol=2e-6)


def test_tc_infonce_limits():
    k, b, d = 3, 5, 8
    fut = jnp.asarray(np.random.default_rng(8).normal(size=(k, b, d)), jnp.float32)
    pred = jnp.broadcast_to(fut[:, :1], fut.shape)  # every prediction equal
    np.testing.assert_allclose(float(tc_infonce(pred, fut)), np.log(b), rtol=1e-6)
    ortho = jnp.broadcast_to(jnp.eye(d)[:b][None], (k, b, d))
    values = [float(tc_infonce(c * ortho, ortho)) for c in (1.0, 10.0, 100.0)]
    assert values[0] > values[1] > values[2] and values[2] < 1e-30 + 1e-6


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="sicc"):
        sicc(jnp.ones((3, 2)), jnp.ones((4, 2)), jnp.arange(3), jnp.ones(3), 0.2)
    with pytest.raises(ValueError, match="tc_infonce"):
        tc_infonce(jnp.ones((2, 3, 4)), jnp.ones((2, 3, 5)))
