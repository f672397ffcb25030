"""Experiment drivers of `jaxpapers.bocvs` (private): the reproduction runner."""
