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
# # Tokens synchronised by common noise: the mean-field transformer SDE
#
# A deep transformer whose MLP weights are redrawn i.i.d. at every layer, with the MLP update
# scaled by $\sqrt{T/L}$, converges as $L \to \infty$ to an Itô SDE on the sphere where every
# token feels the **same** Gaussian noise field (Agazzi et al., arXiv:2604.26898). Common noise
# pushes tokens together: they collapse to a random point. This notebook shows the collapse,
# and how bias, the sign of attention and the activation change it.

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

# %%
import functools

import jax
import matplotlib.pyplot as plt
import numpy as np

from jaxpapers.meanfield import (
    Coefficients,
    ModelConfig,
    kernel_constants,
    transformer_forward,
    uniform_sphere,
)

SMOKE = os.environ.get("JAXPAPERS_SMOKE") == "1"
RUNS = 2 if SMOKE else 8

# %% [markdown]
# ## The kernel decides: $\lambda_1$ and $\bar\lambda$
#
# The infinite-width MLP is a Gaussian field with covariance $\kappa(\langle x,y\rangle) I$.
# Two numbers built from $\kappa(1)$ and $\kappa'(1)$ govern synchronization: the top Lyapunov
# exponent $\lambda_1$ (negative: almost every pair of tokens merges) and
# $\bar\lambda$ (negative: the *mean* energy decays exponentially).

# %%
for act in ["relu", "tanh", "silu", "sigmoid"]:
    for d, s in [(5, 0.0), (64, 0.1)]:
        c = kernel_constants(act, d, s, s)
        print(f"{act:8s} d={d:3d} sigma={s:.1f}  kappa(1)={float(c.kappa1):.4f}  "
              f"lambda1={float(c.lambda1):+.4f}  lambda_bar={float(c.lambda_bar):+.4f}")

# %% [markdown]
# ## Tokens collapsing on the sphere (no attention)
#
# The paper's first figure: $N=64$ tokens in $d=4$, no attention, no bias. We plot the first
# coordinate of every token against depth. ReLU tokens merge into one cluster; tanh is odd
# ($G(-x)=-G(x)$ in law and pathwise), so tokens merge into two antipodal clusters.

# %%
N, D = (16, 4) if SMOKE else (64, 4)
LAYERS, HORIZON, WIDTH = (40, 20.0, 32) if SMOKE else (1000, 20.0, 256)
x0 = uniform_sphere(jax.random.key(0), N, D)
no_attention = Coefficients(beta=1.0, attn_scale=0.0)

fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), sharey=True)
for ax, act in zip(axes, ["relu", "tanh"], strict=True):
    cfg = ModelConfig(num_layers=LAYERS, horizon=HORIZON, activation=act, width=WIDTH,
                      save_every=LAYERS // 40 or 1, save_states=True)
    out = jax.jit(lambda k, x, c=cfg: transformer_forward(k, x, c, no_attention))(
        jax.random.key(1), x0)
    states = np.asarray(out.saved.states)  # [S, N, d]
    layers = np.arange(states.shape[0]) * cfg.save_every
    ax.plot(layers, states[:, :, 0], lw=0.8)
    ax.set_title(f"{act}: first coordinate of {N} tokens")
    ax.set_xlabel("layer")
    print(act, "final 1 - mean cos:", float(out.saved.one_minus_cos[-1]),
          " sign-blind 1 - mean cos^2:", float(out.saved.one_minus_cos_sq[-1]))
fig.tight_layout()

# %% [markdown]
# ## Bias, attention sign and activation
#
# Energy $\mathcal E_\beta$ against depth (median over runs), $N=64$, $L=150$, $T=5$,
# $\beta=1$, $d=64$. Attraction ($+1$) speeds collapse, repulsion ($-1$) resists it; bias makes
# the noise coercive ($\bar\lambda<0$) so the noise alone collapses the tokens; sigmoid is not
# centred ($\varphi(0)\ne0$) and acts as a built-in bias.

# %%
N, D = (16, 8) if SMOKE else (64, 64)
LAYERS, WIDTH = (30, 32) if SMOKE else (150, 256)
keys = jax.random.split(jax.random.key(2), RUNS)
x0s = jax.vmap(lambda k: uniform_sphere(k, N, D))(jax.random.split(jax.random.key(3), RUNS))


@functools.cache
def compiled(act):
    """One compile per activation: the coefficients are traced arguments."""
    cfg = ModelConfig(num_layers=LAYERS, horizon=5.0, activation=act, width=WIDTH, save_every=1)
    run = jax.vmap(lambda k, x, c: transformer_forward(k, x, cfg, c).saved.energy,
                   in_axes=(0, 0, None))
    return jax.jit(run)


def median_energy(act, sigma, attn):
    coeffs = Coefficients(1.0, attn, sigma, sigma)
    return np.median(np.asarray(compiled(act)(keys, x0s, coeffs)), axis=0)


fig, axes = plt.subplots(1, 3, figsize=(13, 3.5), sharey=True)
for attn, ls in [(1.0, "-"), (0.0, "--"), (-1.0, ":")]:
    for sigma, color in [(0.0, "C0"), (0.1, "C3")]:
        axes[0].semilogy(median_energy("relu", sigma, attn), ls=ls, color=color,
                         label=f"attn {attn:+g}, σ={sigma:g}")
axes[0].set_title("ReLU: bias and attention sign")
ACTS = [("relu", "C0"), ("sigmoid", "C4")] if SMOKE else [
    ("relu", "C0"), ("tanh", "C1"), ("silu", "C2"), ("sigmoid", "C4")]
for act, color in ACTS:
    axes[1].semilogy(median_energy(act, 0.0, 0.0), color=color, label=act)
    axes[2].semilogy(median_energy(act, 0.1, 0.0), color=color, label=act)
axes[1].set_title("no attention, σ = 0")
axes[2].set_title("no attention, σ = 0.1")
for ax in axes:
    ax.set_xlabel("layer")
    ax.legend(fontsize=7)
axes[0].set_ylabel(r"median $\mathcal{E}_\beta$")
fig.tight_layout()
