"""The in-pool setting, per-dataset augmentation strengths drawn per step or once per series,
chance levels of the contrastive losses, the plateau schedule of fine-tuning, the cut-off
context transformer input, and the in-domain TS-TCC check at a tiny size."""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers import xit
from jaxpapers.xit._config import augment_table
from jaxpapers.xit._experiments import _reproduce
from jaxpapers.xit._experiments._driver import ALL, HELD_OUT, EncoderKey, label
from jaxpapers.xit._pretrain import _views, chance_levels
from jaxpapers.xit.data import build_pool

SMOKE = _reproduce.SCALES["smoke"]
B, L = 8, 32
X = jax.random.normal(jax.random.key(0), (B, 1, L))
DS = jnp.asarray([0, 1] * (B // 2), jnp.int32)
ROWS = jnp.arange(B, dtype=jnp.int32) + 100
W = jnp.asarray(xit.OBJECTIVES["xit"].as_tuple(), jnp.float32)


def _cfg(**kw):
    return xit.PretrainConfig(batch_size=B, **kw)


def test_augment_overrides_and_table():
    calm = xit.AugmentConfig(scale_sigma=0.0, jitter_sigma=0.0, max_segments=2)
    cfg = _cfg(augment_overrides=(("B", calm),))
    table = augment_table(cfg, ("A", "B", "C"))
    assert table.shape == (3, 3) and table.dtype == np.float32
    np.testing.assert_allclose(table[1], [0.0, 0.0, 2.0])
    np.testing.assert_allclose(table[0], [1.1, 0.8, 8.0], rtol=1e-6)
    assert cfg.max_segments == 8 and cfg.augment_for("B") is calm
    for bad in ((("B", calm), ("B", calm)), (("B", 1.0),), ("B",)):
        with pytest.raises(ValueError, match="augment_overrides"):
            _cfg(augment_overrides=bad)
    with pytest.raises(ValueError, match="augment_draw"):
        _cfg(augment_draw="sometimes")


def test_per_dataset_strengths_reach_the_views():
    # dataset 1 gets sigma 0 and no segments: its weak view is exactly 2x, its strong view x
    calm = xit.AugmentConfig(scale_sigma=0.0, jitter_sigma=0.0, max_segments=2)
    cfg = _cfg(augment_overrides=(("B", calm),))
    table = jnp.asarray(augment_table(cfg, ("A", "B")))
    x_w, x_s, _, _, _ = _views(jax.random.key(1), X, DS, W, cfg, aug_table=table)
    ones = np.asarray(DS) == 1
    np.testing.assert_array_equal(np.asarray(x_w)[ones], 2.0 * np.asarray(X)[ones])
    np.testing.assert_array_equal(np.asarray(x_s)[ones], np.asarray(X)[ones])
    assert not np.allclose(np.asarray(x_w)[~ones], 2.0 * np.asarray(X)[~ones])
    # without a table every set uses cfg.augment: the same views as a table of equal rows
    plain = _cfg()
    a = _views(jax.random.key(1), X, DS, W, plain)
    b = _views(jax.random.key(1), X, DS, W, plain,
               aug_table=jnp.asarray(augment_table(plain, ("A", "B"))))
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))


def test_views_drawn_once_repeat_across_steps_and_per_step_do_not():
    once, per_step = _cfg(augment_draw="once"), _cfg()
    aug_key = jax.random.key(7)
    first = _views(jax.random.key(1), X, DS, W, once, ROWS, None, aug_key)
    second = _views(jax.random.key(2), X, DS, W, once, ROWS, None, aug_key)
    for i in (0, 1):  # weak and strong views: fixed per pool row
        np.testing.assert_array_equal(np.asarray(first[i]), np.asarray(second[i]))
    assert not np.allclose(np.asarray(first[2]), np.asarray(second[2]))  # mixed: fresh
    other_rows = _views(jax.random.key(1), X, DS, W, once, ROWS + 1, None, aug_key)
    assert not np.allclose(np.asarray(first[0]), np.asarray(other_rows[0]))
    a = _views(jax.random.key(1), X, DS, W, per_step, ROWS, None, aug_key)
    b = _views(jax.random.key(2), X, DS, W, per_step, ROWS, None, aug_key)
    assert not np.allclose(np.asarray(a[0]), np.asarray(b[0]))
    with pytest.raises(ValueError, match="once"):
        _views(jax.random.key(1), X, DS, W, once)


def test_segment_limit():
    x = jnp.arange(40.0)[None]
    for seed in range(5):
        key = jax.random.key(seed)
        np.testing.assert_array_equal(np.asarray(xit.augment.segment_permute(key, x, 8)),
                                      np.asarray(xit.augment.segment_permute(key, x, 8, limit=8)))
        # limit 2: one segment, the series unchanged
        np.testing.assert_array_equal(np.asarray(xit.augment.segment_permute(key, x, 8, limit=2)),
                                      np.asarray(x))
    # limit 3: at most two segments, so at most one place where the order jumps
    for seed in range(20):
        out = np.asarray(xit.augment.segment_permute(jax.random.key(seed), x, 8, limit=3))[0]
        assert np.sum(np.diff(out) != 1) <= 1
        assert sorted(out.tolist()) == list(range(40))


def test_chance_levels_are_the_losses_of_uninformative_scores():
    cfg = _cfg()
    chance = chance_levels(cfg)
    assert chance["tc"] == pytest.approx(2 * math.log(B))
    assert chance["cc"] == pytest.approx(math.log(2 * B - 1))
    assert chance["sicc"] == pytest.approx(math.log(B))
    assert chance_levels(_cfg(extra_negatives=True))["sicc"] == pytest.approx(
        math.log(2 * B - 1))
    same = jnp.ones((B, 16))
    k = 3
    fut = jax.random.normal(jax.random.key(3), (k, B, 16))
    pred = jnp.broadcast_to(jax.random.normal(jax.random.key(4), (k, 1, 16)), (k, B, 16))
    # TC: both directions with predictions that do not depend on the sample
    assert 2 * float(xit.tc_infonce(pred, fut)) == pytest.approx(chance["tc"], rel=1e-5)
    assert float(xit.nt_xent(same, same, 0.2)) == pytest.approx(chance["cc"], rel=1e-5)
    lam = jnp.full((B,), 0.3)
    perm = jnp.roll(jnp.arange(B), 1)
    assert float(xit.sicc(same, same, perm, lam, 0.2)) == pytest.approx(chance["sicc"],
                                                                         rel=1e-5)


def test_context_of_the_cut_off_sequence_equals_the_full_one():
    model = xit.ModelConfig(length=64, timesteps=4, tc_width=16, tc_depth=2, tc_heads=2,
                            tc_mlp=16)
    tc = model.temporal_contrast()
    steps, k = model.latent_length, model.timesteps
    z = jax.random.normal(jax.random.key(5), (3, steps, model.latent))
    variables = tc.init(jax.random.key(6), z, 1)
    for prefix in range(1, steps - k + 1):
        full = tc.apply(variables, z, prefix, method=tc.context)
        cut = tc.apply(variables, z[:, :steps - k], prefix, method=tc.context)
        np.testing.assert_allclose(np.asarray(cut), np.asarray(full), rtol=2e-5, atol=2e-6)


def test_plateau_schedule_cuts_the_step_after_patience():
    model = SMOKE.model
    cfg = xit.FinetuneConfig(steps=6, schedule="plateau", plateau_patience=2, learning_rate=1e-9,
                             freeze_bn=True)
    enc = xit.init_pretrain(jax.random.key(0), model, SMOKE.pretrain)
    state = xit.init_finetune(jax.random.key(1), enc.params["encoder"],
                              enc.batch_stats["encoder"], model, cfg, 2)
    state = jax.tree_util.tree_map(lambda a: a[None], state)._replace(step=jnp.int32(0))
    x = jax.random.normal(jax.random.key(2), (1, 4, 1, model.length))
    y = jnp.asarray([[0, 1, 0, 1]], jnp.int32)
    step = jax.jit(xit.make_finetune_step(model, cfg, 2))
    keys = jax.random.split(jax.random.key(3), 1)
    with pytest.raises(ValueError, match="x_val"):
        step(keys, state, x, y)
    scales = []
    for _ in range(8):  # a step size of 1e-9 leaves the validation loss flat: a plateau
        state, _ = step(keys, state, x, y, x, y)
        scales.append(float(state.opt_state[-1].scale[0]))
    # torch (patience 2): no improvement on steps 2, 3, 4; the third bad step exceeds the
    # patience, so the step size drops from step 4 on, and again three bad steps later
    np.testing.assert_allclose(scales, [1, 1, 1, 0.1, 0.1, 0.1, 0.01, 0.01], rtol=1e-5)
    with pytest.raises(ValueError, match="schedule"):
        xit.FinetuneConfig(schedule="cosine")


def test_in_pool_pool_and_held_out_runs():
    small = build_pool(("UnitTest", "ItalyPowerDemand"), 32)
    targets = build_pool(("GunPoint",), 32, splits=("train",))
    pool = _reproduce._with_targets(small, targets)
    assert pool.names == ("UnitTest", "ItalyPowerDemand", "GunPoint")
    assert pool.counts[-1] == 50  # GunPoint's TRAIN split only, never its TEST split
    assert pool.offsets.tolist() == [0, small.counts[0], small.counts.sum()]
    assert np.all(pool.ds_id[pool.offsets[2]:] == 2)
    np.testing.assert_array_equal(pool.x[pool.offsets[2]:], targets.x)
    quick = _reproduce._runs(_reproduce.SCALES["quick"])
    assert len(quick) == 5 and EncoderKey("xit", HELD_OUT, 0) in quick
    assert label(EncoderKey("xit", HELD_OUT, 0)) == "XIT, held-out"
    assert EncoderKey("xit", ALL, 0) in quick
    long = _reproduce.SCALES["steps2400"]
    assert long.pretrain.steps >= 2400 and long.model.length >= 128
    ind = _reproduce.SCALES["indomain"].indomain
    assert ind.pretrain.steps >= 2400 and ind.pretrain.batch_size == 16
    assert ind.model.timesteps == 10 and ind.finetune.steps == 40
    assert ind.finetune.schedule == "plateau" and ind.pretrain.augment_draw == "once"
    assert ind.seeds >= 2 and ind.subset_seeds >= 5


@pytest.mark.slow
def test_smoke_report_has_the_held_out_panel_and_chance_rows(tmp_path):
    ctx = _reproduce.RunContext(out_dir=str(tmp_path), scale="smoke", seed=0,
                                show_progress=False, method="xit")
    scale = dataclasses.replace(SMOKE, seeds=1, ablation_seeds=0, single_source=None)
    result = _reproduce.run(ctx, scale)
    sections = {row.section for row in result.table}
    assert any("held-out transfer" in s for s in sections)
    names = [row.quantity for row in result.table]
    assert "XIT, held-out − scratch" in names and "XIT − XIT, held-out" in names
    chance = [row for row in result.table if "against chance" in row.section]
    assert chance and all("chance" in row.note for row in chance)
    assert result.metrics["pool"]["targets_in_pool"] is True
    assert "Held-out panel" in result.summary


@pytest.mark.slow
def test_in_domain_check_at_a_tiny_size(tmp_path):
    ctx = _reproduce.RunContext(out_dir=str(tmp_path), scale="smoke", seed=0,
                                show_progress=False, method="xit")
    scale = _reproduce.XITScale(pool_runs=False, indomain=_reproduce._TINY_INDOMAIN)
    result = _reproduce.run(ctx, scale)
    names = [row.quantity for row in result.table]
    assert "in-domain TS-TCC − scratch" in names and "in-domain TS-TCC" in names
    assert any(n.startswith("in-domain TS-TCC − in-domain TS-TCC [views drawn per step]")
               for n in names)
    scores = np.asarray(result.metrics["indomain"]["scores"]["GunPoint/k=1"]["accuracy"])
    assert scores.shape == (1 + 1 + 1, 2) and np.all(np.isfinite(scores))
    assert "In-domain TS-TCC − scratch" in result.summary
    assert [p for p in result.plots if p.endswith("indomain_losses.png")]


def _bucketed_setup():
    # dropout off, so the draws cannot differ: bucketing changes only the work
    model = xit.ModelConfig(length=64, timesteps=4, channels=(8, 8, 16), tc_width=16,
                            tc_depth=1, tc_heads=2, tc_mlp=16, dropout=0.0, tc_dropout=0.0)
    cfg = xit.PretrainConfig(batch_size=B, context_buckets=3)
    state = xit.init_pretrain(jax.random.key(0), model, cfg)
    x = jax.random.normal(jax.random.key(1), (B, 1, model.length))
    return model, cfg, state, x


def test_bucketed_context_lengths_give_the_same_loss():
    model, cfg, state, x = _bucketed_setup()
    loss = jax.jit(lambda key, n: xit.pretrain_loss(state.params, state.batch_stats, key, x,
                                                    DS, W, model, cfg, buckets=n)[0],
                   static_argnums=1)
    for seed in range(6):  # several (t1, t2) draws, so several buckets
        key = jax.random.key(seed)
        assert float(loss(key, 3)) == pytest.approx(float(loss(key, 0)), rel=1e-5)
    with pytest.raises(ValueError, match="context_buckets"):
        xit.PretrainConfig(context_buckets=-1)


@pytest.mark.slow
def test_bucketed_context_lengths_give_the_same_gradient_and_step():
    model, cfg, state, x = _bucketed_setup()
    grad = jax.jit(jax.grad(lambda p, key, n: xit.pretrain_loss(
        p, state.batch_stats, key, x, DS, W, model, cfg, buckets=n)[0]), static_argnums=2)
    for seed in range(6):  # several (t1, t2) draws, so several buckets
        key = jax.random.key(seed)
        for a, b in zip(jax.tree_util.tree_leaves(grad(state.params, key, 3)),
                        jax.tree_util.tree_leaves(grad(state.params, key, 0)), strict=True):
            scale = float(np.abs(np.asarray(b)).max())  # float32 reassociation per leaf
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0,
                                       atol=1e-6 + 1e-4 * scale)
    # the one-run step (unvmapped, bucketed) against the vmapped one of two equal runs
    pool = jax.random.normal(jax.random.key(2), (40, 1, model.length))
    offsets, counts = jnp.asarray([0, 20], jnp.int32), jnp.asarray([20, 20], jnp.int32)
    step = jax.jit(xit.make_pretrain_step(model, cfg))
    run_key = jax.random.key(3)

    def stacked(r):
        s = jax.tree_util.tree_map(lambda a: jnp.stack([a] * r), state)
        return s._replace(step=jnp.int32(0))

    def args(r):
        return (pool, offsets, counts, jnp.log(jnp.full((r, 2), 0.5)), jnp.stack([W] * r))

    keys = lambda r: jnp.stack([run_key] * r)  # noqa: E731
    one, info1 = step(keys(1), stacked(1), *args(1))
    two, info2 = step(keys(2), stacked(2), *args(2))
    assert float(info1.loss[0]) == pytest.approx(float(info2.loss[1]), rel=1e-5)
    # the second step's loss depends on the first step's parameters and statistics
    _, info1 = step(keys(1), one, *args(1))
    _, info2 = step(keys(2), two, *args(2))
    assert float(info1.loss[0]) == pytest.approx(float(info2.loss[1]), rel=1e-4)
