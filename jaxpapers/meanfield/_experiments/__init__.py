"""Experiment drivers of `jaxpapers.meanfield` (private): the reproduction runner."""
