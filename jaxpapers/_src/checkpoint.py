"""Checkpoints that cannot mix runs: orbax, in folders keyed by method, seed and config hash.

A training's checkpoints live in ``ROOT/<method>/seed<seed>/<name>-<hash>/`` where ``hash`` is
the first 12 hex digits of the SHA-256 of the training's configuration (canonical JSON), written
beside the steps as ``config.json``. A :class:`Checkpointer` restores only when asked to resume
(``resume=True``, the CLI's ``--resume``); without it, an existing folder of the same key is
cleared and the training starts afresh. Resuming when the same training name was checkpointed
under another configuration is refused with both configurations in the message, so a run with
another seed or config can never silently pick up someone else's state.

Saving and restoring use orbax-checkpoint's ``CheckpointManager`` (synchronous, keeps the newest
``keep`` steps); with several processes (``jax.distributed``) every process takes part, as orbax
requires, and a training replicated in every process is written by process 0 only.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from typing import Any

from jaxpapers._src.jsonify import jsonify

__all__ = ["Checkpointer", "config_hash", "canonical_config", "folder_name"]

_CONFIG_FILE = "config.json"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def canonical_config(config: Any) -> Any:
    """A JSON-ready form of ``config`` (dataclasses and NamedTuples become dicts)."""
    return jsonify(config)


def config_hash(config: Any) -> str:
    """First 12 hex digits of the SHA-256 of ``config`` as canonical JSON.

    Args:
      config: dataclasses, NamedTuples, dicts, sequences and scalars (as :class:`Checkpointer`
        takes them); dict order does not matter.

    Returns:
      A 12-character hex string.

    Raises:
      TypeError: a value with no JSON form.

    Example:
      >>> from jaxpapers.experiments import config_hash
      >>> config_hash({"a": 1, "b": 2}) == config_hash({"b": 2, "a": 1})
      True
    """
    text = json.dumps(canonical_config(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def folder_name(name: str) -> str:
    """The folder-safe form of a training name: ``name`` itself when it holds only
    ``[A-Za-z0-9._-]`` and does not start with a dot; otherwise every other character becomes
    ``_`` and 8 hex digits of the SHA-256 of ``name`` follow, so that distinct names stay distinct.

    orbax's storage layer cannot open a folder whose path holds brackets, and a ``/`` would nest
    folders; this is the one place where a name becomes a path.

    >>> folder_name("denoiser-rep0")
    'denoiser-rep0'
    >>> folder_name("encoder[0]")
    'encoder_0__aa489fcb'
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"a training name must be a non-empty string; got {name!r}")
    safe = _UNSAFE.sub("_", name)
    if safe == name and not name.startswith("."):
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{safe.lstrip('.') or '_'}_{digest}"


def _process_index() -> int:
    import jax

    return jax.process_index()


def _barrier(name: str) -> None:
    """Wait for every process (so none opens a folder process 0 is still clearing)."""
    import jax

    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def _global_mesh():
    from jaxpapers._src.mesh import data_mesh

    return data_mesh()


def _to_global(tree: Any) -> Any:
    """With several processes, host-local arrays (the same value in every process) become
    global replicated arrays, which orbax writes once; one process: unchanged."""
    import jax

    if jax.process_count() == 1:
        return tree
    from jaxpapers._src.mesh import replicate

    return replicate(tree, _global_mesh())


def _to_local(tree: Any) -> Any:
    """The inverse of :func:`_to_global`: this process's copy of each replicated array."""
    import jax

    if jax.process_count() == 1:
        return tree
    return jax.tree_util.tree_map(lambda x: x.addressable_data(0), tree)


class Checkpointer:
    """Save and restore one training's state (any pytree of arrays) by step.

    Args:
      root: the run's checkpoint folder (``runs/<method>/checkpoints``); made absolute here
        (orbax refuses relative paths).
      method: method name (part of the key).
      seed: the run's seed (part of the key).
      name: which training of the run (``"denoiser-rep0"``, ``"discriminator-rep1"``); any
        string: characters outside ``[A-Za-z0-9._-]`` are replaced in the folder's name
        (:func:`folder_name`).
      config: everything that determines the trained state besides the seed (model and training
        settings, data sizes); dataclasses, dicts, tuples and scalars.
      resume: restore the newest checkpoint if one exists (the CLI's ``--resume``).
      keep: how many of the newest steps to keep.

    Raises:
      ValueError: ``resume`` and this training name was checkpointed for the same method and seed
        under a different configuration (the message names both).
    """

    def __init__(self, root: str, method: str, seed: int, name: str, config: Any,
                 resume: bool = False, keep: int = 2):
        self.config = canonical_config(config)
        self.hash = config_hash(self.config)
        self.name = name
        self.folder = folder_name(name)
        self.resume = resume
        self.keep = keep
        root = os.path.abspath(os.path.expanduser(os.fspath(root)))
        parent = os.path.join(root, method, f"seed{seed}")
        self.directory = os.path.join(parent, f"{self.folder}-{self.hash}")
        if resume:
            self._refuse_mismatch(parent)
        elif os.path.isdir(self.directory) and _process_index() == 0:
            shutil.rmtree(self.directory)  # not resuming: start afresh, never restore
        _barrier(f"checkpointer {self.directory}")
        self._manager = None

    def _refuse_mismatch(self, parent: str) -> None:
        if os.path.isdir(self.directory) or not os.path.isdir(parent):
            return
        for entry in sorted(os.listdir(parent)):
            stem, _, other_hash = entry.rpartition("-")
            if stem != self.folder or other_hash == self.hash:
                continue
            path = os.path.join(parent, entry, _CONFIG_FILE)
            try:
                with open(path) as f:
                    other = json.load(f)
            except OSError:
                other = "(config.json missing)"
            raise ValueError(
                f"--resume: checkpoints of {self.name!r} in {parent} were written with config "
                f"{json.dumps(other, sort_keys=True)} (hash {other_hash}); this run's config is "
                f"{json.dumps(self.config, sort_keys=True)} (hash {self.hash}). Resume with the "
                "same settings, choose another --out, or run without --resume to start afresh.")

    def _open(self):
        if self._manager is None:
            import orbax.checkpoint as ocp

            os.makedirs(self.directory, exist_ok=True)
            if _process_index() == 0:
                with open(os.path.join(self.directory, _CONFIG_FILE), "w") as f:
                    json.dump(self.config, f, indent=1, sort_keys=True)
            options = ocp.CheckpointManagerOptions(
                max_to_keep=self.keep, create=True, enable_async_checkpointing=False,
                multiprocessing_options=ocp.options.MultiprocessingOptions(primary_host=0))
            self._manager = ocp.CheckpointManager(os.path.join(self.directory, "steps"),
                                                  options=options)
        return self._manager

    def latest_step(self) -> int | None:
        """The newest saved step when resuming, else None (never restores without ``resume``)."""
        if not self.resume or not os.path.isdir(os.path.join(self.directory, "steps")):
            return None
        return self._open().latest_step()

    def restore(self, like: Any) -> tuple[int, Any] | None:
        """``(step, tree)`` of the newest checkpoint, shaped like ``like``; None when not
        resuming or nothing was saved."""
        step = self.latest_step()
        if step is None:
            return None
        import jax
        import orbax.checkpoint as ocp

        abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, _to_global(like))
        tree = self._open().restore(step, args=ocp.args.StandardRestore(abstract))
        return int(step), _to_local(tree)

    def save(self, step: int, tree: Any) -> None:
        """Save ``tree`` (a pytree of arrays) as step ``step``, keeping the newest ``keep``.

        Every process must call it (orbax), with the same ``step``.
        """
        import orbax.checkpoint as ocp

        self._open().save(int(step), args=ocp.args.StandardSave(_to_global(tree)), force=True)

    def close(self) -> None:
        """Release orbax's manager (a later call opens it again)."""
        if self._manager is not None:
            self._manager.close()
            self._manager = None
