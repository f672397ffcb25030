"""jaxpapers: pure-functional JAX kernels for seven research papers.

Subpackages are imported by the user (``from jaxpapers import smc``); importing the top-level
package imports nothing heavy (no jax).

The methods: :mod:`jaxpapers.smc`, :mod:`jaxpapers.meanfield`, :mod:`jaxpapers.bocvs` (with the
exact GP kernels of :mod:`jaxpapers.gp`), :mod:`jaxpapers.diffusion_resampling`,
:mod:`jaxpapers.xit`, :mod:`jaxpapers.expert_iteration` and :mod:`jaxpapers.moving_targets`.
Shared: :mod:`jaxpapers.sharding` (meshes over one or many hosts) and
:mod:`jaxpapers.experiments` (the kit the reproduction runners are built on).
"""

from jaxpapers._src.errors import InvalidInputError

__version__ = "0.1.0"

__all__ = ["InvalidInputError", "__version__"]
