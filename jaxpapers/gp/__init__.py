"""Exact Gaussian-process kernels for Bayesian optimisation (SE and Matérn-5/2 ARD), a padded
posterior for fixed shapes inside jitted loops, the marginal likelihood and its fitting.

Fixed-shape use inside a jitted loop::

    x_pad, y_pad, mask = pad_data(x, y, size=64)        # real rows first, mask marks them
    post = condition(params, x_pad, y_pad, mask)         # equals the unpadded posterior
    mean, var = predict(post, xs)

Everything follows the input dtype; enable ``jax_enable_x64`` for float64. Bad input: a wrong
shape, dtype or setting raises ``ValueError`` at call or trace time; a bad value raises eagerly,
and under ``jit`` gives ``condition``'s ``ok = False`` or NaN, as each function documents.
"""

from jaxpapers.gp._fit import FitResult, fit_hypers
from jaxpapers.gp._kernels import KERNELS, GPParams, get_kernel, gp_params, matern52, se_ard
from jaxpapers.gp._posterior import (
    MIN_VARIANCE,
    Posterior,
    bucket_size,
    condition,
    lcb,
    log_marginal_likelihood,
    pad_data,
    predict,
    ucb,
)

__all__ = [
    "KERNELS",
    "MIN_VARIANCE",
    "FitResult",
    "GPParams",
    "Posterior",
    "bucket_size",
    "condition",
    "fit_hypers",
    "get_kernel",
    "gp_params",
    "lcb",
    "log_marginal_likelihood",
    "matern52",
    "pad_data",
    "predict",
    "se_ard",
    "ucb",
]
