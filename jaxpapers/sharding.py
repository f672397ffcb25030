"""Meshes and batch sharding over one device, many devices, or many hosts.

Batched axes (particle groups, runs, seeds, restarts) shard over a 1-D mesh axis named ``data``
with :class:`jax.sharding.NamedSharding`; the kernels need no change. The same calls work when
the devices belong to several processes started with :func:`initialize` (one process per host,
``jax.distributed``): :func:`data_mesh` then spans every process's devices, :func:`shard_batch`
builds global arrays from a value every process holds, and :func:`gather` brings a sharded result
back to every process as NumPy.

Example::

    mesh = data_mesh()                               # all devices of all processes
    keys, log_w = shard_batch((keys, log_w), mesh)   # leading axis split over "data"
    ancestors = jax.jit(jax.vmap(resample))(keys, log_w)
    ancestors = gather(ancestors)                    # NumPy, the whole batch, on every process

On a CPU, simulate devices with ``XLA_FLAGS=--xla_force_host_platform_device_count=8`` (or
``jax.config.update("jax_num_cpu_devices", 8)``) before the first use of a device.
"""

from __future__ import annotations

import os

from jaxpapers._src.mesh import (  # noqa: F401 (DATA_AXIS: the mesh axis's name)
    DATA_AXIS,
    data_mesh,
    gather,
    replicate,
    shard_batch,
)

__all__ = ["data_mesh", "shard_batch", "replicate", "gather", "initialize", "is_primary",
           "process_count"]


def process_count() -> int:
    """The number of processes of this run.

    Returns:
      ``jax.process_count()``: 1 unless :func:`initialize` started several.
    """
    import jax

    return jax.process_count()


def is_primary() -> bool:
    """Whether this is process 0, the one that writes results, reports and plots.

    Returns:
      A Python bool (True with one process).
    """
    import jax

    return jax.process_index() == 0


def _detected_cluster() -> str | None:
    """The name of a multi-process cluster environment jax can read (SLURM, Open MPI, TPU pods,
    Kubernetes), or None. Uses jax's own detection; None if that interface is unavailable."""
    try:
        from jax._src import clusters
    except ImportError:  # pragma: no cover - private module moved
        return None
    for env in getattr(clusters.ClusterEnv, "_cluster_types", []):
        try:
            if env.opt_in_only_method or not env.is_env_present():
                continue
            if (env.get_process_count() or 1) > 1:
                return env.__name__
        except Exception:  # noqa: BLE001 - a half-configured environment is not a cluster
            continue
    return None


def _wait_for_coordinator(address: str, timeout: float) -> None:
    """Return once a TCP connection to ``address`` (``host:port``) succeeds; raise
    ``ConnectionError`` after ``timeout`` seconds. jax's own client aborts the whole process with
    a C++ stack trace when the coordinator never answers, so this is checked first."""
    import socket
    import time

    host, _, port = address.rpartition(":")
    host = host.strip("[]") or "localhost"
    try:
        port_number = int(port)
    except ValueError:
        raise ValueError(f"coordinator address must be host:port; got {address!r}") from None
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        try:
            with socket.create_connection((host, port_number), timeout=max(min(left, 2.0), 0.1)):
                return
        except OSError as err:
            if left <= 0:
                raise ConnectionError(f"the coordinator {address} was unreachable for {timeout:g} "
                                      f"s ({err.strerror or err}); start process 0 first, or "
                                      "check the address") from None
        time.sleep(min(0.25, max(left, 0.0)))


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, timeout: float = 30.0) -> bool:
    """Start ``jax.distributed`` (one process per host) before any device is used.

    With all three arguments given, they are passed to :func:`jax.distributed.initialize`. With
    none, the cluster environment is detected the way ``jax.distributed.initialize()`` does
    (SLURM, Open MPI, Cloud TPU, Kubernetes); outside a multi-process cluster nothing happens.
    On CPU hosts the cross-process collectives use gloo.

    Args:
      coordinator_address: ``host:port`` of process 0 (which runs the coordinator).
      num_processes: how many processes take part.
      process_id: this process's index, ``0 <= process_id < num_processes``.
      timeout: seconds to wait for the coordinator (and, in jax, for every process to join).

    Returns:
      True when running with more than one process.

    Raises:
      ValueError: only some of the three arguments are given, or they are inconsistent.
      ConnectionError: a process other than 0 could not reach the coordinator within
        ``timeout`` seconds.
    """
    import jax

    given = [coordinator_address is not None, num_processes is not None, process_id is not None]
    if any(given) and not all(given):
        raise ValueError("give all of coordinator_address, num_processes and process_id, or none")
    if all(given):
        if num_processes < 1 or not 0 <= process_id < num_processes:
            raise ValueError(f"need 0 <= process_id < num_processes; got process_id="
                             f"{process_id}, num_processes={num_processes}")
        if num_processes == 1:
            return False
        if not timeout > 0:
            raise ValueError(f"timeout must be positive; got {timeout}")
    elif _detected_cluster() is None:
        return False
    if "cpu" in os.environ.get("JAX_PLATFORMS", "cpu"):
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    if all(given):
        if process_id != 0:
            _wait_for_coordinator(coordinator_address, timeout)
        jax.distributed.initialize(coordinator_address=coordinator_address,
                                   num_processes=num_processes, process_id=process_id,
                                   initialization_timeout=max(1, int(timeout)))
    else:
        jax.distributed.initialize()
    return jax.process_count() > 1
