"""Frozen, validated configurations: model, augmentations, the objective, pretraining,
fine-tuning.

Values the paper's body would fix but that could not be read (spec Sec. 0) are config values
with the spec's inferred defaults.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from jaxpapers._src.checks import require, require_positive_int_field
from jaxpapers.xit._model import ContextTransformer, Encoder, TemporalContrast, encoder_length
from jaxpapers.xit._sampler import SAMPLING_MODES

__all__ = ["ModelConfig", "AugmentConfig", "Objective", "OBJECTIVES", "PretrainConfig",
           "FinetuneConfig", "AUGMENT_DRAWS", "WEAK_AUGMENT", "augment_table"]

AUGMENT_DRAWS = ("per_step", "once")


def _positive(owner, name, allow_zero=False):
    value = getattr(owner, name)
    number = not isinstance(value, bool) and isinstance(value, (int, float))
    bound = ">= 0" if allow_zero else "> 0"
    require(number and (value >= 0 if allow_zero else value > 0),
            f"{type(owner).__name__}.{name} must be a number {bound}; got {value!r}")


def _fraction(owner, name):
    value = getattr(owner, name)
    require(not isinstance(value, bool) and isinstance(value, (int, float))
            and 0.0 <= value < 1.0,
            f"{type(owner).__name__}.{name} must lie in [0, 1); got {value!r}")


def _choice(owner, name, allowed):
    value = getattr(owner, name)
    require(value in allowed,
            f"{type(owner).__name__}.{name} must be one of {tuple(allowed)}; got {value!r}")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """TS-TCC's model at one common input length; builds the Flax modules.

    Defaults: ``k1 = 8, s1 = 1`` (HAR), TC hidden width ``h = 100``, 4 layers, 4 heads, MLP 64,
    ``K = 4`` future steps (the reduced run; HAR uses 6 at L = 128).

    Attributes:
      length: input length ``L`` of every series.
      k1: first kernel width of the encoder.
      s1: first stride of the encoder.
      kernel: kernel width of the encoder's second and third blocks.
      channels: the encoder's three widths (the last is the latent width ``D``).
      dropout: the encoder's dropout rate, in ``[0, 1)``.
      tc_width: the context transformer's width ``h`` (divisible by ``tc_heads``).
      tc_depth: its number of layers.
      tc_heads: its attention heads.
      tc_mlp: its MLP width.
      tc_dropout: its dropout rate, in ``[0, 1)``.
      timesteps: ``K``, the future steps predicted; below ``latent_length``.
      head_scale: attention scaled by ``(h / heads)^-1/2`` (False: ``h^-1/2``, the reference's
        quirk).

    Raises:
      ValueError: a size that is not a positive int, ``channels`` not three positive ints,
        ``tc_width`` not divisible by ``tc_heads``, a dropout rate outside ``[0, 1)``, or
        ``timesteps >= latent_length``.

    Example:
      >>> from jaxpapers.xit import ModelConfig
      >>> cfg = ModelConfig(length=128)
      >>> cfg.latent_length, cfg.latent
      (18, 128)
    """

    length: int = 64
    k1: int = 8
    s1: int = 1
    kernel: int = 8
    channels: tuple = (32, 64, 128)
    dropout: float = 0.35
    tc_width: int = 100
    tc_depth: int = 4
    tc_heads: int = 4
    tc_mlp: int = 64
    tc_dropout: float = 0.1
    timesteps: int = 4
    head_scale: bool = False  # False: attention scaled by h^-1/2 (the reference's quirk)

    def __post_init__(self):
        for name in ("length", "k1", "s1", "kernel", "tc_width", "tc_depth", "tc_heads",
                     "tc_mlp", "timesteps"):
            require_positive_int_field(type(self).__name__, name, getattr(self, name))
        require(isinstance(self.channels, tuple) and len(self.channels) == 3
                and all(isinstance(c, int) and not isinstance(c, bool) and c > 0
                        for c in self.channels),
                f"ModelConfig.channels must be a tuple of three positive ints; got "
                f"{self.channels!r}")
        require(self.tc_width % self.tc_heads == 0,
                f"ModelConfig.tc_width ({self.tc_width}) must be divisible by tc_heads "
                f"({self.tc_heads})")
        for name in ("dropout", "tc_dropout"):
            _fraction(self, name)
        require(isinstance(self.head_scale, bool),
                f"ModelConfig.head_scale must be a bool; got {self.head_scale!r}")
        require(self.timesteps < self.latent_length,
                f"ModelConfig.timesteps ({self.timesteps}) must be below the encoder output "
                f"length T' = {self.latent_length} (length {self.length}, k1 {self.k1}, "
                f"s1 {self.s1})")

    @property
    def latent_length(self) -> int:
        """The encoder's output length ``T'`` (:func:`~jaxpapers.xit.models.encoder_length`)."""
        return encoder_length(self.length, self.k1, self.s1, self.kernel)

    @property
    def latent(self) -> int:
        """The latent width ``D = channels[-1]``."""
        return self.channels[-1]

    def encoder(self) -> Encoder:
        """The :class:`~jaxpapers.xit.models.Encoder` of this configuration."""
        return Encoder(self.k1, self.s1, self.kernel, tuple(self.channels), self.dropout)

    def temporal_contrast(self) -> TemporalContrast:
        """The :class:`~jaxpapers.xit.models.TemporalContrast` module of this configuration."""
        return TemporalContrast(self.timesteps, self.latent, self.tc_width, self.tc_depth,
                                self.tc_heads, self.tc_mlp, self.tc_dropout, self.head_scale)

    def context_transformer(self) -> ContextTransformer:
        """The :class:`~jaxpapers.xit.models.ContextTransformer` of this configuration."""
        return ContextTransformer(self.tc_width, self.tc_depth, self.tc_heads, self.tc_mlp,
                                  self.tc_dropout, self.head_scale)


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """TS-TCC's augmentation strengths; the defaults are HAR's, inferred for z-normalised data.

    Attributes:
      scale_sigma: standard deviation of the weak view's scale (>= 0).
      jitter_sigma: standard deviation of the strong view's noise (>= 0).
      max_segments: bound on the strong view's segments (int >= 2).

    Raises:
      ValueError: a negative or non-numeric sigma, or ``max_segments`` not an int >= 2.
    """

    scale_sigma: float = 1.1
    jitter_sigma: float = 0.8
    max_segments: int = 8

    def __post_init__(self):
        _positive(self, "scale_sigma", allow_zero=True)
        _positive(self, "jitter_sigma", allow_zero=True)
        require(not isinstance(self.max_segments, bool) and isinstance(self.max_segments, int)
                and self.max_segments >= 2,
                f"AugmentConfig.max_segments must be an int >= 2; got {self.max_segments!r}")


#: TS-TCC's Epilepsy/EMG strengths (spec Sec. 4.1): weak views for short, smooth series
WEAK_AUGMENT = AugmentConfig(scale_sigma=0.001, jitter_sigma=0.001, max_segments=5)


@dataclasses.dataclass(frozen=True)
class Objective:
    """The weights of the pretraining loss ``L = tc L_TC + cc L_CC + sicc L_SICC``.

    The weights enter the step as a traced array (:meth:`as_tuple`), so pretraining runs with
    different objectives share one compiled step; :data:`OBJECTIVES` has the presets of the
    reproduction.

    Attributes:
      tc: weight of temporal contrasting (>= 0).
      cc: weight of contextual contrasting, TS-TCC's NT-Xent (>= 0).
      sicc: weight of SICC (>= 0).
      mixup: XD-MixUp on; False sets ``lam = 1`` (the mixed series is then a second weak view
        of the original).

    Raises:
      ValueError: a negative or non-numeric weight, or ``mixup`` not a bool.
    """

    tc: float = 1.0
    cc: float = 0.0
    sicc: float = 0.7
    mixup: bool = True

    def __post_init__(self):
        for name in ("tc", "cc", "sicc"):
            _positive(self, name, allow_zero=True)
        if not isinstance(self.mixup, bool):
            raise ValueError(f"Objective.mixup must be a bool; got {self.mixup!r}")

    def as_tuple(self) -> tuple[float, float, float, float]:
        """``(tc, cc, sicc, mixup)`` as floats: the ``weights`` row of the pretraining step."""
        return (float(self.tc), float(self.cc), float(self.sicc), float(self.mixup))


#: the objectives of the reproduction: XIT (XD-MixUp + TC + 0.7 SICC), TS-TCC (TC + 0.7 CC),
#: and the two ablations (without XD-MixUp: lam = 1; without SICC: TC alone)
OBJECTIVES = {
    "xit": Objective(tc=1.0, cc=0.0, sicc=0.7, mixup=True),
    "ts_tcc": Objective(tc=1.0, cc=0.7, sicc=0.0, mixup=False),
    "xit_no_mixup": Objective(tc=1.0, cc=0.0, sicc=0.7, mixup=False),
    "xit_no_sicc": Objective(tc=1.0, cc=0.0, sicc=0.0, mixup=True),
}


@dataclasses.dataclass(frozen=True)
class PretrainConfig:
    """Pretraining: optimiser, batch, steps, sampling of the pool, and the inferred XIT constants.

    The optimiser is TS-TCC's Adam (3e-4, betas (0.9, 0.99), coupled L2 3e-4).

    Attributes:
      batch_size: ``B`` (int >= 2).
      steps: pretraining steps (positive int).
      learning_rate: Adam's step size (> 0).
      b1: Adam's first-moment decay, in ``[0, 1)``.
      b2: Adam's second-moment decay, in ``[0, 1)``.
      weight_decay: coupled L2 weight decay (>= 0).
      tau: temperature of NT-Xent and SICC (TS-TCC's 0.2; inferred for SICC).
      alpha: Beta(alpha, alpha) of XD-MixUp (inferred 0.2).
      per_sample_lambda: one lambda per series (False: one per batch, as TimeMCL).
      cross_dataset: XD partners from other datasets (False: a random permutation).
      extra_negatives: SICC also contrasts against the other mixed contexts.
      sampling, temperature: dataset frequencies of the pool sampler.
      checkpoint_every: steps per jitted chunk and between checkpoints.
      augment: augmentation strengths of every pool set without an override.
      augment_overrides: ``((name, AugmentConfig), ...)``: strengths of named pool sets (names
        not in the pool are ignored; see :func:`augment_table`).
      augment_draw: ``"per_step"`` (fresh weak and strong views at every step) or ``"once"``
        (TS-TCC's way: each pool series keeps one weak and one strong view for the whole run,
        drawn from the run's key and the series' row; the mixed view is always fresh).
      context_buckets: a single run (``R = 1``) runs the context transformer on its prefix
        rounded up to one of this many static lengths (0: every prefix on the longest one;
        the contexts are the same, only the work differs).

    Raises:
      ValueError: a field out of range (the message names it, its value and what is
        allowed).

    Example:
      >>> from jaxpapers.xit import PretrainConfig
      >>> PretrainConfig(batch_size=1)
      Traceback (most recent call last):
      ...
      ValueError: PretrainConfig.batch_size must be >= 2 (contrastive); got 1
    """

    batch_size: int = 64
    steps: int = 400
    learning_rate: float = 3e-4
    b1: float = 0.9
    b2: float = 0.99
    weight_decay: float = 3e-4
    tau: float = 0.2
    alpha: float = 0.2
    per_sample_lambda: bool = True
    cross_dataset: bool = True
    extra_negatives: bool = False
    sampling: str = "uniform_over_datasets"
    temperature: float = 0.5
    augment: AugmentConfig = AugmentConfig()
    checkpoint_every: int = 100
    augment_overrides: tuple = ()
    augment_draw: str = "per_step"
    context_buckets: int = 4

    def __post_init__(self):
        for name in ("batch_size", "steps", "checkpoint_every"):
            require_positive_int_field(type(self).__name__, name, getattr(self, name))
        require(self.batch_size >= 2,
                f"PretrainConfig.batch_size must be >= 2 (contrastive); got {self.batch_size}")
        for name in ("learning_rate", "tau", "alpha"):
            _positive(self, name)
        _positive(self, "weight_decay", allow_zero=True)
        _positive(self, "temperature", allow_zero=True)
        for name in ("b1", "b2"):
            _fraction(self, name)
        for name in ("per_sample_lambda", "cross_dataset", "extra_negatives"):
            require(isinstance(getattr(self, name), bool),
                    f"PretrainConfig.{name} must be a bool; got {getattr(self, name)!r}")
        _choice(self, "sampling", SAMPLING_MODES)
        require(isinstance(self.augment, AugmentConfig),
                f"PretrainConfig.augment must be an AugmentConfig; got {self.augment!r}")
        require(not isinstance(self.context_buckets, bool)
                and isinstance(self.context_buckets, int) and self.context_buckets >= 0,
                f"PretrainConfig.context_buckets must be an int >= 0; got "
                f"{self.context_buckets!r}")
        _choice(self, "augment_draw", AUGMENT_DRAWS)
        names = []
        require(isinstance(self.augment_overrides, tuple),
                f"PretrainConfig.augment_overrides must be a tuple of (name, AugmentConfig) "
                f"pairs; got {self.augment_overrides!r}")
        for item in self.augment_overrides:
            require(isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)
                    and isinstance(item[1], AugmentConfig),
                    f"PretrainConfig.augment_overrides must hold (name, AugmentConfig) pairs; "
                    f"got {item!r}")
            names.append(item[0])
        require(len(set(names)) == len(names),
                f"PretrainConfig.augment_overrides names a set twice: {names}")

    def augment_for(self, name: str) -> AugmentConfig:
        """The :class:`AugmentConfig` used for pool set ``name`` (its override, else
        ``augment``)."""
        return dict(self.augment_overrides).get(name, self.augment)

    @property
    def max_segments(self) -> int:
        """The largest ``max_segments`` of the pool (a static bound of the permutation)."""
        return max([self.augment.max_segments]
                   + [a.max_segments for _, a in self.augment_overrides])


def augment_table(cfg: PretrainConfig, names) -> np.ndarray:
    """The augmentation strengths of each pool set, as the pretraining step reads them.

    Args:
      cfg: the :class:`~jaxpapers.xit.PretrainConfig` (its ``augment`` and
        ``augment_overrides``).
      names: the ``D`` pool set names, in pool order.

    Returns:
      float32 NumPy ``(D, 3)``: ``(scale_sigma, jitter_sigma, max_segments)`` of each set (the
      override of its name, else ``cfg.augment``).

    Raises:
      ValueError: ``cfg`` is not a :class:`~jaxpapers.xit.PretrainConfig` or ``names`` is
        not a sequence of strings.

    Example:
      >>> from jaxpapers import xit
      >>> cfg = xit.PretrainConfig(augment_overrides=(("GunPoint", xit.augment.WEAK_AUGMENT),))
      >>> xit.augment.augment_table(cfg, ["ArrowHead", "GunPoint"])[:, 2].tolist()
      [8.0, 5.0]
    """
    if not isinstance(cfg, PretrainConfig):
        raise ValueError(f"cfg must be a PretrainConfig; got {type(cfg).__name__}")
    if isinstance(names, str) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"names must be a sequence of dataset names (str); got {names!r}")
    rows = [cfg.augment_for(n) for n in names]
    return np.asarray([(a.scale_sigma, a.jitter_sigma, a.max_segments) for a in rows],
                      np.float32).reshape(len(rows), 3)


@dataclasses.dataclass(frozen=True)
class FinetuneConfig:
    """Fine-tuning on a few labels: full-batch Adam (TS-TCC's settings) for ``steps`` steps.

    Attributes:
      steps: fine-tuning steps (positive int).
      learning_rate: Adam's step size (> 0).
      b1: Adam's first-moment decay, in ``[0, 1)``.
      b2: Adam's second-moment decay, in ``[0, 1)``.
      weight_decay: coupled L2 weight decay (>= 0).
      mode: ``"finetune"`` trains encoder and head; ``"linear"`` freezes the encoder (eval
        mode) and trains the head alone (linear probe).
      freeze_bn: keep the encoder's BatchNorm in eval mode while fine-tuning (batches of 2-15
        labelled series give noisy statistics).
      schedule: ``"constant"`` or ``"plateau"``: TS-TCC's ``ReduceLROnPlateau('min')`` with
        torch's defaults (the step size times ``plateau_factor`` after ``plateau_patience``
        steps without a relative improvement of ``plateau_rtol`` in the validation loss); each
        step is one epoch (the labelled subset is one batch), and the step then needs a
        validation set.
      plateau_factor: in ``(0, 1)``.
      plateau_patience: positive int.
      plateau_rtol: >= 0.

    Raises:
      ValueError: a field out of range (the message names it, its value and what is
        allowed).
    """

    steps: int = 150
    learning_rate: float = 3e-4
    b1: float = 0.9
    b2: float = 0.99
    weight_decay: float = 3e-4
    mode: str = "finetune"
    freeze_bn: bool = False
    schedule: str = "constant"
    plateau_factor: float = 0.1
    plateau_patience: int = 10
    plateau_rtol: float = 1e-4

    def __post_init__(self):
        require_positive_int_field(type(self).__name__, "steps", self.steps)
        require_positive_int_field(type(self).__name__, "plateau_patience", self.plateau_patience)
        _choice(self, "schedule", ("constant", "plateau"))
        _positive(self, "plateau_factor")
        require(self.plateau_factor < 1.0,
                f"FinetuneConfig.plateau_factor must lie in (0, 1); got {self.plateau_factor}")
        _positive(self, "plateau_rtol", allow_zero=True)
        _positive(self, "learning_rate")
        _positive(self, "weight_decay", allow_zero=True)
        for name in ("b1", "b2"):
            _fraction(self, name)
        require(isinstance(self.freeze_bn, bool),
                f"FinetuneConfig.freeze_bn must be a bool; got {self.freeze_bn!r}")
        _choice(self, "mode", ("finetune", "linear"))
