"""The method table: name -> title, paper and runner module.

A runner is the module ``jaxpapers.<method>._experiments._reproduce``, which defines::

    SCALES: dict[str, ScaleConfig]            # frozen dataclasses, one per scale name
    def run(ctx: RunContext, config) -> RunResult

Importing a runner must not touch a device (no arrays at module level), so the CLI can read the
scales before it configures devices or starts ``jax.distributed``.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
from types import ModuleType

__all__ = ["METHODS", "Method", "implemented", "runner", "scales"]


@dataclasses.dataclass(frozen=True)
class Method:
    """One method of the table.

    Attributes:
      name: the CLI's name (``smc``, ``meanfield``, ...).
      title: the report's title.
      paper: the paper, in words.
      runner: the module defining ``SCALES`` and ``run(ctx, config)``.
    """

    name: str
    title: str
    paper: str
    runner: str  # module defining SCALES and run(ctx, config)


METHODS: dict[str, Method] = {
    m.name: m
    for m in [
        Method("smc", "SMC resampling schemes (variance ordering on a linear-Gaussian filter)",
               "Douc, Cappé & Moulines 2005; used by Liu et al., CVPR 2024",
               "jaxpapers.smc._experiments._reproduce"),
        Method("meanfield", "Mean-field transformer SDE and synchronization by noise",
               "arXiv 2604.26898", "jaxpapers.meanfield._experiments._reproduce"),
        Method("bocvs", "Bayesian optimisation with cost-varying variable subsets",
               "Tay et al., NeurIPS 2023", "jaxpapers.bocvs._experiments._reproduce"),
        Method("diffusion_resampling", "Particle filtering during diffusion sampling",
               "Liu et al., CVPR 2024",
               "jaxpapers.diffusion_resampling._experiments._reproduce"),
        Method("xit", "XIT: multi-dataset contrastive time-series pretraining", "arXiv 2402.15404",
               "jaxpapers.xit._experiments._reproduce"),
        Method("expert_iteration", "Expert Iteration on Hex", "Anthony et al., NeurIPS 2017",
               "jaxpapers.expert_iteration._experiments._reproduce"),
        Method("moving_targets", "Moving Targets training of recurrent networks", "Rohwer, NIPS 2",
               "jaxpapers.moving_targets._experiments._reproduce"),
    ]
}


def _check_name(name: str) -> Method:
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose from: {', '.join(METHODS)}")
    return METHODS[name]


def implemented(name: str) -> bool:
    """Whether ``name``'s runner module exists (imports the method's package to find out).

    Args:
      name: a method of :data:`METHODS`.

    Returns:
      A Python bool.

    Raises:
      ValueError: ``name`` is not in :data:`METHODS`.
    """
    return importlib.util.find_spec(_check_name(name).runner) is not None


def runner(name: str) -> ModuleType:
    """The runner module of a method (imported: it touches no device).

    Args:
      name: a method of :data:`METHODS`.

    Returns:
      The module defining ``SCALES`` and ``run(ctx, config)``.

    Raises:
      ValueError: an unknown method, or one whose runner module does not exist.
    """
    method = _check_name(name)
    if not implemented(name):
        raise ValueError(f"method {name!r} is not implemented yet (see `jaxpapers list`)")
    return importlib.import_module(method.runner)


def scales(name: str) -> dict:
    """The scales ``name``'s runner declares.

    Args:
      name: a method of :data:`METHODS`.

    Returns:
      ``{scale name: frozen config dataclass}`` (a copy of the runner's ``SCALES``).

    Raises:
      ValueError: as :func:`runner`.

    Example:
      >>> from jaxpapers.experiments import scales
      >>> sorted(scales("smc"))
      ['paper', 'quick', 'smoke']
    """
    return dict(runner(name).SCALES)
