"""The TS-TCC model in Flax: encoder, context transformer, temporal contrasting, classifier.

Series are ``(B, C, L)`` (channels first); the encoder returns latents ``(B, T', 128)``.
:class:`~jaxpapers.xit.ModelConfig` builds the modules of one configuration.
"""

from jaxpapers.xit._model import (
    Classifier,
    ContextTransformer,
    Encoder,
    TemporalContrast,
    encoder_length,
)

__all__ = ["Encoder", "ContextTransformer", "TemporalContrast", "Classifier", "encoder_length"]
