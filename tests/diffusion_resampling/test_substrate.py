"""DDPM substrate, models, training (with resume), potentials and guidance against oracles."""

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxpapers
from jaxpapers.diffusion_resampling import (
    TrainConfig,
    cfg_eps,
    ddpm_transition,
    detector_log_potential,
    discriminator_guidance,
    discriminator_log_potential,
    epsilon_loss,
    make_ddim_step,
    make_ddpm_step,
    make_schedule,
    predicted_x0,
    q_sample,
    sum_log_potentials,
    train_denoiser,
    train_discriminator,
)
from jaxpapers.diffusion_resampling._potentials import LOGIT_CLIP, detector_term
from jaxpapers.diffusion_resampling.metrics import discriminator_accuracy
from jaxpapers.diffusion_resampling.models import (
    ConvDenoiser,
    ConvDiscriminator,
    TimeMLP,
    eps_fn_from,
    logit_fn_from,
)
from tests.contracts import check_kernel_contract

SCHED = make_schedule(20, "linear", 1e-3, 0.3)


def test_schedules():
    for kind in ("linear", "cosine"):
        s = make_schedule(50, kind)
        abar = np.asarray(s.alpha_bars)
        assert abar[0] == 1.0 and np.all(np.diff(abar) < 0) and abar[-1] > 0
        np.testing.assert_allclose(abar[1:], np.cumprod(1 - np.asarray(s.betas, np.float64)[1:]),
                                   rtol=1e-5)
    with pytest.raises(ValueError, match="kind"):
        make_schedule(10, "quadratic")
    with pytest.raises(ValueError, match="beta"):
        make_schedule(10, "linear", 0.5, 0.1)


def test_q_sample_moments(key):
    x0 = jnp.full((20000, 1), 2.0)
    xt, _ = q_sample(key, x0, 10, SCHED)
    abar = float(SCHED.alpha_bars[10])
    se = np.sqrt((1 - abar) / 20000)
    assert abs(float(xt.mean()) - np.sqrt(abar) * 2) < 4 * se
    assert abs(float(xt.var()) - (1 - abar)) < 4 * (1 - abar) * np.sqrt(2 / 20000)


def _gaussian_eps(m, s):
    """Exact E[eps | x_t] for data N(m, s^2)."""

    def eps_fn(x, t, y=None):
        abar = SCHED.alpha_bars[t][:, None]
        return jnp.sqrt(1 - abar) * (x - jnp.sqrt(abar) * m) / (abar * s**2 + 1 - abar)

    return eps_fn


def _numpy_ddpm_moments(x, t, m, s, clip_x0=None):
    betas = np.asarray(SCHED.betas, np.float64)
    abar = np.cumprod(1 - betas)
    at, as_, b = abar[t], abar[t - 1], betas[t]
    eps = np.sqrt(1 - at) * (x - np.sqrt(at) * m) / (at * s**2 + 1 - at)
    x0 = (x - np.sqrt(1 - at) * eps) / np.sqrt(at)
    if clip_x0 is not None:
        x0 = np.clip(x0, -clip_x0, clip_x0)
    mean = np.sqrt(as_) * b / (1 - at) * x0 + np.sqrt(1 - b) * (1 - as_) / (1 - at) * x
    return mean, b * (1 - as_) / (1 - at)


@pytest.mark.parametrize("which", ["ddpm", "ddim1"])
def test_reverse_step_matches_numpy(key, which):
    """DDPM step moments equal the float64 formula; DDIM with eta = 1 has the same moments."""
    eps_fn = _gaussian_eps(0.7, 0.4)
    step = make_ddpm_step(eps_fn, SCHED) if which == "ddpm" else \
        make_ddim_step(eps_fn, SCHED, eta=1.0)
    x = jnp.full((1, 20000, 1), 0.3)
    out = np.asarray(step(key, x, jnp.int32(7)), np.float64)
    mean, var = _numpy_ddpm_moments(0.3, 7, 0.7, 0.4)
    assert abs(out.mean() - mean) < 4 * np.sqrt(var / out.size)
    assert abs(out.var() - var) < 4 * var * np.sqrt(2 / out.size)


@pytest.mark.parametrize("clip_x0", [None, 0.5])
def test_ddpm_transition_log_prob_matches_numpy(key, clip_x0):
    """log_prob of the reverse kernel is the float64 Gaussian log-density summed over the event."""
    m, s, t = 0.7, 0.4, 7
    key_x, key_prev = jax.random.split(key)
    x = jax.random.normal(key_x, (2, 3, 2))
    x_prev = jax.random.normal(key_prev, (2, 3, 2))
    dist = ddpm_transition(_gaussian_eps(m, s), SCHED, x, jnp.int32(t), clip_x0=clip_x0)
    assert dist.batch_shape == (2, 3) and dist.event_shape == (2,)
    mean, var = _numpy_ddpm_moments(np.asarray(x, np.float64), t, m, s, clip_x0)
    xp = np.asarray(x_prev, np.float64)
    expected = np.sum(-0.5 * np.log(2 * np.pi * var) - (xp - mean) ** 2 / (2 * var), axis=-1)
    # float32 kernel against a float64 reference; atol for log-densities that land near 0
    np.testing.assert_allclose(np.asarray(dist.log_prob(x_prev)), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(dist.mean()), mean, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(np.asarray(dist.variance()), np.broadcast_to(var, mean.shape),
                               rtol=1e-4)
    # a jitted score equals the eager one (the kernel is a pytree of arrays, fine under jit)
    score = jax.jit(lambda z, zp: ddpm_transition(_gaussian_eps(m, s), SCHED, z, jnp.int32(t),
                                                  clip_x0=clip_x0).log_prob(zp))
    np.testing.assert_allclose(np.asarray(score(x, x_prev)), np.asarray(dist.log_prob(x_prev)),
                               rtol=1e-5, atol=1e-6)


def test_ddpm_transition_samples_match_moments(key):
    """Draws of the reverse kernel (sample_shape) have the closed-form mean and variance."""
    m, s, t, n = 0.7, 0.4, 7, 20000
    starts = [0.3, -1.2]
    x = jnp.asarray(starts).reshape(1, 2, 1)  # [G = 1, K = 2, event = 1]
    dist = ddpm_transition(_gaussian_eps(m, s), SCHED, x, jnp.int32(t))
    draws = np.asarray(dist.sample(seed=key, sample_shape=(n,)), np.float64)
    assert draws.shape == (n, 1, 2, 1)
    for k, start in enumerate(starts):
        mean, var = _numpy_ddpm_moments(start, t, m, s)
        d = draws[:, 0, k, 0]
        assert abs(d.mean() - mean) < 5 * np.sqrt(var / n)  # 5 standard errors
        assert abs(d.var() - var) < 5 * var * np.sqrt(2 / n)


def test_ddpm_step_samples_the_transition(key):
    """make_ddpm_step is ddpm_transition(...).sample with the step's key; t = 1 is a point mass."""
    eps_fn = _gaussian_eps(0.7, 0.4)
    x = jax.random.normal(key, (2, 3, 2))
    step = make_ddpm_step(eps_fn, SCHED, clip_x0=1.0)
    for t in (1, 7):
        k = jax.random.key(t)
        dist = ddpm_transition(eps_fn, SCHED, x, jnp.int32(t), clip_x0=1.0)
        np.testing.assert_array_equal(np.asarray(step(k, x, jnp.int32(t))),
                                      np.asarray(dist.sample(seed=k)))
    point = ddpm_transition(eps_fn, SCHED, x, jnp.int32(1))
    np.testing.assert_array_equal(np.asarray(point.sample(seed=key)), np.asarray(point.mean()))


def test_importing_the_package_does_not_load_distrax():
    """distrax (and TensorFlow Probability) load only when a Gaussian kernel is first built."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(jaxpapers.__file__)))
    code = ("import sys, jaxpapers.diffusion_resampling; "
            "assert not {'distrax', 'tensorflow_probability'} & set(sys.modules)")
    path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": path})


def test_eps_fn_of_the_wrong_shape_raises_value_error(key):
    """A wrong eps_fn output would broadcast silently in the loss: it is refused at trace time."""
    half = lambda x, t, y=None: x[..., :1]  # [B, 1] for x [B, 2]
    with pytest.raises(ValueError, match="eps_fn must return an array shaped like its input"):
        epsilon_loss(key, half, jnp.ones((4, 2)), SCHED)
    with pytest.raises(ValueError, match="eps_fn must return an array shaped like its input"):
        jax.jit(make_ddpm_step(half, SCHED))(key, jnp.ones((2, 3, 2)), jnp.int32(5))
    transposed = lambda x, t, y=None: x.T  # same size: a reshape alone would scramble it
    with pytest.raises(ValueError, match="eps_fn must return"):
        make_ddim_step(transposed, SCHED, eta=0.5)(key, jnp.ones((1, 3, 2)), jnp.int32(5))


def test_ddim_deterministic_and_churn(key):
    eps_fn = _gaussian_eps(0.0, 1.0)
    x = jax.random.normal(key, (2, 3, 1))
    a = make_ddim_step(eps_fn, SCHED, eta=0.0)(jax.random.key(1), x, jnp.int32(5))
    b = make_ddim_step(eps_fn, SCHED, eta=0.0)(jax.random.key(2), x, jnp.int32(5))
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    dup = jnp.broadcast_to(x[:, :1], x.shape)  # identical copies diverge only with churn
    churn = make_ddim_step(eps_fn, SCHED, eta=0.0, churn_levels=(5,), churn_steps=2)
    c = np.asarray(churn(jax.random.key(1), dup, jnp.int32(5)))
    assert np.all(np.std(c, axis=1) > 0)
    d = np.asarray(churn(jax.random.key(1), dup, jnp.int32(6)))  # no churn at level 6
    assert np.all(np.std(d, axis=1) == 0)


def test_models_shapes_and_cfg(key):
    mlp = TimeMLP(features=16, depth=2, num_classes=3)
    x = jnp.ones((4, 2))
    t = jnp.arange(4)
    params = jax.jit(mlp.init)(key, x, t, jnp.zeros(4, jnp.int32))
    assert mlp.apply(params, x, t, jnp.zeros(4, jnp.int32)).shape == (4, 2)
    conv = ConvDenoiser(channels=8, num_classes=10)
    img = jnp.ones((3, 8, 8, 1))
    lab = jnp.zeros(3, jnp.int32)
    cp = jax.eval_shape(conv.init, key, img, jnp.arange(3), lab)  # shapes only: no compile
    assert jax.eval_shape(conv.apply, cp, img, jnp.arange(3), lab).shape == img.shape
    disc = ConvDiscriminator(channels=8)
    dp = jax.eval_shape(disc.init, key, img, jnp.arange(3))
    logit = lambda p, z, t: logit_fn_from(disc, p)(z, t)
    assert jax.eval_shape(logit, dp, img, jnp.arange(3)).shape == (3,)
    base = lambda x, t, y: jnp.where(y[:, None] == 3, 1.0, 2.0) * jnp.ones_like(x)
    guided = cfg_eps(base, null_label=3, guidance=0.5)
    np.testing.assert_allclose(np.asarray(guided(x, t, jnp.zeros(4, jnp.int32))), 2.5)


def test_denoiser_training_lowers_loss_and_resumes(key, tmp_path):
    data = jax.random.normal(key, (256, 2)) * 0.1 + 1.0
    mlp = TimeMLP(features=32, depth=2)
    cfg = TrainConfig(steps=60, batch_size=64, learning_rate=3e-3, checkpoint_every=20)
    full, losses = train_denoiser(jax.random.key(1), mlp, data, SCHED, cfg)
    losses = np.asarray(losses)
    assert losses[-20:].mean() < losses[:5].mean()
    # interrupted run: a crash right after the checkpoint at step 40, then resume to 60
    from jaxpapers.experiments import Checkpointer

    first = Checkpointer(str(tmp_path), "test", 0, "denoiser", cfg)
    save = first.save

    def save_then_crash(step, tree):
        save(step, tree)
        if step == 40:
            raise KeyboardInterrupt

    first.save = save_then_crash
    with pytest.raises(KeyboardInterrupt):
        train_denoiser(jax.random.key(1), mlp, data, SCHED, cfg, checkpointer=first)
    resuming = Checkpointer(str(tmp_path), "test", 0, "denoiser", cfg, resume=True)
    assert resuming.latest_step() == 40
    resumed, losses2 = train_denoiser(jax.random.key(1), mlp, data, SCHED, cfg,
                                      checkpointer=resuming)
    for a, b in zip(jax.tree_util.tree_leaves(full), jax.tree_util.tree_leaves(resumed),
                    strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(losses, np.asarray(losses2))


def test_discriminator_learns(key):
    k1, k2, k3 = jax.random.split(key, 3)
    real = jax.random.normal(k1, (2000, 2)) * 0.3 + jnp.array([[1.0, 0.0]])
    fake = jax.random.normal(k2, (2000, 2)) * 0.3 - jnp.array([[1.0, 0.0]])
    disc = TimeMLP(features=32, depth=2, out_features=1)
    cfg = TrainConfig(steps=300, batch_size=128, learning_rate=3e-3, checkpoint_every=300)
    params, losses = train_discriminator(k3, disc, real, fake, SCHED, cfg)
    losses = np.asarray(losses)
    se = losses[:30].std() / np.sqrt(30) + losses[-30:].std() / np.sqrt(30)
    assert losses[-30:].mean() < losses[:30].mean() - 4 * se
    n = 2000
    acc = float(discriminator_accuracy(jax.random.key(9), logit_fn_from(disc, params), real,
                                       fake, SCHED, 1))
    assert acc > 0.5 + 4 * np.sqrt(0.25 / n)


def test_detector_term_oracle():
    d = np.array([0.1, 0.5, 0.9])
    np.testing.assert_allclose(np.asarray(detector_term(d[:, None], 0.0)), 0.0, atol=1e-7)
    prior = 0.2
    expected = np.log(d) - np.log(d + (1 - d) * (1 - prior))  # delta = 1: rho = 1 - pi0
    np.testing.assert_allclose(np.asarray(detector_term(d[:, None], 1.0, prior)), expected,
                               rtol=1e-5)
    delta = 0.4
    rho = delta * (1 - prior) / (prior + delta * (1 - prior))
    np.testing.assert_allclose(np.asarray(detector_term(d[:, None], delta, prior)),
                               np.log(d) - np.log(d + (1 - d) * rho), rtol=1e-5)
    assert np.all(np.asarray(detector_term(jnp.linspace(0, 1, 11)[:, None], 0.7)) <= 1e-7)


def test_potentials_and_guidance(key):
    logit = lambda x, t, y=None: 100.0 * x[:, 0]
    pot = discriminator_log_potential(logit)
    x = jnp.array([[[1.0], [-1.0], [0.001]]])
    np.testing.assert_allclose(np.asarray(pot(x, 3)), [[LOGIT_CLIP, -LOGIT_CLIP, 0.1]],
                               rtol=1e-5)
    # on-the-fly miss rate: 1 of 3 particles has D < 0.5 -> delta = 1/3 in that group
    det = lambda z, c: jax.nn.sigmoid(10 * z)
    x0_fn = predicted_x0(lambda z, t, y=None: jnp.zeros_like(z), SCHED)
    dpot = detector_log_potential(x0_fn, det)
    got = np.asarray(dpot(x, jnp.int32(0)))
    probs = np.asarray(jax.nn.sigmoid(10 * x[0, :, 0]))
    rho = (1 / 3) * 0.8 / (0.2 + (1 / 3) * 0.8)
    np.testing.assert_allclose(got[0], np.log(probs) - np.log(probs + (1 - probs) * rho),
                               rtol=1e-5)
    hyb = sum_log_potentials(pot, dpot)
    np.testing.assert_allclose(np.asarray(hyb(x, jnp.int32(0))),
                               np.asarray(pot(x, 0)) + got, rtol=1e-5)
    # guidance with a linear logit a.x: eps - w sqrt(1 - abar) a
    a = jnp.array([0.5, -2.0])
    guided = discriminator_guidance(lambda z, t, y=None: jnp.zeros_like(z),
                                    lambda z, t, y=None: z @ a, SCHED, weight=2.0)
    t = jnp.array([4, 9])
    out = np.asarray(guided(jnp.ones((2, 2)), t, None))
    expect = -2.0 * np.sqrt(1 - np.asarray(SCHED.alpha_bars)[[4, 9]])[:, None] * np.asarray(a)
    np.testing.assert_allclose(out, expect, rtol=1e-5)


def test_step_contract(key):
    mlp = TimeMLP(features=8, depth=1)
    params = mlp.init(key, jnp.ones((1, 2)), jnp.ones(1, jnp.int32))
    step = make_ddpm_step(eps_fn_from(mlp, params), SCHED)
    x = jnp.ones((2, 3, 2))
    check_kernel_contract(lambda k, z: step(k, z, jnp.int32(5)), x, state_arg=0)
