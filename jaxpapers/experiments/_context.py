"""What a runner gets: where to write, which seed, devices and processes, timing, checkpoints."""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from jaxpapers.experiments._timing import Timer

__all__ = ["RunContext"]

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class RunContext:
    """The settings of one reproduction run and the services a runner uses.

    Attributes:
      out_dir: folder of this method's results (``--out``/``<method>``); a relative path or one
        with ``~`` is made absolute on construction, against the working folder of that moment.
      scale: the scale name (its config is passed to the runner separately).
      seed: base seed; every random choice of the run derives from it.
      devices: devices of the ``data`` mesh (None: all devices, of all processes).
      resume: restore trainings from their checkpoints in ``out_dir``.
      show_progress: progress bars (shown by process 0 only).
      method: the method's name (set by :func:`reproduce`).
      timer: compile and run seconds of this run's jitted programs.
    """

    out_dir: str
    scale: str = "quick"
    seed: int = 0
    devices: int | None = None
    resume: bool = False
    show_progress: bool = True
    method: str = ""
    timer: Timer = dataclasses.field(default_factory=Timer, compare=False, repr=False)

    def __post_init__(self):
        if not isinstance(self.out_dir, str | os.PathLike) or not os.fspath(self.out_dir):
            raise ValueError(f"out_dir must be a non-empty path; got {self.out_dir!r}")
        object.__setattr__(self, "out_dir",
                           os.path.abspath(os.path.expanduser(os.fspath(self.out_dir))))
        if not isinstance(self.scale, str) or not self.scale:
            raise ValueError(f"scale must be a non-empty string; got {self.scale!r}")
        if (isinstance(self.seed, bool) or not isinstance(self.seed, int)
                or not 0 <= self.seed < 2**32):
            raise ValueError(f"seed must be an integer in [0, 2**32) (a 32-bit key); got "
                             f"{self.seed!r}")
        if self.devices is not None and (isinstance(self.devices, bool) or self.devices < 1):
            raise ValueError(f"devices must be >= 1; got {self.devices}")

    # -- files ---------------------------------------------------------------------------------
    def path(self, name: str) -> str:
        """``name`` inside this run's folder (``out_dir``)."""
        return os.path.join(self.out_dir, name)

    @property
    def is_primary(self) -> bool:
        """True in process 0, the one that writes results, reports and plots."""
        from jaxpapers.sharding import is_primary

        return is_primary()

    # -- devices ---------------------------------------------------------------------------------
    def mesh(self):
        """A 1-D ``data`` mesh over ``devices`` devices (all devices of all processes if None)."""
        from jaxpapers.sharding import data_mesh

        return data_mesh(self.devices)

    @property
    def num_devices(self) -> int:
        """The devices of the mesh: ``devices``, or every device of every process."""
        import jax

        return self.devices or jax.device_count()

    def shard(self, tree: Any) -> Any:
        """Split the leading (runs, seeds, groups) axis of every leaf over the mesh.

        With one device the tree is returned untouched. When the leading axis does not divide
        evenly over the devices the tree is also returned untouched and a warning says so (the
        work then runs whole in every process).
        """
        import jax

        from jaxpapers.sharding import shard_batch

        if self.num_devices == 1:
            return tree
        mesh = self.mesh()
        sizes = {leaf.shape[0] for leaf in jax.tree_util.tree_leaves(tree)}
        if any(size % mesh.devices.size for size in sizes):
            self.warn(f"leading axis {sorted(sizes)} does not divide over {mesh.devices.size} "
                      "devices; running unsharded")
            return tree
        return shard_batch(tree, mesh)

    def replicate(self, tree: Any) -> Any:
        """Every leaf whole on every device of the mesh (parameters used beside sharded data)."""
        from jaxpapers.sharding import replicate

        if self.num_devices == 1:
            return tree
        return replicate(tree, self.mesh())

    def gather(self, tree: Any) -> Any:
        """Every leaf as a NumPy array holding the whole value (all-gathered across processes)."""
        from jaxpapers.sharding import gather

        return gather(tree)

    # -- services ------------------------------------------------------------------------------
    def progress(self, iterable: Iterable[T], *, desc: str = "", total: int | None = None
                 ) -> Iterator[T]:
        """A progress bar over a host loop (process 0, and only with ``show_progress``)."""
        from jaxpapers._src.progress import progress

        if total is None and hasattr(iterable, "__len__"):
            total = len(iterable)
        return progress(iterable, total=total, desc=desc,
                        enabled=self.show_progress and self.is_primary)

    def checkpointer(self, name: str, config: Any):
        """A :class:`~jaxpapers.experiments.Checkpointer` for one training of this run.

        Its folder is keyed by method, seed, ``name`` and a hash of ``config``; it restores only
        when the run resumes (``--resume``) and refuses a resume under another config.
        """
        from jaxpapers._src.checkpoint import Checkpointer

        return Checkpointer(self.path("checkpoints"), self.method or "method", self.seed, name,
                            config, resume=self.resume)

    def warn(self, message: str) -> None:
        """Print ``jaxpapers: <method>: message`` to stderr (process 0 only)."""
        if self.is_primary:
            print(f"jaxpapers: {self.method or 'run'}: {message}", file=sys.stderr)
