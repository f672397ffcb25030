"""Static configuration and traced coefficients of the mean-field transformer dynamics."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

from jaxpapers._src import checks
from jaxpapers.meanfield._kernel import ACTIVATIONS

__all__ = ["NOISES", "SCHEMES", "Coefficients", "ModelConfig"]

NOISES = ("mlp", "gp", "features", "none")
SCHEMES = ("ln", "ito", "heun")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Static (compile-time) settings of one simulation; a new value means a new compile.

    A frozen, hashable dataclass, validated on construction.

    Attributes:
      num_layers: depth ``L`` (number of steps), ``>= 1``.
      horizon: time horizon ``T > 0``; the step is ``dt = T / L``.
      activation: MLP activation, one of ``relu, silu, tanh, sigmoid, linear``.
      width: MLP width ``m`` for ``noise="mlp"``; number of fixed features ``M`` for
        ``noise="features"``; unused otherwise.
      noise: ``"mlp"`` (the paper's model: a fresh random MLP per layer, i.e. random features
        resampled every step), ``"gp"`` (the exact infinite-width Gaussian field at the ``N``
        current points, via a symmetric eigh square root of ``kappa(X X^T)``), ``"features"``
        (``width`` fixed random features with Brownian weights: the field is a function, so
        runs with different ``L`` can share one Brownian path) or ``"none"`` (attention only).
      scheme: ``"ln"`` (the model / Lie–Trotter LN scheme, exactly on the sphere), ``"ito"``
        (Itô Euler–Maruyama with the radial correction) or ``"heun"`` (Stratonovich Heun, no
        radial drift; not with ``noise="gp"``). Caveat for ``"heun"`` with
        ``noise="features"``: a Stratonovich scheme converges to the Itô SDE whose drift is the
        Stratonovich correction ``(1/2) sum_k D(P f_k) P f_k`` of the *finite* field of
        ``width = M`` features. Its mean is the infinite-width radial term that ``"ln"`` and
        ``"ito"`` use, but for finite ``M`` it also has a random tangential part of order
        ``M^{-1/2}`` (the features' fluctuation), so Heun's limit differs from the paper's SDE
        by ``O(M^{-1/2})`` in the drift; ``"ln"`` and ``"ito"`` do not have this bias. Use
        ``M`` large (or ``"ln"``/``"ito"``) when that matters.
      renormalize: project ``ito``/``heun`` iterates back onto the sphere after each step.
      save_every: ``0`` saves nothing per layer; ``k > 0`` saves diagnostics (and states if
        ``save_states``) at layers ``0, k, 2k, ..., L`` (``k`` must divide ``L``).
      save_states: also save the token positions at those layers (``[S, N, d]`` memory).
      block_size: ``None`` for dense ``O(N^2)`` attention/energy; an int for query/key blocks of
        that size (memory ``O(N * block_size)``).
      brownian_substeps: ``noise="features"`` only: each step sums this many finer Brownian
        increments, so ``(L, r)`` and ``(L * r, 1)`` runs see the same Brownian path.
      kernel_points: size of the ``kappa`` interpolation table (``noise="gp"``).

    Raises:
      ValueError: a field out of range, naming the class, the field and the value (a
        non-positive size, a non-finite or non-positive ``horizon``, an unknown activation,
        noise or scheme, ``scheme="heun"`` with ``noise="gp"``, ``save_every`` not dividing
        ``num_layers``, ``save_states`` without ``save_every``, ``brownian_substeps > 1``
        without ``noise="features"``).

    >>> config = ModelConfig(num_layers=50, horizon=5.0, save_every=10)
    >>> config.dt, config.num_saved
    (0.1, 6)
    >>> ModelConfig(num_layers=0)
    Traceback (most recent call last):
    ...
    ValueError: ModelConfig.num_layers must be a positive int; got 0
    """

    num_layers: int
    horizon: float = 5.0
    activation: str = "relu"
    width: int = 256
    noise: str = "mlp"
    scheme: str = "ln"
    renormalize: bool = False
    save_every: int = 0
    save_states: bool = False
    block_size: int | None = None
    brownian_substeps: int = 1
    kernel_points: int = 2001

    def __post_init__(self):
        def bad(field: str, value: Any, allowed: str):
            raise ValueError(f"ModelConfig.{field} must be {allowed}; got {value!r}")

        owner = type(self).__name__
        for field in ("num_layers", "width", "brownian_substeps", "kernel_points"):
            checks.require_positive_int_field(owner, field, getattr(self, field))
        if isinstance(self.horizon, bool) or not isinstance(self.horizon, (int, float)) or not (
                math.isfinite(self.horizon) and self.horizon > 0):
            bad("horizon", self.horizon, "a finite number > 0")
        if self.activation not in ACTIVATIONS:
            bad("activation", self.activation, f"one of {sorted(ACTIVATIONS)}")
        if self.noise not in NOISES:
            bad("noise", self.noise, f"one of {NOISES}")
        if self.scheme not in SCHEMES:
            bad("scheme", self.scheme, f"one of {SCHEMES}")
        if self.scheme == "heun" and self.noise == "gp":
            bad("scheme", self.scheme, "'ln' or 'ito' with noise='gp' (Heun needs the field as a "
                "function; use noise='mlp' or 'features')")
        if isinstance(self.save_every, bool) or not isinstance(self.save_every, int) or (
                self.save_every < 0 or (self.save_every and self.num_layers % self.save_every)):
            bad("save_every", self.save_every, f"0 or a positive divisor of num_layers="
                f"{self.num_layers}")
        if self.save_states and not self.save_every:
            bad("save_states", self.save_states, "False when save_every == 0")
        if self.block_size is not None:
            checks.require_positive_int_field(owner, "block_size", self.block_size)
        if self.brownian_substeps > 1 and self.noise != "features":
            bad("brownian_substeps", self.brownian_substeps, "1 unless noise='features'")

    @property
    def dt(self) -> float:
        """The step ``T / L`` (a Python float)."""
        return float(self.horizon) / self.num_layers

    @property
    def num_saved(self) -> int:
        """The number ``S`` of saved layers (``L / save_every + 1``; 0 when nothing is saved)."""
        return self.num_layers // self.save_every + 1 if self.save_every else 0

    def replace(self, **changes) -> ModelConfig:
        """A copy with ``changes`` applied (validated again).

        Args:
          **changes: new values of fields, by name.

        Returns:
          A new :class:`ModelConfig`.

        Raises:
          ValueError: as the constructor; ``TypeError`` for an unknown field.
        """
        return dataclasses.replace(self, **changes)


class Coefficients(NamedTuple):
    """Traced coefficients of the dynamics (changing them does not recompile; vmap for a grid).

    Attention is ``Attn(x) = attn_scale * sum_j softmax_j(beta x^T QK x_j) V x_j`` with
    ``QK = Q^T K`` and ``V`` defaulting to the identity (spec §2.1; the paper's experiments use
    ``QK = I``, ``beta = 1`` and ``attn_scale`` in ``{+1, 0, -1}``, read as ``V = +-I``
    [inferred]). A ``NamedTuple`` (a pytree); the simulators check it (a wrong shape raises
    ``ValueError``, a bad value raises eagerly and gives NaN under ``jit``).

    Attributes:
      beta: inverse temperature ``>= 0``, a real scalar.
      attn_scale: attention multiplier (``+1`` attractive, ``0`` none, ``-1`` repulsive), finite.
      sigma_u: standard deviation ``>= 0`` of the MLP's hidden bias.
      sigma_w: standard deviation ``>= 0`` of the MLP's output bias.
      qk: ``(d, d)`` float matrix ``Q^T K``, or None (the identity).
      value: ``(d, d)`` float matrix ``V``, or None (the identity).

    >>> Coefficients(beta=1.0, attn_scale=-1.0).attn_scale
    -1.0
    """

    beta: Any = 1.0
    attn_scale: Any = 1.0
    sigma_u: Any = 0.0
    sigma_w: Any = 0.0
    qk: Any = None
    value: Any = None
