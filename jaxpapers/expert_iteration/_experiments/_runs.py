"""The run (seed) axis: ``lax.map`` within a device, split over devices with ``shard_map``.

Runs of ExIt differ in their networks. ``jax.vmap`` over networks turns every convolution into
a grouped convolution, which XLA's CPU backend runs slower than the same work one network at a
time, so runs go one after another inside one compiled program (``lax.map``). A function that
takes gradients of the network is unrolled over the runs instead (``unroll=True``): inside a
loop body XLA's CPU backend leaves the gradient convolutions in a slow layout (timings:
docs/benchmarks/expert_iteration.md). With several devices the runs are first split over the
``data`` mesh (``shard_map``), each device mapping over its own runs.
"""

from __future__ import annotations

import functools
import sys

import jax

__all__ = ["over_runs", "num_runs"]


def num_runs(tree) -> int:
    return jax.tree_util.tree_leaves(tree)[0].shape[0]


@functools.lru_cache(maxsize=8)
def _mesh(num_devices: int):
    from jaxpapers.sharding import data_mesh

    return data_mesh(num_devices)


def over_runs(fn, num_devices: int = 1, runs: int | None = None, unroll: bool = False):
    """``mapped(*args)``: ``fn`` applied to each run, the leading axis of every leaf of ``args``.

    ``unroll=True`` unrolls the loop over the runs (for steps that take gradients).

    With ``num_devices > 1`` (and ``runs`` divisible by it) the runs are split over a ``data``
    mesh of that many devices; otherwise everything runs where the inputs are.
    """

    def mapped(*args):
        if unroll:
            return jax.lax.scan(lambda c, xs: (c, fn(*xs)), None, args, unroll=True)[1]
        return jax.lax.map(lambda xs: fn(*xs), args)

    if num_devices <= 1:
        return mapped
    if runs is not None and runs % num_devices:
        print(f"jaxpapers: expert_iteration: {runs} runs do not divide over {num_devices} "
              "devices; running them unsharded", file=sys.stderr)
        return mapped
    from jax.sharding import PartitionSpec

    return jax.shard_map(mapped, mesh=_mesh(num_devices), in_specs=PartitionSpec("data"),
                         out_specs=PartitionSpec("data"), check_vma=False)
