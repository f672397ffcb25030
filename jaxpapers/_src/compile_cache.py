"""A persistent XLA compilation cache for the entry points (CLI, benchmarks, notebooks).

Programs compiled once are loaded from disk by later processes instead of being compiled again.
The folder is ``$JAXPAPERS_COMPILE_CACHE`` when set (``off``/``0`` disables the cache), else
``$XDG_CACHE_HOME/jaxpapers/xla`` (``~/.cache/jaxpapers/xla``). An explicit jax setting
(``JAX_COMPILATION_CACHE_DIR`` or ``jax.config``) is left alone. Kernels never call this: only
entry points do.
"""

from __future__ import annotations

import os

__all__ = ["ENV", "enable_compile_cache", "default_cache_dir"]

ENV = "JAXPAPERS_COMPILE_CACHE"
_OFF = ("0", "off", "false", "no", "none")


def default_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "jaxpapers", "xla")


def enable_compile_cache(path: str | None = None, min_compile_seconds: float = 0.2) -> str | None:
    """Turn the persistent compilation cache on; return its folder (None when disabled).

    Args:
      path: the cache folder; None reads ``$JAXPAPERS_COMPILE_CACHE`` and falls back to
        :func:`default_cache_dir`.
      min_compile_seconds: programs that compile faster than this are not cached.

    Returns:
      The cache folder in use (an already configured ``jax_compilation_cache_dir`` wins), or
      None when ``$JAXPAPERS_COMPILE_CACHE`` is ``off`` or the folder cannot be made.
    """
    import jax

    configured = jax.config.jax_compilation_cache_dir
    if configured:
        return configured
    if path is None:
        setting = os.environ.get(ENV, "").strip()
        if setting.lower() in _OFF:
            return None
        path = setting or default_cache_dir()
    try:
        os.makedirs(path, exist_ok=True)
    except OSError:
        return None  # an unwritable cache folder must not stop a run
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_seconds))
    return path
