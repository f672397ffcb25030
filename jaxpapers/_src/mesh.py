"""Meshes and array placement over the devices of one or many processes (the implementation
behind the public :mod:`jaxpapers.sharding`, and what the private modules use)."""

from __future__ import annotations

from typing import Any

__all__ = ["DATA_AXIS", "data_mesh", "shard_batch", "replicate", "gather"]

DATA_AXIS = "data"


def data_mesh(num_devices: int | None = None):
    """A 1-D mesh named ``data`` over the first ``num_devices`` devices (all when None).

    The axis type is ``Auto`` (classic jit sharding propagation). With several processes the
    devices are those of every process (``jax.devices()``), so ``num_devices`` must then be None
    or the global count.

    Args:
      num_devices: how many devices, from the first; None for all.

    Returns:
      A :class:`jax.sharding.Mesh` with the one axis ``"data"``.

    Raises:
      ValueError: ``num_devices`` outside ``[1, jax.device_count()]``, or not the global count
        with several processes.

    Example:
      >>> from jaxpapers.sharding import data_mesh
      >>> data_mesh(1).axis_names
      ('data',)
    """
    import jax
    import numpy as np
    from jax.sharding import AxisType, Mesh

    devices = jax.devices()
    num_devices = len(devices) if num_devices is None else num_devices
    if not 1 <= num_devices <= len(devices):
        raise ValueError(f"num_devices must be in [1, {len(devices)}]; got {num_devices}")
    if jax.process_count() > 1 and num_devices != len(devices):
        raise ValueError(f"with {jax.process_count()} processes the mesh spans all "
                         f"{len(devices)} devices; got num_devices={num_devices}")
    return Mesh(np.array(devices[:num_devices]), (DATA_AXIS,), axis_types=(AxisType.Auto,))


def _is_key(x) -> bool:
    import jax

    return jax.dtypes.issubdtype(getattr(x, "dtype", None), jax.dtypes.prng_key)


def _put_global(x, sharding):
    """A global array from a value every process holds in full (multi-process safe)."""
    import jax
    import numpy as np

    if sharding.is_fully_addressable:
        return jax.device_put(x, sharding)
    if _is_key(x):
        impl = jax.random.key_impl(x)
        data = _put_global(jax.random.key_data(x), sharding)
        return jax.jit(lambda d: jax.random.wrap_key_data(d, impl=impl),
                       out_shardings=sharding)(data)
    host = np.asarray(x)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def shard_batch(tree: Any, mesh) -> Any:
    """Place every leaf with its leading axis split over ``data`` (it must divide evenly).

    Every process must pass the same values (they are the global batch).

    Args:
      tree: a pytree of arrays (PRNG key arrays included), each with a leading batch axis
        ``[B, ...]``.
      mesh: a mesh from :func:`data_mesh`.

    Returns:
      The same tree of global ``jax.Array`` s, each ``[B, ...]`` sharded ``B / devices`` rows
      per device, dtypes unchanged.

    Raises:
      ValueError: a leaf's leading axis is not divisible by the number of devices.
    """
    import jax
    from jax.sharding import NamedSharding, PartitionSpec

    size = mesh.devices.size
    sharding = NamedSharding(mesh, PartitionSpec(DATA_AXIS))

    def put(x):
        if x.shape[0] % size:
            raise ValueError(f"leading axis {x.shape[0]} is not divisible by {size} devices")
        return _put_global(x, sharding)

    return jax.tree_util.tree_map(put, tree)


def replicate(tree: Any, mesh) -> Any:
    """Place every leaf, whole, on every device of ``mesh`` (multi-process safe).

    Args:
      tree: a pytree of arrays (the same value in every process), e.g. parameters used beside
        sharded data.
      mesh: a mesh from :func:`data_mesh`.

    Returns:
      The same tree of replicated global ``jax.Array`` s, shapes and dtypes unchanged.
    """
    import jax
    from jax.sharding import NamedSharding, PartitionSpec

    sharding = NamedSharding(mesh, PartitionSpec())
    return jax.tree_util.tree_map(lambda x: _put_global(x, sharding), tree)


def gather(tree: Any) -> Any:
    """Every leaf as a NumPy array holding the whole (global) value, on every process.

    Arrays whose shards all live in this process are simply copied to the host; arrays sharded
    over several processes are all-gathered. PRNG key arrays come back as their key data.

    Args:
      tree: a pytree of arrays, sharded or not.

    Returns:
      The same tree of NumPy arrays (shapes and dtypes of the global values; a key array as
      its ``uint32`` key data).
    """
    import jax
    import numpy as np

    def get(x):
        if _is_key(x):
            x = jax.random.key_data(x)
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            from jax.experimental import multihost_utils

            return np.asarray(multihost_utils.process_allgather(x, tiled=True))
        return np.asarray(x)

    return jax.tree_util.tree_map(get, tree)
