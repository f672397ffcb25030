# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # SMC resampling kernels in JAX
#
# `jaxpapers.smc` provides four resampling schemes (multinomial, stratified, systematic,
# residual) as pure, jittable functions `scheme(key, weights, num_samples) -> int32[M]`,
# plus log-weight normalisation, ESS and an ESS-adaptive rule. This notebook shows what each
# scheme does, checks the exact offspring-count variances, and runs a bootstrap particle filter
# whose likelihood we know exactly (Kalman).

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

from jaxpapers import smc

print(jax.devices())

# %% [markdown]
# ## One step, four schemes
# The same weights, the same key: each scheme returns sorted ancestor indices. Systematic gives
# every particle `floor(M W_i)` or `ceil(M W_i)` copies.

# %%
key = jax.random.key(0)
weights = jnp.array([0.5, 0.25, 0.125, 0.0625, 0.0625])
for name, fn in smc.RESAMPLERS.items():
    print(f"{name:12s}", fn(key, weights, 5))

# %% [markdown]
# ## Offspring-count variance: measured against the exact formulas
# `vmap` over many keys gives many independent resampling steps at once.

# %%
replicates = 2_000 if SMOKE else 20_000
keys = jax.random.split(key, replicates)
measured = {}
for name, fn in smc.RESAMPLERS.items():
    counts = jax.jit(jax.vmap(lambda k, f=fn: jnp.bincount(f(k, weights, 5), length=5)))(keys)
    measured[name] = np.asarray(counts, np.float64).var(0)
exact = {"multinomial": 3.3203, "stratified": 1.5391, "systematic": 1.1016, "residual": 1.5508}
for name in smc.RESAMPLERS:
    print(f"{name:12s} sum Var(N_i): measured {measured[name].sum():.3f}  exact {exact[name]:.3f}")

fig, ax = plt.subplots(figsize=(6, 3))
for offset, name in enumerate(smc.RESAMPLERS):
    ax.bar(np.arange(5) + 0.2 * offset, measured[name], width=0.2, label=name)
ax.set_xlabel("particle i")
ax.set_ylabel("Var(N_i)")
ax.legend()
plt.show()

# %% [markdown]
# ## Many groups at once
# Log-weights of shape `[G, K]` (G independent groups of K particles) resample within groups
# with `vmap`; the same code shards over devices with `jax.sharding`.

# %%
groups, per_group = (8, 16) if SMOKE else (1024, 64)
log_w = jax.random.normal(jax.random.key(1), (groups, per_group)) * 2.0
group_keys = jax.random.split(jax.random.key(2), groups)
indices = jax.jit(jax.vmap(lambda k, lw: smc.resample(k, lw, "systematic")))(group_keys, log_w)
print(indices.shape, indices.dtype, "ESS of group 0:", float(smc.ess(log_w[0])))

# %% [markdown]
# ## A particle filter with an exact answer
# A scalar linear-Gaussian state-space model: the Kalman filter gives `log p(y)` exactly, so
# we can see the bias and variance of the particle estimate under each scheme.

# %%
model = smc.LGSSM(transition=0.9, transition_scale=1.0, observation_scale=0.5)
_, ys = smc.simulate(jax.random.key(3), model, 20 if SMOKE else 50)
exact_ll = float(smc.kalman_log_likelihood(model, ys))
runs = 64 if SMOKE else 1000
run_keys = jax.random.split(jax.random.key(4), runs)
errors = {}
for name in smc.RESAMPLERS:
    pf = jax.jit(jax.vmap(lambda k, s=name: smc.bootstrap_particle_filter(
        k, model, ys, 128, s).log_likelihood))
    errors[name] = np.asarray(pf(run_keys)) - exact_ll
    print(f"{name:12s} bias {errors[name].mean():+.3f}  variance {errors[name].var():.3f}")

fig, ax = plt.subplots(figsize=(6, 3))
ax.boxplot(list(errors.values()), tick_labels=list(errors))
ax.axhline(0, color="k", lw=0.5)
ax.set_ylabel("log Ẑ − log Z")
plt.show()
