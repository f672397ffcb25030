"""Moved to :mod:`jaxpapers.sharding` (public)."""

from jaxpapers.sharding import data_mesh, replicate, shard_batch  # noqa: F401
