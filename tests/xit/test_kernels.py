"""Augmentations, XD-MixUp, the model (length recursion, masked prefix), metrics; every kernel
through the contract."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers import xit
from jaxpapers.xit._mixup import xd_permutation
from tests.contracts import check_kernel_contract

X = jax.random.normal(jax.random.key(1), (3, 40))  # one series, 3 channels


def test_augmentation_contracts_and_invariants():
    # strong_augment = jitter(segment_permute(x)): with no jitter, each channel keeps its
    # multiset of values (one contract covers both kernels)
    out = check_kernel_contract(lambda k, x: xit.augment.strong_augment(k, x, 0.0, 5), X)
    for c in range(3):
        np.testing.assert_array_equal(np.sort(out[c]), np.sort(X[c]))
    check_kernel_contract(lambda k, x: xit.augment.weak_scale(k, x, 1.1), X)


def test_segment_permute_same_order_for_all_channels_and_segment_counts():
    x = jnp.tile(jnp.arange(30.0), (2, 1))
    keys = jax.random.split(jax.random.key(2), 400)
    outs = np.asarray(jax.jit(jax.vmap(lambda k: xit.augment.segment_permute(k, x, 5)))(keys))
    np.testing.assert_array_equal(outs[:, 0], outs[:, 1])
    # number of segments = 1 + number of breaks in the gathered positions; m ~ U{1..4}
    breaks = (np.diff(outs[:, 0], axis=1) != 1).sum(1) + 1
    assert breaks.min() == 1 and breaks.max() <= 4
    assert (breaks == 1).mean() > 0.15  # m = 1 has probability 1/4 (plus rare no-op orders)


def test_weak_scale_mean_is_two_x():
    x = jnp.linspace(-1.0, 2.0, 16)[None]
    keys = jax.random.split(jax.random.key(3), 4000)
    out = np.asarray(jax.jit(jax.vmap(lambda k: xit.augment.weak_scale(k, x, 1.1)))(keys))
    se = 1.1 * np.abs(np.asarray(x)) / np.sqrt(4000)
    assert np.all(np.abs(out.mean(0) - 2 * np.asarray(x)) < 5 * se + 1e-6)
    ratio = out[:, 0, 3] / np.asarray(x)[0, 3]
    assert abs(ratio.std() - 1.1) < 0.1


def test_xd_mixup_bounds_lambda_and_partners():
    b = 32
    x = jax.random.normal(jax.random.key(4), (b, 1, 20))
    ds = jnp.arange(b) % 4  # every dataset holds B/4 < B/2 of the batch
    x_mix, perm, lam = check_kernel_contract(lambda k, x: xit.xd_mixup(k, x, ds, 0.2), x)
    assert x_mix.shape == x.shape and perm.dtype == jnp.int32
    assert sorted(np.asarray(perm).tolist()) == list(range(b))
    lo = np.minimum(x, x[perm]) - 1e-6
    hi = np.maximum(x, x[perm]) + 1e-6
    assert np.all((x_mix >= lo) & (x_mix <= hi))
    same = np.asarray(ds)[np.asarray(perm)] == np.asarray(ds)
    assert not same.any()
    # lambda = 1 returns x exactly (alpha tiny: Beta mass at the ends; force via the formula)
    one = 1.0 * x + 0.0 * x[perm]
    np.testing.assert_array_equal(one, x)


@pytest.mark.slow
def test_xd_mixup_lambda_mean_and_one_lambda_per_batch():
    # E[lam] = 1/2 for Beta(a, a) on a large batch, and one lam per batch: one compile
    big, b = 4000, 32
    x = jax.random.normal(jax.random.key(4), (b, 1, 20))
    ds = jnp.arange(b) % 4

    @jax.jit
    def lams(k):
        per_sample = xit.xd_mixup(k, jnp.zeros((big, 1, 2)), jnp.arange(big) % 4, 0.5)[2]
        return per_sample, xit.xd_mixup(k, x, ds, 0.2, per_sample=False)[2]

    per_sample, per_batch = (np.asarray(a) for a in lams(jax.random.key(5)))
    assert abs(per_sample.mean() - 0.5) < 5 * per_sample.std() / np.sqrt(big)
    assert np.unique(per_batch).size == 1


def test_xd_permutation_with_a_dominant_dataset_pairs_the_fewest_inside_it():
    b = 20
    ds = jnp.asarray([0] * 14 + [1] * 4 + [2] * 2)
    partners = jax.jit(lambda k: xd_permutation(k, ds))  # one compile
    for seed in range(5):
        perm = partners(jax.random.key(seed))
        assert sorted(np.asarray(perm).tolist()) == list(range(b))
        same = (np.asarray(ds)[np.asarray(perm)] == np.asarray(ds)).sum()
        assert same == 2 * 14 - b  # the minimum possible


@pytest.mark.parametrize("length, k1, s1, expected", [
    (24, 8, 1, 5), (64, 8, 1, 10), (128, 8, 1, 18), (178, 8, 1, 24), (251, 8, 1, 34),
    (512, 8, 1, 66), (1500, 8, 1, 190), (3000, 25, 3, 127), (5120, 32, 4, 162)])
def test_encoder_length_recursion(length, k1, s1, expected):
    assert xit.models.encoder_length(length, k1, s1) == expected
    if length <= 512:
        enc = xit.models.Encoder(k1, s1, channels=(4, 4, 8))
        x = jnp.zeros((1, 1, length))
        z = jax.eval_shape(lambda: enc.init_with_output(jax.random.key(0), x)[0])
        assert z.shape == (1, expected, 8)


def test_conv_matches_lax_conv():
    import flax.linen as nn

    x = jax.random.normal(jax.random.key(7), (2, 19, 3))
    ours = xit._model.Conv1D(5, 4, 2, 2)
    params = ours.init(jax.random.key(0), x)
    ref = nn.Conv(5, (4,), strides=(2,), padding=[(2, 2)], use_bias=False)
    both = jax.jit(lambda p: (ours.apply(p, x), ref.apply(p, x)))(params)
    np.testing.assert_allclose(*both, rtol=1e-5, atol=1e-5)


def test_masked_prefix_equals_sliced_prefix():
    model = xit.models.ContextTransformer(width=8, depth=1, heads=2, mlp=8)
    z = jax.random.normal(jax.random.key(8), (3, 7, 12))
    params = jax.jit(model.init)(jax.random.key(0), z, 3)
    masked_fn = jax.jit(lambda t: model.apply(params, z, t))  # one compile for every t
    sliced_fn = jax.jit(lambda zt: model.apply(params, zt, zt.shape[1]))  # one per length
    for t in (2, 7):
        masked = masked_fn(t)
        sliced = sliced_fn(z[:, :t])
        np.testing.assert_allclose(masked, sliced, rtol=1e-5, atol=1e-5)


def test_auroc_orientation_and_sklearn_agreement():
    from sklearn.metrics import f1_score, roc_auc_score

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 60)
    s = rng.normal(size=60) + y
    s[:5] = s[5:10]  # ties
    y3 = rng.integers(0, 3, 80)
    p3 = jax.nn.softmax(jnp.asarray(rng.normal(size=(80, 3)) + np.eye(3)[y3]), -1)
    pred = np.asarray(jnp.argmax(p3, -1))
    logits = jnp.stack([jnp.zeros(60), jnp.asarray(s)], -1)

    @jax.jit  # one compile for every metric call
    def metrics(s, y, p3, y3, pred, logits):
        return (xit.metrics.auroc(s, y), xit.metrics.auroc(-s, y), xit.metrics.auroc(p3, y3),
                xit.metrics.macro_f1(pred, y3, 3), xit.metrics.auroc(logits, y))

    a, b, a3, f1, a_logits = (float(v) for v in metrics(jnp.asarray(s), y, p3, y3, pred,
                                                          logits))
    np.testing.assert_allclose(a + b, 1.0, rtol=1e-6)
    np.testing.assert_allclose(a, roc_auc_score(y, s), rtol=1e-6)
    np.testing.assert_allclose(a3, roc_auc_score(y3, np.asarray(p3), multi_class="ovr"),
                               rtol=1e-5)
    np.testing.assert_allclose(f1, f1_score(y3, pred, average="macro"), rtol=1e-6)
    np.testing.assert_allclose(a_logits, a, rtol=1e-6)


def test_configs_validate():
    with pytest.raises(ValueError, match="timesteps"):
        xit.ModelConfig(length=24, timesteps=5)
    with pytest.raises(ValueError, match="sampling"):
        xit.PretrainConfig(sampling="bogus")
    with pytest.raises(ValueError, match="batch_size"):
        xit.PretrainConfig(batch_size=1)
    with pytest.raises(ValueError, match="mode"):
        xit.FinetuneConfig(mode="bogus")
    with pytest.raises(ValueError, match="max_segments"):
        xit.AugmentConfig(max_segments=1)
    # every field is checked, so a config stays hashable (a static jit argument, the cache key
    # of the step factories) and a bad value names its class and field
    bad = [(xit.ModelConfig, dict(channels=[32, 64, 128]), "ModelConfig.channels"),
           (xit.ModelConfig, dict(head_scale=1), "ModelConfig.head_scale"),
           (xit.PretrainConfig, dict(augment_overrides=[]), "PretrainConfig.augment_overrides"),
           (xit.PretrainConfig, dict(cross_dataset=None), "PretrainConfig.cross_dataset"),
           (xit.FinetuneConfig, dict(b2=1.0), "FinetuneConfig.b2"),
           (xit.FinetuneConfig, dict(freeze_bn="yes"), "FinetuneConfig.freeze_bn"),
           (xit.FinetuneConfig, dict(plateau_factor=float("nan")), "FinetuneConfig.plateau")]
    for cls, kwargs, message in bad:
        with pytest.raises(ValueError, match=message):
            cls(**kwargs)
    for cfg in (xit.ModelConfig(), xit.PretrainConfig(), xit.FinetuneConfig(), xit.Objective()):
        hash(cfg)
