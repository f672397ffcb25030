"""Experiment drivers and the reproduce runner (private)."""
