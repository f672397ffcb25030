"""Kernel constants against the paper's table, closed forms and an independent float64 oracle."""

import jax
import numpy as np
import pytest

from jaxpapers.meanfield import kappa, kernel_constants, lambda_bar_prime

# The paper's table (spec §3): kappa(1), kappa'(1), lambda_1, lambda_bar per (d, sigma); the runner
# prints the same table in report.md.
from jaxpapers.meanfield._experiments._paper import ROWS
from jaxpapers.meanfield._kernel import kappa_grid


@pytest.mark.parametrize("act,d,sigma,expected", ROWS,
                         ids=[f"{a}-d{d}-s{s}" for a, d, s, _ in ROWS])
def test_paper_table(act, d, sigma, expected):
    got = np.array([float(v) for v in kernel_constants(act, d, sigma, sigma)])
    # the table prints 3 significant figures: a relative rounding error of at most 5e-3 (3 s.f.)
    np.testing.assert_allclose(got, np.array(expected), rtol=1e-2)


def _numpy_kappa(u, act, d, su, sw, n=120):
    """Independent float64 oracle: the paper's 3-D expectation by tensor Gauss–Hermite."""
    phis = {"relu": lambda z: np.maximum(z, 0), "tanh": np.tanh,
            "sigmoid": lambda z: 1 / (1 + np.exp(-z)), "silu": lambda z: z / (1 + np.exp(-z)),
            "linear": lambda z: z}
    phi = phis[act]
    x, w = np.polynomial.hermite_e.hermegauss(n)
    w = w / np.sqrt(2 * np.pi)
    a, c = np.sqrt((1 + u) / (2 * d)), np.sqrt((1 - u) / (2 * d))
    xi, eta, b = np.meshgrid(x, x, x, indexing="ij")
    ww = w[:, None, None] * w[None, :, None] * w[None, None, :]
    return np.sum(ww * phi(a * xi + c * eta + su * b) * phi(a * xi - c * eta + su * b)) + sw**2


@pytest.mark.parametrize("act", ["tanh", "sigmoid", "silu", "linear", "relu"])
def test_kappa_against_three_dimensional_oracle(act):
    us = np.array([-0.9, -0.3, 0.2, 0.7, 0.95])
    got = np.asarray(kappa(us, act, 6, 0.3, 0.2))
    want = np.array([_numpy_kappa(u, act, 6, 0.3, 0.2) for u in us])
    # smooth activations converge spectrally; ReLU's kink limits the 3-D rule to ~1e-4
    np.testing.assert_allclose(got, want, rtol=2e-3 if act == "relu" else 1e-5, atol=1e-7)


def test_relu_closed_forms():
    d, su, sw = 7, 0.2, 0.3
    c = kernel_constants("relu", d, su, sw)
    np.testing.assert_allclose(float(c.kappa1), 0.5 * (1 / d + su**2) + sw**2, rtol=1e-6)
    np.testing.assert_allclose(float(c.dkappa1), 1 / (2 * d), rtol=1e-6)
    np.testing.assert_allclose(float(c.lambda1), -1 / (2 * d) - (su**2 + 2 * sw**2) * (d - 1) / 4,
                               rtol=1e-5)
    np.testing.assert_allclose(float(c.lambda_bar), 1 / d - (su**2 + 2 * sw**2) * (d - 3) / 2,
                               rtol=1e-5)
    u = np.linspace(-1, 1, 9)
    arc = (np.sqrt(1 - u**2) + (np.pi - np.arccos(u)) * u) / (2 * np.pi * d)
    np.testing.assert_allclose(np.asarray(kappa(u, "relu", d)), arc, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(np.asarray(kappa(u, "linear", d, su, sw)), u / d + su**2 + sw**2,
                               rtol=1e-6)


def test_kappa_derivative_at_one_matches_dkappa1():
    for act in ["tanh", "silu", "sigmoid"]:
        g = jax.grad(lambda u, a=act: kappa(u, a, 5, 0.1, 0.1))(0.9999)
        np.testing.assert_allclose(float(g), float(kernel_constants(act, 5, .1, .1).dkappa1),
                                   rtol=2e-3)


def test_lambda_bar_prime_values_and_bound():
    # spec §3: ReLU d = 64, sigma = 0.1: lambda_bar' = -0.351 (beta 1), -0.0030 (beta 4)
    np.testing.assert_allclose(float(lambda_bar_prime(1.0, "relu", 64, .1, .1)), -0.351, rtol=1e-2)
    np.testing.assert_allclose(float(lambda_bar_prime(4.0, "relu", 64, .1, .1)), -0.0030,
                               rtol=5e-2)
    for act in ["relu", "tanh", "sigmoid"]:
        c = kernel_constants(act, 64, 0.1, 0.1)
        assert float(c.lambda_bar) <= float(lambda_bar_prime(1.0, act, 64, .1, .1)) + 1e-6


def test_kappa_vectorised_and_grid():
    u = np.linspace(-1, 1, 12).reshape(3, 4)
    assert kappa(u, "tanh", 5).shape == (3, 4)
    grid, table = kappa_grid("tanh", 5, num_points=11)
    assert grid.shape == table.shape == (11,)
    np.testing.assert_allclose(float(table[-1]), float(kernel_constants("tanh", 5).kappa1),
                               rtol=1e-5)


def test_bad_input():
    with pytest.raises(ValueError, match="activation"):
        kernel_constants("gelu", 5)
    with pytest.raises(ValueError, match="d"):
        kernel_constants("relu", 1)
    with pytest.raises(ValueError, match="beta"):
        lambda_bar_prime(-1.0, "relu", 5)
