"""Drivers and the runner of ``jaxpapers reproduce expert_iteration`` (private)."""
