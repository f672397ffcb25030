"""Mean-field transformer SDE: our scan-based solvers against diffrax, and model throughput.

(a) The Itô SDE with a fixed-feature common-noise field (``noise="features"``), solved by our
    Euler–Maruyama (one ``lax.scan``) and by ``diffrax.diffeqsolve`` with ``Euler`` and a
    ``ControlTerm`` whose diffusion is a lineax operator, at the same N, d, M, step count and runs
    (same scheme and step, hence the same strong accuracy; the mean final energy of both is
    printed with its standard error as a check that they solve the same SDE). Our LN scheme is
    timed too. The *floor* is timed in the same run: a scan that only draws the per-step noise
    (an ``[M+1, d]`` Gaussian, drawn as ``sde_solve`` draws it) and computes the attention, the
    two costs any solver of this SDE pays; ours is reported as a multiple of it (goal <= 1.2x),
    and of the floor plus the feature field's evaluations (features, their squares' sum, the
    increment). Our solver is also timed with ``rbg`` keys (``jax.random.key(seed,
    impl="rbg")``: faster bits, not reproducible across backends), beside the default threefry
    keys; the floor is timed with both key kinds. The calls of one case are interleaved (each
    round times each once), so a drift in the machine's speed lands on every column alike.
(b) Throughput of the finite-depth model (``transformer_forward``, fresh MLP weights every
    layer, ``m = 4d``) in token-layers per second, and the fraction of the machine's matmul peak
    it reaches (peak measured in the same run with a plain ``jnp`` matmul). Large ``N`` uses the
    blocked attention (no ``N x N`` array).

Run: ``python benchmarks/meanfield.py [--smoke] [--json out.json] [--repeats 7]``.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax import lax  # noqa: E402

from jaxpapers.experiments.bench import (  # noqa: E402
    device_name,
    header,
    parser,
    ratio_table,
    time_call,
    time_interleaved,
    write_json,
)
from jaxpapers.meanfield import (  # noqa: E402
    ACTIVATIONS,
    Coefficients,
    ModelConfig,
    attention,
    sample_layer_weights,
    sde_solve,
    transformer_forward,
    uniform_sphere,
)
from jaxpapers.meanfield.metrics import energy  # noqa: E402


def layer_norm(v):
    """``v / |v|`` row-wise (the anchor's own copy of the model's layer norm)."""
    return v / jnp.linalg.norm(v, axis=-1, keepdims=True)


def tangent_project(x, v):
    """``v - <x, v> x`` row-wise: the projection onto the sphere's tangent space at ``x``."""
    return v - jnp.sum(x * v, axis=-1, keepdims=True) * x


def _diffrax_solver(cfg: ModelConfig, coeffs: Coefficients, d: int):
    """The same Itô SDE as ``sde_solve(scheme="ito", noise="features")``, through diffrax."""
    import diffrax
    import lineax as lx

    phi = ACTIVATIONS[cfg.activation]
    m = cfg.width

    def solve(key, x0):
        feat_key, path_key = jax.random.split(key)
        feats = sample_layer_weights(feat_key, d, m, coeffs.sigma_u, 0.0, x0.dtype)

        def features(y):
            hidden = phi(y @ feats.u.T / jnp.sqrt(float(d)) + feats.b_u[None]) / jnp.sqrt(float(m))
            return jnp.concatenate(
                [hidden, jnp.full(y.shape[:1] + (1,), coeffs.sigma_w, y.dtype)], axis=-1)

        def drift(t, y, args):
            kxx = jnp.sum(features(y) ** 2, axis=-1)
            att = attention(y, coeffs.beta, coeffs.attn_scale)
            return tangent_project(y, att) - 0.5 * (d - 1) * kxx[:, None] * y

        def diffusion(t, y, args):
            fy = features(y)
            return lx.FunctionLinearOperator(lambda db: tangent_project(y, fy @ db),
                                             jax.ShapeDtypeStruct((m + 1, d), y.dtype))

        bm = diffrax.UnsafeBrownianPath(shape=(m + 1, d), key=path_key,
                                        levy_area=diffrax.BrownianIncrement)
        terms = diffrax.MultiTerm(diffrax.ODETerm(drift), diffrax.ControlTerm(diffusion, bm))
        sol = diffrax.diffeqsolve(terms, diffrax.Euler(), 0.0, cfg.horizon, cfg.dt, x0,
                                  saveat=diffrax.SaveAt(t1=True), max_steps=cfg.num_layers,
                                  adjoint=diffrax.ForwardMode())
        return sol.ys[-1]

    return solve


def _floor(cfg: ModelConfig, coeffs: Coefficients, d: int, features: bool = False):
    """Noise draws and attention only, through the same steps and the same key derivation.

    The draws are ``sde_solve``'s numbers (``jax.random.normal``; ``sde_solve`` computes the same
    numbers through a fused hash, so this floor is, if anything, slower), and every row of them
    is used (summed into the update, ``O(M d)``), so that XLA cannot leave rows undrawn. With
    ``features=True`` the step also evaluates what the Itô step needs of the feature field (the
    ``N x M`` features, their squares' sum and the ``N x d`` increment): the floor of this SDE's
    evaluations, without the projections and the update.
    """
    dt = cfg.dt
    m = cfg.width
    phi = ACTIVATIONS[cfg.activation]

    def solve(key, x0):
        feat_key, path_key = jax.random.split(key)
        feats = sample_layer_weights(feat_key, d, m, coeffs.sigma_u, 0.0, x0.dtype)

        def body(x, layer):
            db = jax.random.normal(jax.random.fold_in(path_key, layer), (m + 1, d), x.dtype)
            att = attention(x, coeffs.beta, coeffs.attn_scale)
            new = x + dt * att + jnp.sum(db, axis=0)
            if features:
                h = phi(x @ feats.u.T / jnp.sqrt(float(d)) + feats.b_u[None]) / jnp.sqrt(float(m))
                new = new + h @ db[:-1] + jnp.sum(h * h, axis=-1, keepdims=True)
            return new, None

        return lax.scan(body, x0, jnp.arange(cfg.num_layers))[0]

    return solve


def _energy_text(values):
    """Mean ± SE of the final energies with enough digits to compare values near zero."""
    values = np.asarray(values, np.float64)
    return f"{values.mean():.4e} ± {values.std(ddof=1) / np.sqrt(values.size):.1e}"


def bench_sde(args, rows):
    sizes = [(16, 5, 16, 20, 8)] if args.smoke else [
        (8, 5, 16, 1000, 64), (64, 5, 64, 150, 64), (64, 64, 256, 150, 16)]
    coeffs = Coefficients(1.0, 1.0, 0.1, 0.1)
    try:
        import diffrax  # noqa: F401
        have_diffrax = True
    except ImportError:
        have_diffrax = False
        print("diffrax not installed: anchor column skipped")
    table_rows = []
    for n, d, m, steps, runs in sizes:
        cfg = ModelConfig(num_layers=steps, horizon=5.0, width=m, noise="features", scheme="ito")
        keys = jax.random.split(jax.random.key(0), runs)
        x0 = jax.vmap(lambda k, n=n, d=d: uniform_sphere(k, n, d))(
            jax.random.split(jax.random.key(1), runs))
        ours = jax.jit(jax.vmap(lambda k, x, c=cfg: sde_solve(k, x, c, coeffs).x))
        ln = jax.jit(jax.vmap(lambda k, x, c=cfg.replace(scheme="ln"): sde_solve(k, x, c,
                                                                                  coeffs).x))
        floor = jax.jit(jax.vmap(_floor(cfg, coeffs, d)))
        floor_feat = jax.jit(jax.vmap(_floor(cfg, coeffs, d, features=True)))
        rbg_keys = jax.random.split(jax.random.key(0, impl="rbg"), runs)
        calls = {"ours": (ours, (keys, x0), None), "floor": (floor, (keys, x0), None),
                 "floor_feat": (floor_feat, (keys, x0), None),
                 "ours_rbg": (ours, (rbg_keys, x0), None),
                 "floor_rbg": (floor, (rbg_keys, x0), None)}
        if not args.smoke:
            calls["ln"] = (ln, (keys, x0), None)
        if have_diffrax:
            anchor = jax.jit(jax.vmap(_diffrax_solver(cfg, coeffs, d)))
            calls["diffrax"] = (anchor, (keys, x0), None)
        timed = time_interleaved(calls, repeats=args.repeats)
        t_ours, t_floor, t_rbg = timed["ours"], timed["floor"], timed["ours_rbg"]
        t_floor_rbg, t_ln = timed["floor_rbg"], timed.get("ln")
        final_energy = jax.jit(jax.vmap(lambda x: energy(layer_norm(x), 1.0)))
        e_ours = np.asarray(final_energy(ours(keys, x0)))
        e_rbg = np.asarray(final_energy(ours(rbg_keys, x0)))
        row = dict(bench="sde", N=n, d=d, M=m, steps=steps, runs=runs,
                   ours_em=t_ours.median_s, floor=t_floor.median_s,
                   floor_features=timed["floor_feat"].median_s, ours_em_rbg=t_rbg.median_s,
                   floor_rbg=t_floor_rbg.median_s, ours_ln=t_ln and t_ln.median_s,
                   compile_ours_s=t_ours.compile_s, compile_floor_s=t_floor.compile_s,
                   energy_T_ours=_energy_text(e_ours), energy_T_ours_rbg=_energy_text(e_rbg))
        if have_diffrax:
            t_dfx = timed["diffrax"]
            e_dfx = np.asarray(final_energy(anchor(keys, x0)))
            row.update(diffrax_euler=t_dfx.median_s, compile_diffrax_s=t_dfx.compile_s,
                       energy_T_diffrax=_energy_text(e_dfx))
        rows.append(row)
        table_rows.append(row)
    print("\n## (a) Itô Euler–Maruyama, fixed-feature common noise: ours vs diffrax Euler\n")
    print(ratio_table(table_rows, ["N", "d", "M", "steps", "runs"], "ours_em",
                      ["diffrax_euler"] if have_diffrax else []))
    print("\nours against the floor (noise draws + attention alone, same steps; goal: ours <= "
          "1.2x floor), against the floor with the feature field's evaluations, and with "
          "threefry and rbg keys:\n")
    print("| N | d | M | floor | floor + features | ours | ours / floor | "
          "ours / (floor + features) | floor (rbg) | ours (rbg) | "
          "ours (rbg) / floor (rbg) | threefry / rbg |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in table_rows:
        print(f"| {r['N']} | {r['d']} | {r['M']} | {r['floor'] * 1e3:.2f} ms | "
              f"{r['floor_features'] * 1e3:.2f} ms | "
              f"{r['ours_em'] * 1e3:.2f} ms | {r['ours_em'] / r['floor']:.2f}x | "
              f"{r['ours_em'] / r['floor_features']:.2f}x | "
              f"{r['floor_rbg'] * 1e3:.2f} ms | {r['ours_em_rbg'] * 1e3:.2f} ms | "
              f"{r['ours_em_rbg'] / r['floor_rbg']:.2f}x | "
              f"{r['ours_em'] / r['ours_em_rbg']:.2f}x |")
    print("\nour LN scheme, compile times, and the mean energy (± SE) of the renormalised final "
          "tokens:\n")
    for r in table_rows:
        ln_ms = "–" if r["ours_ln"] is None else f"{r['ours_ln'] * 1e3:.1f} ms"
        print(f"- N={r['N']} d={r['d']}: ours LN {ln_ms}; compile ours "
              f"{r['compile_ours_s']:.1f} s, floor {r['compile_floor_s']:.1f} s"
              + (f", diffrax {r['compile_diffrax_s']:.1f} s" if have_diffrax else "")
              + f"; E_T ours {r['energy_T_ours']} (rbg keys {r['energy_T_ours_rbg']})"
              + (f", diffrax {r['energy_T_diffrax']}" if have_diffrax else ""))


def _peak_flops(args):
    """Best f32 ``jnp.matmul`` rate over a few square sizes (min over repeats: least disturbed)."""
    if args.smoke:
        sizes = (256, 512)
    elif jax.devices()[0].platform == "cpu":
        sizes = (512, 1024, 2048)
    else:
        sizes = (4096, 8192)
    best, best_size = 0.0, sizes[0]
    for size in sizes:
        a = jax.random.normal(jax.random.key(0), (size, size))
        b = jax.random.normal(jax.random.key(1), (size, size))
        t = time_call(jax.jit(jnp.matmul), a, b, repeats=max(args.repeats, 5))
        if 2 * size**3 / t.min_s > best:
            best, best_size = 2 * size**3 / t.min_s, size
    return best, best_size


def bench_throughput(args, rows):
    coeffs = Coefficients(1.0, 1.0, 0.1, 0.1)
    peak_before, size = _peak_flops(args)
    on_cpu = jax.devices()[0].platform == "cpu"
    if args.smoke:
        grid = [(64, 16, 10, 4), (256, 16, 4, 1)]
    else:
        grid = []
        for d in (64, 128):
            grid += [(64, d, 150, 16 if on_cpu else 64),
                     (1024, d, 20 if on_cpu else 150, 8 if on_cpu else 64),
                     (16384, d, 2 if on_cpu else 20, 1)]
    measured = []
    for n, d, layers, runs in grid:
        m = 4 * d
        block = 1024 if n >= 8192 else None
        cfg = ModelConfig(num_layers=layers, horizon=5.0, width=m, block_size=block)
        keys = jax.random.split(jax.random.key(0), runs)
        x0 = jax.vmap(lambda k, n=n, d=d: uniform_sphere(k, n, d))(
            jax.random.split(jax.random.key(1), runs))
        fwd = jax.jit(jax.vmap(lambda k, x, c=cfg: transformer_forward(k, x, c, coeffs).x))
        t = time_call(fwd, keys, x0, repeats=max(1, min(args.repeats, 3 if n > 4096 else 7)))
        measured.append((n, d, m, layers, runs, block, t))
    # the peak is measured before and after the model rows (a shared machine's load varies)
    peak_after, size_after = _peak_flops(args)
    peak, size = max((peak_before, size), (peak_after, size_after))
    print(f"\n## (b) finite-depth model throughput (matmul peak {peak / 1e9:.1f} GFLOP/s: best "
          f"f32 jnp.matmul ({size}x{size}) over sizes and repeats, measured before and after "
          "the model rows; goal on a GPU: >= 50 % of peak at N >= 1024)\n")
    print("| N | d | m | layers | runs | block | time | token-layers/s | GFLOP/s | of peak |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n, d, m, layers, runs, block, t in measured:
        flops = runs * layers * (4 * n * n * d + 4 * n * m * d)  # attention + MLP matmuls
        rate = flops / t.median_s
        tls = runs * layers * n / t.median_s
        rows.append(dict(bench="throughput", N=n, d=d, m=m, layers=layers, runs=runs,
                         block=block, median_s=t.median_s, compile_s=t.compile_s,
                         token_layers_per_s=tls, gflops=rate / 1e9,
                         fraction_of_peak=rate / peak, peak_gflops=peak / 1e9))
        print(f"| {n} | {d} | {m} | {layers} | {runs} | {block or 'dense'} | "
              f"{t.median_s * 1e3:.1f} ms | {tls:.3g} | {rate / 1e9:.1f} | "
              f"{100 * rate / peak:.0f}% |")


def main(argv=None):
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--only", choices=["sde", "throughput"], help="run one part only")
    args = p.parse_args(argv)
    if args.smoke:
        args.repeats = min(args.repeats, 2)
    print(header({"benchmark": "meanfield"}))
    rows: list[dict] = []
    if args.only in (None, "sde"):
        bench_sde(args, rows)
    if args.only in (None, "throughput"):
        bench_throughput(args, rows)
    write_json(args.json, {"device": device_name(), "jax": jax.__version__, "rows": rows})
    return rows


if __name__ == "__main__":
    main()
