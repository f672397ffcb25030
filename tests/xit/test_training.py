"""Pretraining and fine-tuning steps: the kernel contract, determinism, resumption bitwise
through the toolkit's train_loop and Checkpointer, the sharded run, and the smoke reproduction."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers import xit
from jaxpapers._src.errors import MissingDependencyError
from jaxpapers.experiments import Checkpointer, RunContext, diff_results, reproduce, train_loop
from jaxpapers.xit._experiments._driver import _loop_update
from jaxpapers.xit._experiments._reproduce import SCALES
from tests.contracts import check_kernel_contract
from tests.multidevice import run_with_devices

SMOKE = SCALES["smoke"]
MODEL, CFG = SMOKE.model, SMOKE.pretrain  # the smoke run's configs: compiled once per process
POOL_X = jax.random.normal(jax.random.key(11), (40, 1, MODEL.length))
OFFSETS, COUNTS = jnp.asarray([0, 25], jnp.int32), jnp.asarray([25, 15], jnp.int32)
LOG_P = jnp.log(jnp.asarray([[0.5, 0.5]], jnp.float32))
WEIGHTS = jnp.asarray([xit.OBJECTIVES["xit"].as_tuple()], jnp.float32)


def _state(seed=0, runs=1):
    one = [xit.init_pretrain(jax.random.key(seed + r), MODEL, CFG) for r in range(runs)]
    state = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *one)
    return state._replace(step=jnp.int32(0))


def _args(runs=1):
    return POOL_X, OFFSETS, COUNTS, jnp.tile(LOG_P, (runs, 1)), jnp.tile(WEIGHTS, (runs, 1))


@pytest.mark.slow
def test_pretrain_loss_contract_and_first_step_determinism():
    # the contract on the loss (forward, BatchNorm statistics and per-term losses): under vmap
    # the step's Adam moments differ from single calls by float32 reassociation only
    state = _state()
    params = jax.tree_util.tree_map(lambda a: a[0], state.params)
    stats = jax.tree_util.tree_map(lambda a: a[0], state.batch_stats)
    x, ds = POOL_X[:CFG.batch_size], jnp.arange(CFG.batch_size) % 2
    kernel = lambda key, p: xit.pretrain_loss(p, stats, key, x, ds, WEIGHTS[0], MODEL, CFG)
    check_kernel_contract(kernel, params, num_keys=2)
    # oracle 13: the same key gives a bit-identical first step
    step = jax.jit(xit.make_pretrain_step(MODEL, CFG))
    run_keys = jax.random.split(jax.random.key(1), 1)
    first = step(run_keys, state, *_args())
    again = step(run_keys, _state(), *_args())
    for a, b in zip(jax.tree_util.tree_leaves(first), jax.tree_util.tree_leaves(again),
                    strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert first[0].step.dtype == jnp.int32 and int(first[0].step) == 1
    assert np.all(np.isfinite(np.asarray(first[1].loss)))
    # the step uses its key: another key draws another batch and other views
    other = step(jax.random.split(jax.random.key(2), 1), _state(), *_args())
    assert float(other[1].loss[0]) != float(first[1].loss[0])


@pytest.mark.slow
def test_pretraining_resumes_bitwise(tmp_path):
    update = _loop_update(xit.make_pretrain_step(MODEL, CFG))
    args = (jax.random.split(jax.random.key(3), 2), *_args(runs=2))
    full, full_info = train_loop(update, _state(runs=2), jax.random.key(0), 4, args=args,
                                 chunk=2)

    class Interrupt(Exception):
        pass

    first = Checkpointer(str(tmp_path), "xit", 0, "pretrain", {"t": 1})
    original_save = first.save

    def save_then_crash(step, tree):  # a crash right after the checkpoint at step 2
        original_save(step, tree)
        raise Interrupt

    first.save = save_then_crash
    with pytest.raises(Interrupt):
        train_loop(update, _state(runs=2), jax.random.key(0), 4, args=args, chunk=2,
                   checkpointer=first)
    resumed_ckpt = Checkpointer(str(tmp_path), "xit", 0, "pretrain", {"t": 1}, resume=True)
    assert resumed_ckpt.latest_step() == 2
    resumed, resumed_info = train_loop(update, _state(runs=2), jax.random.key(0), 4,
                                       args=args, chunk=2, checkpointer=resumed_ckpt)
    for a, b in zip(jax.tree_util.tree_leaves((full, full_info)),
                    jax.tree_util.tree_leaves((resumed, resumed_info)), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.slow
def test_finetune_step_contract_and_evaluate():
    ft = xit.FinetuneConfig(steps=3)
    base = xit.init_pretrain(jax.random.key(0), MODEL, CFG)
    state = xit.init_finetune(jax.random.key(1), base.params["encoder"],
                              base.batch_stats["encoder"], MODEL, ft, 3)
    state = jax.tree_util.tree_map(lambda a: a[None], state)._replace(step=jnp.int32(0))
    x = jax.random.normal(jax.random.key(2), (1, 6, 2, MODEL.length))  # 2 channels
    y = jnp.asarray([[0, 1, 2, 0, 1, 2]])
    step = xit.make_finetune_step(MODEL, ft, 3)
    kernel = lambda key, s: step(key[None], s, x, y)
    new, info = check_kernel_contract(kernel, state, state_arg=0,
                                      output_state=lambda out: out[0], num_keys=2)
    params = jax.tree_util.tree_map(lambda a: a[0], new.params)
    stats = jax.tree_util.tree_map(lambda a: a[0], new.batch_stats)
    scores = xit.metrics.evaluate(params, stats, x[0], y[0], MODEL, 3)
    assert set(scores) == {"accuracy", "macro_f1", "auroc"}
    assert all(0.0 <= float(v) <= 1.0 for v in scores.values())


@pytest.mark.slow
def test_linear_probe_leaves_the_encoder_unchanged():
    ft = xit.FinetuneConfig(steps=2, mode="linear")
    base = xit.init_pretrain(jax.random.key(0), MODEL, CFG)
    state = xit.init_finetune(jax.random.key(1), base.params["encoder"],
                              base.batch_stats["encoder"], MODEL, ft, 2)
    state = jax.tree_util.tree_map(lambda a: a[None], state)._replace(step=jnp.int32(0))
    x = jax.random.normal(jax.random.key(2), (1, 4, 1, MODEL.length))
    y = jnp.asarray([[0, 1, 0, 1]])
    new, _ = jax.jit(xit.make_finetune_step(MODEL, ft, 2))(
        jax.random.split(jax.random.key(3), 1), state, x, y)
    for a, b in zip(jax.tree_util.tree_leaves(state.params["encoder"]),
                    jax.tree_util.tree_leaves(new.params["encoder"]), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(state.params["head"]["Dense_0"]["kernel"]),
                              np.asarray(new.params["head"]["Dense_0"]["kernel"]))
    one = lambda tree: jax.tree_util.tree_map(lambda a: a[0], tree)
    scores = jax.jit(lambda p, s: xit.metrics.evaluate(p, s, x[0], y[0], MODEL, 2))(
        one(new.params), one(new.batch_stats))
    assert set(scores) == {"accuracy", "macro_f1", "auroc"}
    assert all(0.0 <= float(v) <= 1.0 for v in scores.values())


@pytest.mark.slow
def test_no_nan_after_100_steps():
    update = _loop_update(xit.make_pretrain_step(MODEL, CFG))
    _, info = train_loop(update, _state(), jax.random.key(0), 100,
                         args=(jax.random.split(jax.random.key(4), 1), *_args()), chunk=50)
    loss = np.asarray(info.loss)
    assert np.all(np.isfinite(loss))
    assert loss[-20:].mean() < loss[:20].mean()


# float32 reassociation: XLA compiles the per-device programme (one run per device) apart from
# the 8-run one, so gradients (and Adam's moments) agree to rounding, not bitwise
TOL = "rtol=1e-4, atol=1e-5"

SHARDED_FINETUNE = """
import jax, jax.numpy as jnp, numpy as np
from jaxpapers import xit
from jaxpapers.sharding import data_mesh, shard_batch
from jaxpapers.xit._experiments._reproduce import SCALES
model, ft = SCALES["smoke"].model, xit.FinetuneConfig(steps=2)
R, n = 8, 4
base = [xit.init_pretrain(jax.random.key(r), model, SCALES["smoke"].pretrain) for r in range(R)]
one = [xit.init_finetune(jax.random.key(10 + r), b.params["encoder"],
                         b.batch_stats["encoder"], model, ft, 2) for r, b in enumerate(base)]
state = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *one)._replace(step=jnp.int32(0))
x = jax.random.normal(jax.random.key(2), (R, n, 1, model.length))
y = jnp.tile(jnp.asarray([0, 1, 0, 1]), (R, 1))
run_keys = jax.random.split(jax.random.key(3), R)
step = jax.jit(xit.make_finetune_step(model, ft, 2))
single = step(run_keys, state, x, y)
per_run = shard_batch((state.params, state.batch_stats, state.opt_state, run_keys, x, y),
                      data_mesh(8))
sharded = step(per_run[3], state._replace(params=per_run[0], batch_stats=per_run[1],
                                          opt_state=per_run[2]), *per_run[4:])
leaf = jax.tree_util.tree_leaves(sharded[0].params)[0]
assert len(leaf.sharding.device_set) == 8, leaf.sharding
for a, b in zip(jax.tree_util.tree_leaves(single), jax.tree_util.tree_leaves(sharded)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), TOL)
print("ok")
""".replace("TOL", TOL)

SHARDED_PRETRAIN = """
import jax, jax.numpy as jnp, numpy as np
from jaxpapers import xit
from jaxpapers.sharding import data_mesh, shard_batch
from jaxpapers.xit._experiments._reproduce import SCALES
model, cfg = SCALES["smoke"].model, SCALES["smoke"].pretrain
R = 8
one = [xit.init_pretrain(jax.random.key(r), model, cfg) for r in range(R)]
state = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *one)._replace(step=jnp.int32(0))
pool = jax.random.normal(jax.random.key(11), (40, 1, model.length))
offsets, counts = jnp.asarray([0, 25], jnp.int32), jnp.asarray([25, 15], jnp.int32)
run_keys = jax.random.split(jax.random.key(3), R)
log_p = jnp.log(jnp.full((R, 2), 0.5, jnp.float32))
weights = jnp.tile(jnp.asarray([xit.OBJECTIVES["xit"].as_tuple()], jnp.float32), (R, 1))
step = jax.jit(xit.make_pretrain_step(model, cfg))
single = step(run_keys, state, pool, offsets, counts, log_p, weights)
per_run = shard_batch((state.params, state.batch_stats, state.opt_state, run_keys, log_p,
                       weights), data_mesh(8))
sharded_state = state._replace(params=per_run[0], batch_stats=per_run[1], opt_state=per_run[2])
sharded = step(per_run[3], sharded_state, pool, offsets, counts, *per_run[4:])
leaf = jax.tree_util.tree_leaves(sharded[0].params)[0]
assert len(leaf.sharding.device_set) == 8, leaf.sharding
# Adam's first step moves every parameter by about +-lr whatever the gradient's size, so where
# a gradient is rounding-sized (two biases have an exactly zero one: the predictors', and the
# projection's first, followed by a train-mode BatchNorm) its sign can flip between the two
# programmes. The gradients are compared through Adam's moments (mu = (1 - b1) g, nu), the
# losses and BatchNorm statistics to TOL; the parameters to within 2 lr.
lr = cfg.learning_rate
for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(single),
                        jax.tree_util.tree_leaves(sharded)):
    name = jax.tree_util.keystr(path)
    if name.startswith("[0].params"):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=2 * lr,
                                   err_msg=name)
    else:
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), TOL, err_msg=name)
print("ok")
""".replace("TOL", TOL)


SHARDED_EVALUATE = """
import jax, jax.numpy as jnp, numpy as np
from jaxpapers import xit
from jaxpapers.sharding import data_mesh, shard_batch
from jaxpapers.xit._experiments._reproduce import SCALES
model, R = SCALES["smoke"].model, 8
enc = model.encoder()
x = jax.random.normal(jax.random.key(2), (6, 1, model.length))
init = jax.jit(jax.vmap(lambda k: enc.init(k, x)))(jax.random.split(jax.random.key(0), R))
fn = jax.jit(jax.vmap(lambda p, s: enc.apply({"params": p, "batch_stats": s}, x)))
args = (init["params"], init["batch_stats"])
single = fn(*args)
sharded = fn(*shard_batch(args, data_mesh(8)))
assert len(sharded.sharding.device_set) == 8, sharded.sharding
np.testing.assert_allclose(np.asarray(single), np.asarray(sharded), TOL)
print("ok")
""".replace("TOL", TOL)


def test_sharded_encoders_equal_single_device():
    # the runner shards its run axis (stacked encoders) over devices for pretraining,
    # fine-tuning and evaluation alike; the cheap forward pass here, the trainings (slow) below
    assert "ok" in run_with_devices(SHARDED_EVALUATE)


@pytest.mark.slow
def test_sharded_finetuning_equals_single_device():
    assert "ok" in run_with_devices(SHARDED_FINETUNE)


@pytest.mark.slow
def test_sharded_pretraining_equals_single_device():
    assert "ok" in run_with_devices(SHARDED_PRETRAIN)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("xit_smoke")
    ctx = RunContext(out_dir=str(out), scale="smoke", seed=0, show_progress=False)
    return out, reproduce("xit", ctx)


def check_smoke_results(out):
    """What a smoke run's folder must hold (also checked on the Quickstart test's run)."""
    saved = json.loads((out / "results.json").read_text())
    assert saved["verdict"]["summary"] and saved["table"]
    scores = saved["metrics"]["scores"]["GunPoint/k=1"]["accuracy"]
    # encoders x subsets: scratch x 2; TS-TCC, XIT (in-pool) and XIT held-out x 2; 3 ablations
    assert np.asarray(scores).shape == (2 + 6 + 3, SMOKE.subset_seeds)
    assert np.all(np.isfinite(np.asarray(scores)))
    assert all((out / p).stat().st_size > 0 for p in saved["plots"])
    losses = saved["metrics"]["pretraining_loss"]
    assert all(np.isfinite(v["loss"]["last"]) for v in losses.values())


@pytest.mark.slow
def test_smoke_reproduction(smoke_run):
    """In-process (the CI run checks the Quickstart test's CLI run with the same function)."""
    out, results = smoke_run
    assert results["table"]
    check_smoke_results(out)


@pytest.mark.slow
def test_smoke_reproduction_resumes_to_the_same_results(smoke_run):
    out, results = smoke_run
    resumed = reproduce("xit", RunContext(out_dir=str(out), scale="smoke", seed=0,
                                          show_progress=False, resume=True))
    assert diff_results(results, resumed) == []


@pytest.mark.slow
def test_paper_scale_dry_run_on_a_user_folder(tmp_path, monkeypatch):
    """The paper scale's code path (auto-selected pool from a user folder, every pool set a
    target, train splits only) at tiny sizes: three bundled sets copied into the folder."""
    import dataclasses
    import lzma

    from jaxpapers.xit._experiments import _reproduce
    from jaxpapers.xit.data import _locate

    folder = tmp_path / "ucr"
    for name in ("UnitTest", "ItalyPowerDemand", "GunPoint"):
        kind, stem = _locate(name, None)
        assert kind == "ts.xz"   # the bundle ships xz-compressed .ts files
        (folder / name).mkdir(parents=True)
        for split in ("TRAIN", "TEST"):
            with open(f"{stem}_{split}.ts.xz", "rb") as f:
                (folder / name / f"{name}_{split}.ts").write_bytes(lzma.decompress(f.read()))
    monkeypatch.setenv(_reproduce.UCR_ENV, str(folder))
    paper = _reproduce.SCALES["paper"]
    tiny = dataclasses.replace(paper, model=SMOKE.model, pretrain=SMOKE.pretrain,
                               finetune=SMOKE.finetune, single_source="GunPoint", seeds=1,
                               ablation_seeds=1, ks=(1,), subset_seeds=2,
                               latent_per_dataset=5)
    ctx = RunContext(out_dir=str(tmp_path / "out"), scale="paper", seed=0,
                     show_progress=False, method="xit")
    result = _reproduce.run(ctx, tiny)
    assert result.config["pool_names"] == ["GunPoint", "ItalyPowerDemand", "UnitTest"]
    assert result.config["target_names"] == result.config["pool_names"]
    monkeypatch.setenv(_reproduce.UCR_ENV, str(tmp_path / "missing"))
    with pytest.raises(MissingDependencyError, match="UCR"):
        _reproduce.run(ctx, tiny)


@pytest.mark.slow
def test_inferred_choice_ablation_at_smoke_size(tmp_path):
    """An inferred choice (w_CC = 0.7 added to XIT) at the smoke scale: one more encoder, its
    accuracy row, the paired default-minus-alternative rows and the summary sentence."""
    import dataclasses

    from jaxpapers.xit._experiments import _reproduce

    scale = dataclasses.replace(SMOKE, choices=("with_cc",))
    ctx = RunContext(out_dir=str(tmp_path), scale="smoke", seed=0, show_progress=False,
                     method="xit")
    result = _reproduce.run(ctx, scale)
    scores = result.metrics["scores"]["GunPoint/k=1"]["accuracy"]
    assert np.asarray(scores).shape == (2 + 6 + 3 + 1, SMOKE.subset_seeds)
    names = [row.quantity for row in result.table]
    assert "XIT [+ CC, w_CC = 0.7]" in names and "XIT − XIT [+ CC, w_CC = 0.7]" in names
    assert "w_CC = 0 vs + CC, w_CC = 0.7" in result.summary
    with pytest.raises(ValueError, match="unknown"):
        dataclasses.replace(SMOKE, choices=("no_such_choice",))
