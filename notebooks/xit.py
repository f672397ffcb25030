# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # XIT: pretraining one encoder on many time-series datasets at once
#
# `jaxpapers.xit` implements XIT (Kraus et al., arXiv 2402.15404) on top of TS-TCC: a batch
# drawn across several UCR/UEA datasets, XD-MixUp blends every series with a partner from
# another dataset, and SICC asks the context of the blend to sit between its two parents'
# contexts in proportion. This notebook mixes series from the UCR/UEA sets that ship with
# the package, pretrains a small encoder, and looks at the latent space before and after.

# %%
import os
import subprocess
import sys

# The package's source, declared once in pyproject.toml ([project.urls] Repository).
SOURCE = "https://github.com/jaxpapers/jaxpapers"
if "google.colab" in sys.modules:  # install the package in Colab; skipped elsewhere
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", f"jaxpapers @ git+{SOURCE}"],
                   check=True)

from jaxpapers.experiments import enable_compile_cache

enable_compile_cache()  # reuse compiled programs across sessions (JAXPAPERS_COMPILE_CACHE=off: no)

SMOKE = os.environ.get("JAXPAPERS_SMOKE") == "1"

# %%
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from jaxpapers import xit
from jaxpapers.experiments import train_loop

print(jax.devices())
print("sets shipped with the package:", xit.data.available_datasets())

# %% [markdown]
# ## A pool of unrelated datasets
# Every series is resampled to one length, z-normalised and split into channels; each row
# carries its dataset id. Sampling is uniform over datasets, so the 6-channel BasicMotions does
# not dominate. As in the paper's UCR experiment, the unlabelled TRAIN split of a set we later
# fine-tune on (GunPoint) is part of the pool; its TEST split never is. Augmentation strengths
# are a config value per pool (TS-TCC's weak Epilepsy strengths here) and per set
# (`augment_overrides`).

# %%
NAMES = ("UnitTest", "ItalyPowerDemand", "BasicMotions", "OSULeaf", "ACSF1")
if SMOKE:
    model = xit.ModelConfig(length=32, channels=(8, 8, 16), tc_width=16, tc_depth=1,
                            tc_heads=2, tc_mlp=16, timesteps=2)
    cfg = xit.PretrainConfig(batch_size=16, steps=4, augment=xit.augment.WEAK_AUGMENT)
else:
    model = xit.ModelConfig()
    cfg = xit.PretrainConfig(batch_size=64, steps=200, augment=xit.augment.WEAK_AUGMENT)
others = xit.data.build_pool(NAMES, model.length)
target = xit.data.build_pool(("GunPoint",), model.length, splits=("train",))
pool = xit.data.Pool(np.concatenate([others.x, target.x]),
                np.concatenate([others.ds_id, target.ds_id + len(NAMES)]),
                NAMES + ("GunPoint",),
                np.concatenate([others.offsets, [others.x.shape[0]]]).astype(np.int32),
                np.concatenate([others.counts, target.counts]).astype(np.int32))
print({n: int(c) for n, c in zip(pool.names, pool.counts)})

# %% [markdown]
# ## XD-MixUp
# Partners come from another dataset whenever no dataset holds more than half the batch;
# `lam ~ Beta(0.2, 0.2)` is U-shaped, so most blends stay close to one parent.

# %%
log_p = jnp.log(jnp.asarray(xit.data.dataset_probabilities(pool.counts), jnp.float32))
x, ds = xit.data.sample_batch(jax.random.key(0), jnp.asarray(pool.x), pool.offsets,
                              pool.counts, log_p, 16)
x_mix, perm, lam = jax.jit(xit.xd_mixup, static_argnums=(3,))(jax.random.key(1), x, ds, 0.5)
fig, axes = plt.subplots(2, 3, figsize=(12, 5))
for ax, i in zip(axes.ravel(), range(6)):
    j = int(perm[i])
    ax.plot(x[i, 0], lw=1, label=f"{pool.names[int(ds[i])]}")
    ax.plot(x[j, 0], lw=1, label=f"{pool.names[int(ds[j])]}")
    ax.plot(x_mix[i, 0], "k", lw=2, label=f"mix, lam = {float(lam[i]):.2f}")
    ax.legend(fontsize=7)
fig.suptitle("XD-MixUp: each series blended with a partner from another dataset")
plt.show()

# %% [markdown]
# ## Pretraining with the XIT objective
# `make_pretrain_step` returns `step(keys, state, ...)` for stacked runs (here one): run `r`'s
# step `i` draws its batch, augmentations and mixing from `fold_in(keys[r], i)`. The toolkit's
# `train_loop` (jitted `lax.scan` chunks) calls `update(loop_key, state, *args)`; the runs'
# keys travel in `args`, so the loop's own key is not needed.

# %%
state0 = xit.init_pretrain(jax.random.key(2), model, cfg)
state = jax.tree_util.tree_map(lambda a: a[None], state0)._replace(step=jnp.int32(0))
args = (jax.random.split(jax.random.key(3), 1), jnp.asarray(pool.x), jnp.asarray(pool.offsets),
        jnp.asarray(pool.counts), log_p[None],
        jnp.asarray([xit.OBJECTIVES["xit"].as_tuple()], jnp.float32),
        jnp.asarray(xit.augment.augment_table(cfg, pool.names)))
step = xit.make_pretrain_step(model, cfg)


def update(loop_key, state, keys, *rest):
    return step(keys, state, *rest)
if SMOKE:  # CI executes the notebook: the pretraining step's compile alone exceeds its budget
    print("JAXPAPERS_SMOKE=1: pretraining skipped; 'after' below shows the initial encoder")
else:
    state, info = train_loop(update, state, jax.random.key(0), cfg.steps, args=args,
                             chunk=cfg.steps)
    chance = xit.metrics.chance_levels(cfg)  # each loss when every candidate is equally likely
    fig, ax = plt.subplots(figsize=(6, 3))
    for name, colour in (("tc", "C0"), ("sicc", "C1")):
        ax.plot(np.asarray(getattr(info, name))[:, 0], colour, label=name)
        ax.axhline(chance[name], color=colour, ls="--", lw=1, label=f"{name} at chance")
    ax.set_xlabel("step")
    ax.legend(fontsize=7)
    plt.show()

# %% [markdown]
# ## The latent space before and after
# Time-averaged encoder latents of series from each dataset, first two principal components.

# %%
encoder = model.encoder()


@jax.jit  # one compile for both encoders
def features(params, stats, xs):
    z = encoder.apply({"params": params, "batch_stats": stats}, xs)
    z = z / jnp.linalg.norm(z, axis=-1, keepdims=True)
    return z.mean(axis=1)


rng = np.random.default_rng(0)
idx = np.concatenate([rng.choice(np.arange(o, o + c), min(c, 40), replace=False)
                      for o, c in zip(pool.offsets, pool.counts)])
xs = jnp.asarray(pool.x[idx])
after = jax.tree_util.tree_map(lambda a: a[0], (state.params["encoder"],
                                                state.batch_stats["encoder"]))
fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
for ax, (title, (p, s)) in zip(axes, [("before", (state0.params["encoder"],
                                                  state0.batch_stats["encoder"])),
                                      ("after", after)]):
    f = np.asarray(features(p, s, xs))
    f = f - f.mean(0)
    xy = f @ np.linalg.svd(f, full_matrices=False)[2][:2].T
    for d, name in enumerate(pool.names):
        m = pool.ds_id[idx] == d
        ax.scatter(xy[m, 0], xy[m, 1], s=8, label=name)
    ax.set_title(f"{title} pretraining")
axes[1].legend(fontsize=8)
plt.show()

# %% [markdown]
# `jaxpapers reproduce xit --scale quick` fine-tunes such encoders on ArrowHead and GunPoint
# (their TRAIN splits in the pool; a second panel holds them out) with 1 and 5 labels per class,
# against training from scratch, TS-TCC and ablations; `--scale indomain` checks TS-TCC on each
# target's own TRAIN split with TS-TCC's protocol.
