"""Diagnostics of token configurations and of runs: energy, cosines, order parameter, diameter,
decay-rate fits, propagation-of-chaos proxies and the strong error of the SDE schemes.

Every function takes arrays a run of :func:`jaxpapers.meanfield.sde_solve` produces (tokens
``(N, d)``, energies ``(R, S)`` of ``R`` runs at ``S`` saved times) and is traceable.
"""

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
from jaxpapers.meanfield._simulate import strong_error

__all__ = [
    "DecayFit",
    "DecayWindows",
    "chaos_proxies",
    "decay_windows",
    "diameter",
    "energy",
    "energy_decay_bootstrap",
    "energy_decay_fit",
    "energy_rate",
    "expected_initial_energy",
    "one_minus_mean_cos",
    "one_minus_mean_cos_sq",
    "order_parameter",
    "sliced_wasserstein",
    "strong_error",
]
