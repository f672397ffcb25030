"""XIT: multi-dataset contrastive pretraining for time series (Kraus, Divo, Steinmann, Dhami &
Kersting, *United We Pretrain, Divided We Fail!*, arXiv 2402.15404), on TS-TCC (Eldele et al.,
IJCAI 2021).

The face holds the configs, the pretraining and fine-tuning states with their init/step pairs,
and the paper's kernels (XD-MixUp, SICC, the TS-TCC losses). The public submodules
:mod:`~jaxpapers.xit.data` (datasets, pools, the batch sampler), :mod:`~jaxpapers.xit.augment`,
:mod:`~jaxpapers.xit.models` (Flax) and :mod:`~jaxpapers.xit.metrics` hold the rest;
``jaxpapers reproduce xit`` runs the reduced experiment.
"""

from jaxpapers.xit import augment, data, metrics, models
from jaxpapers.xit._config import (
    OBJECTIVES,
    AugmentConfig,
    FinetuneConfig,
    ModelConfig,
    Objective,
    PretrainConfig,
)
from jaxpapers.xit._finetune import (
    FinetuneInfo,
    FinetuneState,
    init_finetune,
    make_finetune_step,
)
from jaxpapers.xit._losses import nt_xent, sicc, tc_infonce
from jaxpapers.xit._mixup import xd_mixup
from jaxpapers.xit._pretrain import (
    PretrainInfo,
    PretrainState,
    init_pretrain,
    make_pretrain_step,
    pretrain_loss,
)

__all__ = [
    # configs
    "ModelConfig", "AugmentConfig", "PretrainConfig", "FinetuneConfig", "Objective", "OBJECTIVES",
    # states and infos
    "PretrainState", "PretrainInfo", "FinetuneState", "FinetuneInfo",
    # init/step pairs
    "init_pretrain", "make_pretrain_step", "init_finetune", "make_finetune_step",
    # the paper's kernels
    "xd_mixup", "sicc", "nt_xent", "tc_infonce", "pretrain_loss",
    # public submodules
    "data", "augment", "models", "metrics",
]
