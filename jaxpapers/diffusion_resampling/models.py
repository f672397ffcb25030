"""Flax denoisers and noise-level-conditioned discriminators, and the wrappers that turn a module
and its parameters into the plain functions the samplers and potentials take.

:class:`TimeMLP` is for flat data ``(B, D)``; :class:`ConvDenoiser` and
:class:`ConvDiscriminator` are for images ``(B, H, W, C)``.
"""

from jaxpapers.diffusion_resampling._models import (
    ConvDenoiser,
    ConvDiscriminator,
    TimeMLP,
    eps_fn_from,
    logit_fn_from,
)

__all__ = ["ConvDenoiser", "ConvDiscriminator", "TimeMLP", "eps_fn_from", "logit_fn_from"]
