"""Experiment drivers of `jaxpapers.smc` (private): the reproduction runner."""
