"""Multi-device helpers: a 1-D ``data`` mesh and sharding of a leading batch axis."""

from __future__ import annotations

from typing import Any

__all__ = ["data_mesh", "shard_batch", "replicate"]


def data_mesh(num_devices: int | None = None):
    """A 1-D mesh named ``data`` over the first ``num_devices`` devices (Auto axis type)."""
    import jax
    import numpy as np
    from jax.sharding import AxisType, Mesh

    devices = jax.devices()
    num_devices = len(devices) if num_devices is None else num_devices
    if not 1 <= num_devices <= len(devices):
        raise ValueError(f"num_devices must be in [1, {len(devices)}]; got {num_devices}")
    return Mesh(np.array(devices[:num_devices]), ("data",), axis_types=(AxisType.Auto,))


def shard_batch(tree: Any, mesh) -> Any:
    """Place every leaf with its leading axis split over ``data`` (must divide evenly)."""
    import jax
    from jax.sharding import NamedSharding, PartitionSpec

    size = mesh.devices.size

    def put(x):
        if x.shape[0] % size:
            raise ValueError(f"leading axis {x.shape[0]} is not divisible by {size} devices")
        return jax.device_put(x, NamedSharding(mesh, PartitionSpec("data")))

    return jax.tree_util.tree_map(put, tree)


def replicate(tree: Any, mesh) -> Any:
    import jax
    from jax.sharding import NamedSharding, PartitionSpec

    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec()))
