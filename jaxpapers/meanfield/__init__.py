"""Mean-field transformer SDE: a deep random-weight transformer, its stochastic limit, and
synchronization of tokens by common noise (Agazzi, Bruno, Mosig García, Saviozzi, Romito,
arXiv:2604.26898).

One call of :func:`transformer_forward` or :func:`sde_solve` simulates one run (its noise is
shared by all tokens); vmap over keys for independent runs. The diagnostics are in
:mod:`jaxpapers.meanfield.metrics`. Bad input: a wrong shape, dtype or setting raises
``ValueError`` naming the argument; a bad value raises eagerly and gives NaN under ``jit``.
"""

from jaxpapers.meanfield import metrics
from jaxpapers.meanfield._config import Coefficients, ModelConfig
from jaxpapers.meanfield._kernel import (
    ACTIVATIONS,
    KernelConstants,
    kappa,
    kernel_constants,
    lambda_bar_prime,
)
from jaxpapers.meanfield._layers import MLPWeights, attention, layer_map, sample_layer_weights
from jaxpapers.meanfield._simulate import (
    Saved,
    Trajectory,
    lyapunov_exponent,
    sde_solve,
    transformer_forward,
    uniform_sphere,
)

__all__ = [
    "ACTIVATIONS",
    "Coefficients",
    "KernelConstants",
    "MLPWeights",
    "ModelConfig",
    "Saved",
    "Trajectory",
    "attention",
    "kappa",
    "kernel_constants",
    "lambda_bar_prime",
    "layer_map",
    "lyapunov_exponent",
    "metrics",
    "sample_layer_weights",
    "sde_solve",
    "transformer_forward",
    "uniform_sphere",
]
