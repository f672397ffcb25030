"""Experiment drivers of `jaxpapers.diffusion_resampling` (private): the ring and image
drivers, their data and evaluators, and the reproduction runner."""
