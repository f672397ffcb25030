"""Finite-depth model: pathwise identities, invariances, diagnostics, chunking, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers.meanfield import (
    Coefficients,
    ModelConfig,
    attention,
    layer_map,
    lyapunov_exponent,
    sde_solve,
    transformer_forward,
    uniform_sphere,
)
from jaxpapers.meanfield._layers import MLPWeights, sample_layer_weights
from jaxpapers.meanfield.metrics import (
    diameter,
    energy,
    one_minus_mean_cos,
    one_minus_mean_cos_sq,
    order_parameter,
)
from tests.contracts import check_kernel_contract

N, D, L, M = 6, 4, 5, 16


def _x0(seed=1, n=N, d=D):
    return uniform_sphere(jax.random.key(seed), n, d)


def _loop(key, x0, cfg, coeffs, transform=None):
    """Python loop over layer_map with explicitly drawn weights (independent of the scan)."""
    x = x0
    for layer in range(cfg.num_layers):
        w = sample_layer_weights(jax.random.fold_in(key, layer), x0.shape[1], cfg.width,
                                 coeffs.sigma_u, coeffs.sigma_w, x0.dtype)
        if transform is not None:
            w = transform(w)
        x = layer_map(x, w, cfg.dt, coeffs, cfg.activation)
    return x


def test_scan_equals_layer_loop_and_stays_on_sphere(key):
    cfg = ModelConfig(num_layers=L, horizon=2.0, width=M, save_every=1)
    coeffs = Coefficients(1.0, 1.0, 0.1, 0.2)
    out = jax.jit(lambda k, x: transformer_forward(k, x, cfg, coeffs))(key, _x0())
    np.testing.assert_allclose(out.x, _loop(key, _x0(), cfg, coeffs), rtol=2e-5, atol=2e-6)
    assert out.saved.energy.shape == (L + 1,)
    gp = sde_solve(key, _x0(), cfg.replace(noise="gp", save_states=True), coeffs)
    assert np.max(np.abs(np.linalg.norm(gp.saved.states, axis=-1) - 1)) < 1e-5


def test_rotation_equivariance(key):
    cfg = ModelConfig(num_layers=4, horizon=1.0, width=M, activation="silu")
    coeffs = Coefficients(1.5, 1.0, 0.2, 0.3)
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(D, D)))
    o = jnp.asarray(q, jnp.float32)
    rotate = lambda w: MLPWeights(w.u @ o.T, w.b_u, o @ w.w, o @ w.b_w)
    plain = _loop(key, _x0(), cfg, coeffs)
    rotated = _loop(key, _x0() @ o.T, cfg, coeffs, transform=rotate)
    np.testing.assert_allclose(rotated, plain @ o.T, atol=3e-6)


@pytest.mark.parametrize("noise,scheme", [("mlp", "ln"), ("features", "ito"), ("mlp", "heun")])
def test_permutation_equivariance(key, noise, scheme):
    cfg = ModelConfig(num_layers=L, horizon=1.0, width=M, noise=noise, scheme=scheme)
    perm = np.random.default_rng(1).permutation(N)
    coeffs = Coefficients(1.0, -1.0, 0.1, 0.1)
    run = jax.jit(lambda x: sde_solve(key, x, cfg, coeffs).x)
    np.testing.assert_allclose(run(_x0()[perm]), run(_x0())[perm], atol=2e-6)


def test_odd_field_gives_odd_flow_and_antipodal_pairs(key):
    cfg = ModelConfig(num_layers=L, horizon=2.0, width=M, activation="tanh")
    coeffs = Coefficients(1.0, 1.0, 0.0, 0.0)
    run = jax.jit(lambda x, c: transformer_forward(key, x, cfg, c).x)
    np.testing.assert_allclose(run(-_x0(), coeffs), -run(_x0(), coeffs), atol=1e-6)
    x = _x0(n=1)
    pair = run(jnp.concatenate([x, -x]), coeffs._replace(attn_scale=0.0))
    np.testing.assert_allclose(pair[0], -pair[1], atol=1e-6)


def test_linear_activation_without_attention_is_a_matrix_product(key):
    with jax.enable_x64(True):
        cfg = ModelConfig(num_layers=L, horizon=1.0, width=M, activation="linear")
        coeffs = Coefficients(1.0, 0.0, 0.0, 0.0)
        x0 = uniform_sphere(jax.random.key(3), N, D, jnp.float64)
        x = np.asarray(transformer_forward(key, x0, cfg, coeffs).x)
        z = np.asarray(x0, np.float64).T
        for layer in range(L):
            w = sample_layer_weights(jax.random.fold_in(key, layer), D, M, 0.0, 0.0, jnp.float64)
            a = np.asarray(w.w) @ np.asarray(w.u) / np.sqrt(D * M)
            z = (np.eye(D) + np.sqrt(cfg.dt) * a) @ z
        want = (z / np.linalg.norm(z, axis=0)).T
        np.testing.assert_allclose(x, want, rtol=1e-12, atol=1e-12)


def test_attention_only_energy_does_not_increase():
    cfg = ModelConfig(num_layers=100, horizon=5.0, noise="none", save_every=1)
    x0 = _x0(n=16, d=3)
    e = sde_solve(jax.random.key(0), x0, cfg, Coefficients(2.0, 1.0)).saved.energy
    increments = np.diff(np.asarray(e))
    # spec oracle 10: non-increasing up to O(dt^2) per step; also a real decrease overall
    assert increments.max() <= cfg.dt**2, increments.max()
    assert e[-1] < 0.9 * e[0]


def test_diagnostics_against_numpy():
    x = np.asarray(_x0(n=7, d=3), np.float64)
    u = x @ x.T
    off = ~np.eye(7, dtype=bool)
    np.testing.assert_allclose(energy(x, 0.7), np.mean(np.exp(0.7) - np.exp(0.7 * u)) / 2,
                               rtol=1e-5)
    np.testing.assert_allclose(one_minus_mean_cos(x), 1 - u[off].mean(), atol=1e-6)
    np.testing.assert_allclose(one_minus_mean_cos_sq(x), 1 - (u[off] ** 2).mean(), atol=1e-6)
    np.testing.assert_allclose(order_parameter(x), np.linalg.norm(x.mean(0)), rtol=1e-6)
    dist = np.linalg.norm(x[:, None] - x[None], axis=-1).max()
    np.testing.assert_allclose(diameter(x), dist, rtol=1e-5)
    np.testing.assert_allclose(float(energy(np.repeat(x[:1], 5, 0), 2.0)), 0.0, atol=1e-6)


@pytest.mark.parametrize("parallel", [False, True])
def test_chunked_equals_dense(parallel, monkeypatch):
    """Blocked attention (query blocks mapped one at a time, as on the CPU, or batched, as on
    an accelerator), energy and diameter against their dense forms."""
    from jaxpapers.meanfield import _layers

    monkeypatch.setattr(_layers, "_query_blocks_in_parallel", lambda: parallel)
    x = _x0(n=37, d=8)
    qk = jax.random.normal(jax.random.key(5), (8, 8)) * 3.0  # large logits: needs online softmax
    v = jax.random.normal(jax.random.key(6), (8, 8))

    @jax.jit
    def both(x, qk, v):
        out = []
        for block in (4, 5, 64):  # divides N - 1, leaves a remainder, exceeds N
            for kw in [dict(), dict(qk=qk, value=v)]:
                out.append((attention(x, 2.0, -1.0, block_size=block, **kw),
                            attention(x, 2.0, -1.0, **kw)))
            out.append((energy(x, 1.3, block), energy(x, 1.3)))
            out.append((diameter(x, block), diameter(x)))
        return out

    for chunked, dense in both(x, qk, v):
        np.testing.assert_allclose(chunked, dense, rtol=1e-5, atol=1e-5)
    cfg = ModelConfig(num_layers=3, width=8, save_every=1)
    run = jax.jit(lambda c: sde_solve(jax.random.key(0), x, c), static_argnums=0)
    a, b = run(cfg), run(cfg.replace(block_size=5))
    np.testing.assert_allclose(b.x, a.x, atol=2e-5)
    np.testing.assert_allclose(b.saved.energy, a.saved.energy, atol=2e-5)


def test_kernel_contracts():
    x0 = _x0(n=3, d=3)
    base = ModelConfig(num_layers=3, horizon=1.0, width=8)
    coeffs = Coefficients(1.0, 1.0, 0.1, 0.1)
    check_kernel_contract(lambda k, x: transformer_forward(k, x, base, coeffs), x0)
    check_kernel_contract(lambda k, x: sde_solve(k, x, base.replace(noise="gp"), coeffs), x0)
    check_kernel_contract(lambda k, x: lyapunov_exponent(k, x[:1], base, coeffs), x0)
    check_kernel_contract(lambda k: uniform_sphere(k, 4, 3))
    check_kernel_contract(lambda k: sample_layer_weights(k, 3, 4, 0.1, 0.1))


def test_bad_input(key):
    cfg = ModelConfig(num_layers=2, width=4)
    with pytest.raises(ValueError, match="d must be >= 2"):
        transformer_forward(key, jnp.ones((3, 1)), cfg)
    with pytest.raises(ValueError, match="unit-norm"):
        transformer_forward(key, 2 * _x0(), cfg)
    with pytest.raises(ValueError, match="unit-norm"):
        transformer_forward(key, _x0().at[0, 0].set(jnp.nan), cfg)
    # under jit the bad row is NaN-flagged and attention spreads it: a NaN output, not garbage
    out = jax.jit(lambda x: transformer_forward(key, x, cfg).x)(_x0().at[2].multiply(2.0))
    assert np.all(np.isnan(out))
    with pytest.raises(ValueError, match="activation"):
        ModelConfig(num_layers=2, activation="gelu")
    with pytest.raises(ValueError, match="num_layers"):
        ModelConfig(num_layers=0)
    with pytest.raises(ValueError, match="horizon"):
        ModelConfig(num_layers=2, horizon=0.0)
    with pytest.raises(ValueError, match="horizon"):
        ModelConfig(num_layers=2, horizon=-1.0)
    with pytest.raises(ValueError, match="save_every"):
        ModelConfig(num_layers=5, save_every=2)
    with pytest.raises(ValueError, match="scheme"):
        ModelConfig(num_layers=5, noise="gp", scheme="heun")
    with pytest.raises(ValueError, match="sigma_u"):
        transformer_forward(key, _x0(), cfg, Coefficients(sigma_u=-0.1))


def test_chaos_proxies_against_numpy():
    from jaxpapers.meanfield.metrics import chaos_proxies

    x, y = np.asarray(_x0(n=5, d=3)), np.asarray(_x0(seed=2, n=9, d=3))
    dm, dm2, de = chaos_proxies(x, y, 1.0)
    np.testing.assert_allclose(dm, np.sum((x.mean(0) - y.mean(0)) ** 2), rtol=1e-5)
    np.testing.assert_allclose(dm2, np.sum((x.T @ x / 5 - y.T @ y / 9) ** 2), rtol=1e-5)
    np.testing.assert_allclose(de, abs(float(energy(x, 1.0)) - float(energy(y, 1.0))), rtol=1e-5)
    assert all(float(v) == 0.0 for v in chaos_proxies(x, x, 1.0))


def _clustered(key, n, d, spread):
    """float32 unit tokens within about ``spread`` of one direction, and their float64 copy."""
    k1, k2 = jax.random.split(key)
    centre = jax.random.normal(k1, (d,))
    x = (centre / jnp.linalg.norm(centre))[None] + spread * jax.random.normal(k2, (n, d))
    x = x / jnp.linalg.norm(x, axis=-1, keepdims=True)
    x32 = np.asarray(x, np.float32)
    return x32, x32.astype(np.float64)  # the stored float32 points, exactly


def _float64_diagnostics(x, beta):
    """Independent oracle: pairwise differences in float64 (no cancellation against 1)."""
    diff = x[:, None, :] - x[None, :, :]
    d2 = np.sum(diff * diff, -1)
    n = len(x)
    u = 1.0 - d2 / 2
    off = ~np.eye(n, dtype=bool)
    return {"energy": np.sum(-np.exp(beta) * np.expm1(-beta * d2 / 2)) / (2 * n * n),
            "one_minus_cos": np.mean(d2[off] / 2),
            "one_minus_cos_sq": np.mean((1 - u * u)[off]),
            "diameter": np.sqrt(d2.max())}


@pytest.mark.parametrize("spread", [1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 3e-6])
def test_diagnostics_keep_float32_precision_near_collapse(key, spread):
    from jaxpapers.meanfield.metrics import diameter, one_minus_mean_cos, one_minus_mean_cos_sq

    x32, x64 = _clustered(key, 48, 5, spread)
    want = _float64_diagnostics(x64, 1.3)
    got = {"energy": energy(x32, 1.3), "one_minus_cos": one_minus_mean_cos(x32),
           "one_minus_cos_sq": one_minus_mean_cos_sq(x32), "diameter": diameter(x32)}
    blocked = {"energy": energy(x32, 1.3, 7), "diameter": diameter(x32, 7)}
    if spread == 3e-6:  # E ~ 1e-10, where e^beta - mean(e^{beta u}) in float32 is pure rounding
        assert 1e-11 < want["energy"] < 1e-9
        naive = 0.5 * (np.exp(1.3) - np.mean(np.exp(1.3 * (x32 @ x32.T)), dtype=np.float32))
        assert abs(naive - want["energy"]) > 0.5 * want["energy"]
    for name, value in got.items():
        np.testing.assert_allclose(float(value), want[name], rtol=2e-3, err_msg=name)
    for name, value in blocked.items():
        np.testing.assert_allclose(float(value), want[name], rtol=2e-3, err_msg=name)


def test_blocked_projector_spread_matches_float64(key):
    from jaxpapers.meanfield.metrics import one_minus_mean_cos_sq

    x32, x64 = _clustered(key, 300, 4, 1e-4)   # more tokens than one projector block
    want = _float64_diagnostics(x64, 1.0)["one_minus_cos_sq"]
    np.testing.assert_allclose(float(one_minus_mean_cos_sq(x32)), want, rtol=2e-3)


def _w2_squared_numpy(a, b, grid=200_000):
    """Oracle: the quantile integral on a fine grid (float64)."""
    q = (np.arange(grid) + 0.5) / grid
    qa = np.sort(a)[np.minimum((q * len(a)).astype(int), len(a) - 1)]
    qb = np.sort(b)[np.minimum((q * len(b)).astype(int), len(b) - 1)]
    return np.mean((qa - qb) ** 2)


def test_sliced_wasserstein_against_quantile_oracle(key):
    from jaxpapers.meanfield._metrics import _w2_squared_1d
    from jaxpapers.meanfield.metrics import sliced_wasserstein

    rng = np.random.default_rng(0)
    for n, m in ((3, 5), (4, 4), (7, 12)):
        a, b = rng.normal(size=n), rng.normal(size=m) + 0.3
        np.testing.assert_allclose(float(_w2_squared_1d(jnp.asarray(a), jnp.asarray(b))),
                                   _w2_squared_numpy(a, b), rtol=1e-4)
    x = _x0(n=40, d=5)
    assert float(sliced_wasserstein(key, x, x)) < 1e-6
    # a rotation by a small angle moves every point by about the angle
    angle = 0.05
    rot = np.eye(5)
    rot[:2, :2] = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
    moved = float(sliced_wasserstein(key, x, x @ jnp.asarray(rot, x.dtype).T, 256))
    assert 0.0 < moved < angle
    far = float(sliced_wasserstein(key, x, -x[:10], 256))
    assert far > moved
