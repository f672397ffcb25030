"""Evaluation: the detector's measured miss rate, the ancestry of a particle filter's outputs
and the accuracy of a discriminator.

The miss-rate table measured here feeds
:func:`jaxpapers.diffusion_resampling.detector_log_potential` through
:func:`tabulated_miss_rate`.
"""

from jaxpapers.diffusion_resampling._potentials import (
    detection_probabilities,
    miss_rate_table,
    tabulated_miss_rate,
)
from jaxpapers.diffusion_resampling._smc import initial_ancestors, num_lineages
from jaxpapers.diffusion_resampling._train import discriminator_accuracy

__all__ = ["detection_probabilities", "miss_rate_table", "tabulated_miss_rate",
           "initial_ancestors", "num_lineages", "discriminator_accuracy"]
