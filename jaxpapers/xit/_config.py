"""Frozen, validated configurations: model, augmentations, the pretraining objective and
optimiser, fine-tuning.

Values the paper's body would fix but that could not be read (spec Sec. 0) are config values,
with the spec's inferred defaults: Beta(alpha, alpha) with alpha = 0.2, one lambda per series,
SICC temperature 0.2 and weight 0.7 in place of TS-TCC's contextual contrasting, HAR's
augmentation strengths for z-normalised data, the mixed series weak-augmented and contrasted
with the weak view.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from jaxpapers._src.checks import require_positive_int_field
from jaxpapers.xit._model import ContextTransformer, Encoder, TemporalContrast, encoder_length
from jaxpapers.xit._sampler import SAMPLING_MODES

__all__ = ["ModelConfig", "AugmentConfig", "Objective", "OBJECTIVES", "PretrainConfig",
           "FinetuneConfig", "AUGMENT_DRAWS", "WEAK_AUGMENT", "augment_table"]

AUGMENT_DRAWS = ("per_step", "once")


def _positive_int(owner, name):
    require_positive_int_field(type(owner).__name__, name, getattr(owner, name))


def _positive(owner, name, allow_zero=False):
    value = getattr(owner, name)
    ok = value >= 0 if allow_zero else value > 0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{type(owner).__name__}.{name} must be a number {bound}; got "
                         f"{value!r}")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """TS-TCC's model (spec Sec. 3) at one common input length.

    Defaults: ``k1 = 8, s1 = 1`` (HAR), TC hidden width ``h = 100``, 4 layers, 4 heads, MLP 64,
    ``K = 4`` future steps (the reduced run; HAR uses 6 at L = 128).
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
            _positive_int(self, name)
        if len(self.channels) != 3 or any(c <= 0 for c in self.channels):
            raise ValueError(f"ModelConfig.channels must be three positive ints; got "
                             f"{self.channels}")
        if self.tc_width % self.tc_heads:
            raise ValueError(f"ModelConfig.tc_width ({self.tc_width}) must be divisible by "
                             f"tc_heads ({self.tc_heads})")
        for name in ("dropout", "tc_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"ModelConfig.{name} must lie in [0, 1); got "
                                 f"{getattr(self, name)}")
        if self.timesteps >= self.latent_length:
            raise ValueError(f"ModelConfig.timesteps ({self.timesteps}) must be below the "
                             f"encoder output length T' = {self.latent_length} (length "
                             f"{self.length}, k1 {self.k1}, s1 {self.s1})")

    @property
    def latent_length(self) -> int:
        return encoder_length(self.length, self.k1, self.s1, self.kernel)

    @property
    def latent(self) -> int:
        return self.channels[-1]

    def encoder(self) -> Encoder:
        return Encoder(self.k1, self.s1, self.kernel, tuple(self.channels), self.dropout)

    def temporal_contrast(self) -> TemporalContrast:
        return TemporalContrast(self.timesteps, self.latent, self.tc_width, self.tc_depth,
                                self.tc_heads, self.tc_mlp, self.tc_dropout, self.head_scale)

    def context_transformer(self) -> ContextTransformer:
        return ContextTransformer(self.tc_width, self.tc_depth, self.tc_heads, self.tc_mlp,
                                  self.tc_dropout, self.head_scale)


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """TS-TCC augmentation strengths; defaults are HAR's (spec Sec. 4.1), inferred for
    z-normalised data."""

    scale_sigma: float = 1.1
    jitter_sigma: float = 0.8
    max_segments: int = 8

    def __post_init__(self):
        _positive(self, "scale_sigma", allow_zero=True)
        _positive(self, "jitter_sigma", allow_zero=True)
        if isinstance(self.max_segments, bool) or not isinstance(self.max_segments, int) \
                or self.max_segments < 2:
            raise ValueError(f"AugmentConfig.max_segments must be an int >= 2; got "
                             f"{self.max_segments!r}")


#: TS-TCC's Epilepsy/EMG strengths (spec Sec. 4.1): weak views for short, smooth series
WEAK_AUGMENT = AugmentConfig(scale_sigma=0.001, jitter_sigma=0.001, max_segments=5)


@dataclasses.dataclass(frozen=True)
class Objective:
    """Weights of ``L = tc * L_TC + cc * L_CC + sicc * L_SICC``; ``mixup=False`` sets
    ``lam = 1`` (the mixed series is then a second weak view of the original).

    These are traced, so pretraining runs with different objectives share one compiled step
    (:data:`OBJECTIVES` has the presets of the reproduction).
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
    """Pretraining: optimiser (TS-TCC's Adam 3e-4, betas (0.9, 0.99), coupled L2 3e-4),
    batch, steps, sampling of the pool, and the inferred XIT constants.

    Attributes:
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
            _positive_int(self, name)
        if self.batch_size < 2:
            raise ValueError(f"PretrainConfig.batch_size must be >= 2 (contrastive); got "
                             f"{self.batch_size}")
        for name in ("learning_rate", "tau", "alpha"):
            _positive(self, name)
        _positive(self, "weight_decay", allow_zero=True)
        _positive(self, "temperature", allow_zero=True)
        for name in ("b1", "b2"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"PretrainConfig.{name} must lie in [0, 1); got "
                                 f"{getattr(self, name)}")
        if self.sampling not in SAMPLING_MODES:
            raise ValueError(f"PretrainConfig.sampling must be one of {SAMPLING_MODES}; got "
                             f"{self.sampling!r}")
        if not isinstance(self.augment, AugmentConfig):
            raise ValueError(f"PretrainConfig.augment must be an AugmentConfig; got "
                             f"{self.augment!r}")
        if isinstance(self.context_buckets, bool) or not isinstance(self.context_buckets, int) \
                or self.context_buckets < 0:
            raise ValueError(f"PretrainConfig.context_buckets must be an int >= 0; got "
                             f"{self.context_buckets!r}")
        if self.augment_draw not in AUGMENT_DRAWS:
            raise ValueError(f"PretrainConfig.augment_draw must be one of {AUGMENT_DRAWS}; got "
                             f"{self.augment_draw!r}")
        names = []
        for item in self.augment_overrides:
            if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)
                    and isinstance(item[1], AugmentConfig)):
                raise ValueError("PretrainConfig.augment_overrides must hold (name, "
                                 f"AugmentConfig) pairs; got {item!r}")
            names.append(item[0])
        if len(set(names)) != len(names):
            raise ValueError(f"PretrainConfig.augment_overrides names a set twice: {names}")

    def augment_for(self, name: str) -> AugmentConfig:
        """The strengths used for pool set ``name``."""
        return dict(self.augment_overrides).get(name, self.augment)

    @property
    def max_segments(self) -> int:
        """The largest ``max_segments`` of the pool (a static bound of the permutation)."""
        return max([self.augment.max_segments]
                   + [a.max_segments for _, a in self.augment_overrides])


def augment_table(cfg: PretrainConfig, names) -> np.ndarray:
    """float32 ``[D, 3]``: ``(scale_sigma, jitter_sigma, max_segments)`` of each pool set
    ``names[d]`` (the override of that name, else ``cfg.augment``).

    Raises:
      ValueError: ``cfg`` is not a :class:`PretrainConfig` or ``names`` is not a sequence of
        strings.
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

    ``mode="finetune"`` trains encoder and head; ``"linear"`` freezes the encoder (eval mode)
    and trains the head alone (linear probe). ``freeze_bn`` keeps the encoder's BatchNorm in
    eval mode while fine-tuning (batches of 2-15 labelled series give noisy statistics).

    ``schedule="plateau"``: TS-TCC's ``ReduceLROnPlateau('min')`` with torch's defaults (the
    step size times ``plateau_factor`` after ``plateau_patience`` steps without a relative
    improvement of ``plateau_rtol`` in the validation loss); each step is one epoch (the
    labelled subset is one batch), and the update then needs a validation set.
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
        _positive_int(self, "steps")
        _positive_int(self, "plateau_patience")
        if self.schedule not in ("constant", "plateau"):
            raise ValueError(f"FinetuneConfig.schedule must be 'constant' or 'plateau'; got "
                             f"{self.schedule!r}")
        if not 0.0 < self.plateau_factor < 1.0:
            raise ValueError(f"FinetuneConfig.plateau_factor must lie in (0, 1); got "
                             f"{self.plateau_factor}")
        _positive(self, "plateau_rtol", allow_zero=True)
        _positive(self, "learning_rate")
        _positive(self, "weight_decay", allow_zero=True)
        if self.mode not in ("finetune", "linear"):
            raise ValueError(f"FinetuneConfig.mode must be 'finetune' or 'linear'; got "
                             f"{self.mode!r}")
