"""Mean-field transformer SDE: a deep random-weight transformer, its stochastic limit, and
synchronization of tokens by common noise (Agazzi, Bruno, Mosig García, Saviozzi, Romito,
arXiv:2604.26898).

Public API::

    kernel_constants(activation, d, sigma_u=0., sigma_w=0.) -> KernelConstants
    kappa(u, activation, d, sigma_u=0., sigma_w=0.), lambda_bar_prime(beta, ...)
    ModelConfig(num_layers, horizon, activation, width, noise, scheme, ...), Coefficients(...)
    transformer_forward(key, x0, config, coeffs) -> Trajectory     # paper §1.1
    sde_solve(key, x0, config, coeffs) -> Trajectory               # LN / Itô EM / Heun
    lyapunov_exponent(key, x0, config, coeffs) -> scalar           # tangent method
    strong_error(key, x0, config, num_layers, coeffs) -> [levels]
    attention, layer_map (one transformer layer), uniform_sphere
    energy, one_minus_mean_cos, one_minus_mean_cos_sq, order_parameter, diameter,
    energy_rate, expected_initial_energy, chaos_proxies, sliced_wasserstein
    energy_decay_fit(energies, times) -> DecayFit    # late-window slopes of log mean E, mean log E
    energy_decay_bootstrap(key, energies, times) -> DecayFit of standard errors

One call simulates one run; vmap over keys for independent runs (the noise of a run is shared by
all its tokens)::

    keys = jax.random.split(key, runs)
    x0 = jax.vmap(lambda k: uniform_sphere(k, 64, 5))(jax.random.split(key0, runs))
    out = jax.jit(jax.vmap(lambda k, x: transformer_forward(k, x, config, coeffs)))(keys, x0)

Bad input (the rule of every function here): a wrong shape, dtype or setting (tokens not
``(N, d)``, a ``Coefficients`` matrix not ``[d, d]``, an unknown activation) raises ``ValueError``
naming the argument, at call or trace time. A bad value (non-unit or NaN tokens, ``beta`` or a bias
scale negative or NaN, a non-finite ``attn_scale``) raises eagerly; under ``jit`` the result is
NaN (these functions have no flag), and the decay fits report ``reached = False``. NaN in the
tokens or energies gives NaN out.
"""

from jaxpapers.meanfield._config import Coefficients, ModelConfig
from jaxpapers.meanfield._kernel import (
    ACTIVATIONS,
    KernelConstants,
    kappa,
    kernel_constants,
    lambda_bar_prime,
)
from jaxpapers.meanfield._layers import attention, layer_map
from jaxpapers.meanfield._metrics import (
    DecayFit,
    DecayWindows,
    chaos_proxies,
    decay_windows,
    diameter,
    energy,
    energy_decay_bootstrap,
    energy_decay_fit,
    energy_rate,
    expected_initial_energy,
    one_minus_mean_cos,
    one_minus_mean_cos_sq,
    order_parameter,
    sliced_wasserstein,
)
from jaxpapers.meanfield._simulate import (
    Saved,
    Trajectory,
    lyapunov_exponent,
    sde_solve,
    strong_error,
    transformer_forward,
    uniform_sphere,
)

__all__ = [
    "ACTIVATIONS",
    "Coefficients",
    "DecayFit",
    "DecayWindows",
    "KernelConstants",
    "ModelConfig",
    "Saved",
    "Trajectory",
    "attention",
    "chaos_proxies",
    "decay_windows",
    "diameter",
    "energy",
    "energy_decay_bootstrap",
    "energy_decay_fit",
    "energy_rate",
    "expected_initial_energy",
    "kappa",
    "kernel_constants",
    "lambda_bar_prime",
    "layer_map",
    "lyapunov_exponent",
    "one_minus_mean_cos",
    "one_minus_mean_cos_sq",
    "order_parameter",
    "sde_solve",
    "sliced_wasserstein",
    "strong_error",
    "transformer_forward",
    "uniform_sphere",
]
