"""XIT: multi-dataset contrastive pretraining for time series (Kraus, Divo, Steinmann, Dhami &
Kersting, *United We Pretrain, Divided We Fail!*, arXiv 2402.15404), on TS-TCC (Eldele et al.,
IJCAI 2021).

Public API::

    # data (host-side NumPy; more in jaxpapers.xit.data: read_ts, resample, znormalize, ...)
    load_dataset(name, split, *, length, normalize, data_dir) -> Dataset
    available_datasets(data_dir=None); build_pool(names, length, ...) -> Pool
    k_per_class(labels, k, seed) -> indices
    dataset_probabilities(counts, mode, temperature, active)       # sampler modes
    sample_batch(key, x, offsets, counts, log_probs, batch_size) -> (x [B, ...], ds_id [B])
    # augmentations and XD-MixUp (one series (C, L); vmap over a batch)
    weak_scale(key, x, sigma); strong_augment(key, x, jitter_sigma, max_segments)
    segment_permute(key, x, max_segments); jitter(key, x, sigma)
    xd_mixup(key, x, ds_id, alpha, per_sample=True) -> (x_mix, perm, lam)
    # losses (pure, batched, log-softmax based)
    nt_xent(u, v, tau); tc_infonce(pred, fut); sicc(m, r, perm, lam, tau, extra_negatives)
    # model (Flax) and configs
    Encoder, TemporalContrast, ContextTransformer, Classifier, encoder_length(L, k1, s1)
    ModelConfig, AugmentConfig, Objective, OBJECTIVES, PretrainConfig, FinetuneConfig
    WEAK_AUGMENT (TS-TCC's Epilepsy strengths); augment_table(cfg, names) -> [D, 3] per-set
    strengths (PretrainConfig.augment_overrides; augment_draw "per_step" | "once")
    chance_levels(cfg) -> {"tc", "cc", "sicc"}: each loss when every candidate is equally likely
    # training on jaxpapers.experiments.train_loop (R runs stacked with vmap)
    init_pretrain(key, model, cfg) -> PretrainState; pretrain_loss(...)
    make_pretrain_update(model, cfg) -> update(state, key, pool..., run_keys, log_probs, weights)
    init_finetune(key, enc_params, enc_stats, model, cfg, num_classes) -> FinetuneState
    make_finetune_update(model, cfg, num_classes) -> update(state, key, x, y, run_keys)
    evaluate(params, batch_stats, x, y, model, num_classes) -> {accuracy, macro_f1, auroc}
    accuracy, macro_f1, auroc

The paper's body could not be read: XD-MixUp's Beta(alpha, alpha), SICC's form, temperature and
weight, the classifier input and the training lengths are inferred config values (see
:class:`PretrainConfig` and the spec). ``jaxpapers reproduce xit`` runs the reduced experiment.

Bad input (the rule of every function here): a wrong shape, dtype or setting raises
``ValueError`` naming the argument, at call or trace time. A bad value (NaN/inf, out of range)
raises eagerly; under ``jit`` losses, metrics, augmentations and XD-MixUp return NaN
(documented in each) rather than a plausible number. Keys must be PRNG keys
(``jax.random.key``), not ints.

"""

from jaxpapers.xit._augment import jitter, segment_permute, strong_augment, weak_scale
from jaxpapers.xit._config import (
    AUGMENT_DRAWS,
    OBJECTIVES,
    WEAK_AUGMENT,
    AugmentConfig,
    FinetuneConfig,
    ModelConfig,
    Objective,
    PretrainConfig,
    augment_table,
)
from jaxpapers.xit._finetune import (
    FinetuneState,
    accuracy,
    auroc,
    evaluate,
    init_finetune,
    macro_f1,
    make_finetune_update,
)
from jaxpapers.xit._losses import nt_xent, sicc, tc_infonce
from jaxpapers.xit._mixup import xd_mixup
from jaxpapers.xit._model import (
    Classifier,
    ContextTransformer,
    Encoder,
    TemporalContrast,
    encoder_length,
)
from jaxpapers.xit._pretrain import (
    PretrainInfo,
    PretrainState,
    chance_levels,
    init_pretrain,
    make_pretrain_update,
    pretrain_loss,
)
from jaxpapers.xit.data import (
    Dataset,
    Pool,
    available_datasets,
    build_pool,
    dataset_probabilities,
    k_per_class,
    load_dataset,
    sample_batch,
)

__all__ = [
    "AUGMENT_DRAWS", "WEAK_AUGMENT", "augment_table", "chance_levels",
    "AugmentConfig", "Classifier", "ContextTransformer", "Dataset", "Encoder", "FinetuneConfig",
    "FinetuneState", "ModelConfig", "OBJECTIVES", "Objective", "Pool", "PretrainConfig",
    "PretrainInfo", "PretrainState", "TemporalContrast", "accuracy", "auroc",
    "available_datasets", "build_pool", "dataset_probabilities", "encoder_length", "evaluate",
    "init_finetune", "init_pretrain", "jitter", "k_per_class", "load_dataset", "macro_f1",
    "make_finetune_update", "make_pretrain_update", "nt_xent", "pretrain_loss", "sample_batch",
    "segment_permute", "sicc", "strong_augment", "tc_infonce", "weak_scale", "xd_mixup",
]
