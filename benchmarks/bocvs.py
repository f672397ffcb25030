"""One BOCVS round and the GP predict step: jaxpapers vs tinygp (and BoTorch when installed).

Round = condition the GP on n observations + maximise the expected UCB (N samples of the
uncontrolled variables) over all 7 control sets of Hartmann-3 (random candidates, then Adam ascent
from the best ones, vmapped over sets x restarts), float64, jitted. The predict step alone (mean
and variance at the assembled points of one scoring pass) is compared with tinygp's
``GaussianProcess.predict`` on the same inputs.

BoTorch anchor (SingleTaskGP + averaged-UCB acquisition + optimize_acqf per control set) runs only
when torch and botorch import; otherwise that column is skipped with a message.

Usage: python benchmarks/bocvs.py [--smoke] [--json OUT] [--repeats R]
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from jaxpapers._src import bench  # noqa: E402
from jaxpapers.bocvs import (  # noqa: E402
    OptimizerConfig,
    expected_ucb,
    make_problem,
    maximize_per_control_set,
)
from jaxpapers.bocvs._acquisition import assemble  # noqa: E402
from jaxpapers.bocvs._problems import sample_inputs  # noqa: E402
from jaxpapers.gp import bucket_size, condition, gp_params, pad_data, predict, ucb  # noqa: E402


def _data(n, seed=0):
    rng = np.random.default_rng(seed)
    problem = make_problem("hartmann3", "moderate", 0.02)
    x = rng.uniform(size=(n, 3))
    y = np.asarray(jax.vmap(problem.objective)(x)) + 0.01 * rng.normal(size=n)
    return problem, x, y


def make_round(problem, opt: OptimizerConfig, num_samples: int):
    masks = jnp.asarray(problem.masks)
    params = gp_params(problem.lengthscale, 1.0, 1e-4, dim=3)
    scales = jnp.asarray(problem.scales)

    def one_round(key, x, y, mask):
        k_w, k_opt = jax.random.split(key)
        w = sample_inputs(k_w, scales, num_samples)
        post = condition(params, x, y, mask, with_inverse=True)
        fn = lambda m, q: expected_ucb(post, m, q, w, 2.0)
        return maximize_per_control_set(k_opt, fn, masks, opt,
                                        point_fn=lambda z: ucb(post, z, 2.0), w=w)

    return jax.jit(one_round)


def tinygp_predict_fn(lengthscale):
    from tinygp import GaussianProcess, kernels, transforms

    def fn(x, y, xs):
        kernel = transforms.Linear(jnp.full(3, 1.0 / lengthscale), kernels.ExpSquared())
        gp = GaussianProcess(kernel, x, diag=1e-4 + 1e-8)
        return gp.predict(y, xs, return_var=True)

    return jax.jit(fn)


def botorch_available() -> str | None:
    try:
        import botorch  # noqa: F401
        import torch  # noqa: F401
    except ImportError as err:
        return f"BoTorch column skipped: {err.name or 'torch/botorch'} is not installed"
    return None


def botorch_round_fn(problem, opt: OptimizerConfig, num_samples: int, beta: float = 2.0):
    """The reference stack's round written with BoTorch: a SingleTaskGP with the same fixed
    hyper-parameters (zero mean, SE-ARD, noise 1e-4, no outcome transform), an averaged-UCB
    acquisition over the same N samples of the uncontrolled variables, and ``optimize_acqf``
    (L-BFGS-B, same raw candidates / restarts / iteration budget) once per control set.
    Returns ``fn(x, y, w) -> best value per control set`` (float64 torch on the CPU)."""
    import torch
    from botorch.acquisition import AcquisitionFunction
    from botorch.models import SingleTaskGP
    from botorch.optim import optimize_acqf
    from gpytorch.kernels import RBFKernel
    from gpytorch.means import ZeroMean

    masks = np.asarray(problem.masks, bool)

    class AveragedUCB(AcquisitionFunction):
        def __init__(self, model, mask, w):
            super().__init__(model)
            self.mask, self.w = torch.as_tensor(mask), w

        def forward(self, X):  # X: [b, 1, |S|]
            b = X.shape[0]
            full = self.w.expand(b, -1, -1).clone()                      # [b, N, d]
            full[..., self.mask] = X.expand(-1, self.w.shape[0], -1)
            post = self.model.posterior(full.reshape(-1, 1, full.shape[-1]))
            mean = post.mean.reshape(b, -1)
            std = post.variance.clamp_min(1e-12).sqrt().reshape(b, -1)
            return (mean + beta * std).mean(-1)

    def run(x, y, w):
        x = torch.as_tensor(np.array(x), dtype=torch.float64)
        y = torch.as_tensor(np.array(y), dtype=torch.float64)[:, None]
        w = torch.as_tensor(np.array(w), dtype=torch.float64)
        covar = RBFKernel(ard_num_dims=x.shape[-1])
        covar.lengthscale = torch.full((1, x.shape[-1]), float(problem.lengthscale),
                                       dtype=torch.float64)
        model = SingleTaskGP(x, y, covar_module=covar, mean_module=ZeroMean(),
                             outcome_transform=None).to(torch.float64)
        model.likelihood.noise = torch.tensor([1e-4], dtype=torch.float64)
        model.eval()
        values = []
        for mask in masks:
            dim = int(mask.sum())
            bounds = torch.stack([torch.zeros(dim), torch.ones(dim)]).to(torch.float64)
            _, value = optimize_acqf(AveragedUCB(model, mask, w), bounds=bounds, q=1,
                                     num_restarts=opt.num_restarts, raw_samples=opt.num_raw,
                                     options={"maxiter": opt.num_steps})
            values.append(float(value))
        return np.array(values)

    return run


def main(argv=None):
    args = bench.parser(__doc__.splitlines()[0]).parse_args(argv)
    if args.smoke:
        sizes, num_samples = (20,), 64
        opt = OptimizerConfig(num_raw=8, num_restarts=2, num_steps=3, batch_size=8)
        repeats = 2
    else:
        sizes, num_samples = (50, 200), 1024
        opt = OptimizerConfig(num_raw=32, num_restarts=4, num_steps=20, batch_size=8)
        repeats = args.repeats
    skip = botorch_available()
    print(bench.header({"float": "float64", "N (samples of W)": str(num_samples),
                        "optimiser": f"{opt.num_raw} raw + {opt.num_restarts} restarts x "
                                     f"{opt.num_steps} Adam steps per control set, 7 sets"}))
    if skip:
        print(skip)
    rows = []
    key = jax.random.key(0)
    for n in sizes:
        problem, x, y = _data(n)
        xp, yp, mask = pad_data(x, y, size=bucket_size(n))
        round_fn = make_round(problem, opt, num_samples)
        t_round = bench.time_call(round_fn, key, xp, yp, mask, repeats=repeats)
        x_hat, v = round_fn(key, xp, yp, mask)
        # predict step alone: the assembled points of one scoring pass (7 sets x raw candidates x N)
        w = sample_inputs(jax.random.key(1), jnp.asarray(problem.scales), num_samples)
        cand = jax.random.uniform(jax.random.key(2), (7, opt.num_raw, 3), jnp.float64)
        masks = jnp.asarray(problem.masks)
        pts = jax.vmap(jax.vmap(assemble, in_axes=(None, 0, None)), in_axes=(0, 0, None))(
            masks, cand, w).reshape(-1, 3)
        params = gp_params(problem.lengthscale, 1.0, 1e-4, dim=3)
        ours = jax.jit(
            lambda x, y, xs, p=params: predict(condition(p, x, y, with_inverse=True), xs))
        t_ours = bench.time_call(ours, x, y, pts, repeats=repeats)
        tiny = tinygp_predict_fn(problem.lengthscale)
        t_tiny = bench.time_call(tiny, x, y, pts, repeats=repeats)
        m1, v1 = ours(x, y, pts)
        m2, v2 = tiny(x, y, pts)
        err = float(max(jnp.max(jnp.abs(m1 - m2)), jnp.max(jnp.abs(v1 - v2))))
        round_row = dict(step="round (condition + 7-set expected-UCB maximisation)", n=n,
                         points=int(pts.shape[0]), ours=t_round.median_s,
                         ours_compile_s=t_round.compile_s, botorch=None,
                         best_value_full_set=float(v[-1]))
        if not skip:
            # Same W on both sides; values are comparable set by set.
            w_round = sample_inputs(jax.random.split(key)[0], jnp.asarray(problem.scales),
                                    num_samples)
            torch_round = botorch_round_fn(problem, opt, num_samples)
            t_torch = bench.time_call(torch_round, x, y, w_round, repeats=max(1, repeats // 2),
                                      sync=lambda out: out)
            torch_values = torch_round(x, y, w_round)
            round_row.update(botorch=t_torch.median_s, botorch_first_call_s=t_torch.compile_s,
                             ours_values=[float(a) for a in np.asarray(v)],
                             botorch_values=[float(a) for a in torch_values],
                             ours_minus_botorch_min=float(np.min(np.asarray(v) - torch_values)))
        rows.append(round_row)
        rows.append(dict(step="GP predict (mean + var)", n=n, points=int(pts.shape[0]),
                         ours=t_ours.median_s, ours_compile_s=t_ours.compile_s,
                         tinygp=t_tiny.median_s, tinygp_compile_s=t_tiny.compile_s,
                         max_abs_diff_vs_tinygp=err))
    print()
    print(bench.ratio_table([r for r in rows if r["step"].startswith("round")],
                            ["step", "n"], "ours", ["botorch"]))
    print()
    print(bench.ratio_table([r for r in rows if r["step"].startswith("GP")],
                            ["step", "n", "points"], "ours", ["tinygp"]))
    for r in rows:
        if "ours_minus_botorch_min" in r:
            print(f"n={r['n']}: acquisition value per control set, ours - BoTorch: min "
                  f"{r['ours_minus_botorch_min']:+.2e} (>= 0: ours at least as good on every set)")
        if "max_abs_diff_vs_tinygp" in r:
            print(f"n={r['n']}: max |ours - tinygp| over mean and variance = "
                  f"{r['max_abs_diff_vs_tinygp']:.2e}")
    bench.write_json(args.json, {"device": bench.device_name(), "rows": rows,
                                 "botorch": skip or "ran", "num_samples": num_samples,
                                 "optimizer": opt._asdict()})
    return rows


if __name__ == "__main__":
    main()
