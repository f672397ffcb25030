"""jaxpapers: pure-functional JAX kernels for six research papers.

Subpackages are imported by the user (``from jaxpapers import smc``); importing the top-level
package imports nothing heavy (no jax).

Public modules: :mod:`jaxpapers.smc`, :mod:`jaxpapers.gp`, :mod:`jaxpapers.meanfield`,
:mod:`jaxpapers.bocvs`, :mod:`jaxpapers.diffusion_resampling` (the methods and shared kernels),
:mod:`jaxpapers.sharding` (meshes over one or many hosts) and :mod:`jaxpapers.experiments` (the
kit the reproduction runners are built on).
"""

from jaxpapers._src.errors import InvalidInputError

__version__ = "0.1.0"

__all__ = ["InvalidInputError", "__version__"]
