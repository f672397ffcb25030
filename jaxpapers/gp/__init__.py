"""Exact Gaussian-process kernels for Bayesian optimisation.

Public API::

    gp_params(lengthscale, variance=1.0, noise=1e-4, dim=None, dtype=None) -> GPParams
    se_ard(params, x1, x2), matern52(params, x1, x2) -> [n1, n2]
    bucket_size(n) -> int;  pad_data(x, y, size=None) -> (x_pad, y_pad, mask)
    condition(params, x, y, mask=None, kernel="se", jitter=1e-8, max_tries=6) -> Posterior
    predict(posterior, xs) -> (mean, var);  ucb / lcb(posterior, xs, beta)
    log_marginal_likelihood(params, x, y, mask=None, kernel="se")
    fit_hypers(key, params, x, y, mask=None, ...) -> FitResult

Fixed-shape use inside a jitted loop::

    x_pad, y_pad, mask = pad_data(x, y, size=64)        # real rows first, mask marks them
    post = condition(params, x_pad, y_pad, mask)         # equals the unpadded posterior
    mean, var = predict(post, xs)

Everything follows the input dtype; enable ``jax_enable_x64`` for float64.

Bad input (the rule of every function here): a wrong shape, dtype or setting raises
``ValueError`` naming the argument, at call or trace time. A bad value (NaN/inf, out of range)
raises eagerly; under ``jit`` ``condition``'s ``ok`` flag is False, and the functions without
a flag (kernels, ``predict``, ``ucb``/``lcb``, ``log_marginal_likelihood``, ``fit_hypers``,
``gp_params``) return NaN, as documented in each.

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
