"""jaxpapers: pure-functional JAX kernels for six research papers.

Subpackages are imported lazily by the user (``from jaxpapers import smc``); importing the top
level package imports nothing heavy.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
