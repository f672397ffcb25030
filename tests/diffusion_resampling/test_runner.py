"""Metrics against brute-force oracles, and the smoke-scale reproduction end to end."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers.diffusion_resampling import toy as tasks
from jaxpapers.experiments import RunContext, reproduce


def test_energy_distance_matches_numpy(key):
    x = np.asarray(jax.random.normal(key, (40, 2)), np.float64)
    y = x[::-1] * 1.5 + 0.3
    d = lambda a, b: np.mean(np.linalg.norm(a[:, None] - b[None], axis=-1))
    expected = 2 * d(x, y) - d(x, x) - d(y, y)
    np.testing.assert_allclose(float(tasks.energy_distance(x, y)), expected, rtol=1e-4)
    assert abs(float(tasks.energy_distance(x, x))) < 1e-5


def test_frechet_distance_closed_form():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(20000, 2))
    b = rng.normal(size=(20000, 2)) * 2.0 + 1.0
    # means differ by (1, 1); covariances I and 4I: trace(I + 4I - 2 * 2I) = 2
    assert abs(tasks.frechet_distance(a, b) - 4.0) < 0.15


def test_frechet_distance_matches_scipy_sqrtm_and_handles_singular_covariances():
    import warnings

    from scipy import linalg

    rng = np.random.default_rng(1)
    a = rng.normal(size=(300, 5)) @ rng.normal(size=(5, 5))
    b = rng.normal(size=(300, 5)) @ rng.normal(size=(5, 5)) + 0.5
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    expected = (np.sum((a.mean(0) - b.mean(0)) ** 2)
                + np.trace(ca + cb - 2 * np.real(linalg.sqrtm(ca @ cb))))
    np.testing.assert_allclose(tasks.frechet_distance(a, b), expected, rtol=1e-8)
    # a feature that is constant in one set (a dead ReLU unit): singular covariance, no warning,
    # and the distance equals the one with that feature's exact contribution added by hand
    a_dead, b_live = a.copy(), b.copy()
    a_dead[:, 0] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = tasks.frechet_distance(a_dead, b_live)
    # 1-D oracle: N(m1, s1^2) vs N(m2, s2^2) -> (m1 - m2)^2 + (s1 - s2)^2
    x = rng.normal(size=(400, 1))
    y = 3.0 * rng.normal(size=(400, 1)) + 2.0
    np.testing.assert_allclose(tasks.frechet_distance(x, y),
                               (x.mean() - y.mean()) ** 2 + (x.std(ddof=1) - y.std(ddof=1)) ** 2,
                               rtol=1e-10)
    np.testing.assert_allclose(tasks.frechet_distance(x * 0.0, y),
                               y.mean() ** 2 + y.var(ddof=1), rtol=1e-10)
    assert np.isfinite(got) and got > 0
    np.testing.assert_allclose(tasks.frechet_distance(a, a), 0.0, atol=1e-8)


def test_ring_detectors():
    centres = tasks.ring_centres()
    occ = tasks.hard_mode_occurrence(jnp.concatenate([centres, centres + 0.6]), (0, 1))
    np.testing.assert_array_equal(np.asarray(occ), [True, True] + [False] * 14)
    probs = tasks.soft_mode_detector((0, 1))(centres)
    assert probs.shape == (8, 1)
    assert float(probs[0, 0]) > 0.99 and float(probs[4, 0]) < 0.01
    assert float(tasks.near_mode_fraction(centres + 0.2)) == 1.0


def check_smoke_results(out):
    """What a smoke run's folder must hold (also checked on the Quickstart test's run)."""
    saved = json.loads((out / "results.json").read_text())
    assert saved["table"] and saved["verdict"]
    assert saved["metrics"]["ring"]["summary"]["plain"]["1"]["ed"]["n"] == 2
    assert len(saved["metrics"]["ring"]["per_replicate"]["PF-Hybrid"]["4"]["occ"]) == 2
    for plot in saved["plots"]:
        assert os.path.getsize(out / plot) > 0


@pytest.mark.slow
def test_smoke_reproduction(tmp_path):
    """In-process (the CI run checks the Quickstart test's CLI run with the same function)."""
    ctx = RunContext(out_dir=str(tmp_path), scale="smoke", seed=0, show_progress=False)
    results = reproduce("diffusion_resampling", ctx)
    assert results["table"] and results["verdict"]
    check_smoke_results(tmp_path)


@pytest.mark.slow
def test_digits_pipeline_runs_at_toy_size(tmp_path):
    from jaxpapers.diffusion_resampling._experiments._digits import digits_task
    from jaxpapers.diffusion_resampling._experiments._images import ImageConfig, run_images
    from jaxpapers.diffusion_resampling._experiments._ring import MethodKey

    cfg = ImageConfig(num_steps=10, channels=8, disc_channels=8, denoiser_steps=20,
                      disc_steps=20, num_real_disc=50, num_fake_disc=64, num_out=20, ks=(2,),
                      replicates=1, resample_levels=(3, 6), conditional_discriminator=True,
                      methods=("plain", "D-Select", "Object-Select", "PF-Hybrid",
                               "PF-Hybrid (on-the-fly δ)", "PF-Discriminator (cond)"),
                      hybrid_disc_weights=(0.5,), ablation_ks=(1,),
                      ablation_methods=("PF-Hybrid",), model_replicates=2)
    ctx = RunContext(out_dir=str(tmp_path), scale="paper", show_progress=False,
                     method="diffusion_resampling")
    results, samples, reference, info = run_images(ctx, jax.random.key(0), digits_task(), cfg)
    assert samples[MethodKey("PF-Hybrid", 2)].shape == (20, 8, 8, 1)
    assert samples[MethodKey("PF-Discriminator (cond)", 2)].shape == (20, 8, 8, 1)
    assert all(np.isfinite(v["fd"][0]) for v in results.values())
    assert all(len(v["fd"]) == 2 for v in results.values())  # one mean per model set
    assert 0.9 < reference["occ"] <= 1.0  # the evaluator on real digits
    hybrid = results[MethodKey("PF-Hybrid", 2)]
    assert all(1.0 <= x <= 2.0 for x in hybrid["lineages"])
    assert all(0.0 <= x <= 1.0 for x in hybrid["det_flat"] + hybrid["det_pick_occ"])
    assert MethodKey("PF-Hybrid (disc. weight 0.5)", 1) in results
    assert MethodKey("Object-Select", 1) not in results
    assert info["miss_rate_levels"] == [6, 3, 0]
    assert 0.0 <= info["diagnostics"]["cdisc_true_label_higher_on_real"] <= 1.0
