"""Benchmark: gradient evaluations per second of the moving-targets (MT-varpro) and BPTT losses.

The delay task at ``D = 100`` (``H = 3`` hidden nodes, ``N = 6``), ``--seeds`` seeds. One
"gradient evaluation" is one value-and-gradient of the loss a trainer minimises:

* MT-varpro: the reduced error ``E_act(W*(Xh), Xh) + lam/2 ||W*||^2`` with the exact per-row
  Cholesky weight solve inside, and its envelope gradient with respect to the hidden targets;
* BPTT: ``1/2 sum (y_free - Y)^2`` of the freely running network and its gradient with respect
  to ``W`` (back-propagation through the ``D + 1`` steps).

Ours: ``jax.jit`` of ``jax.vmap`` over the seeds of a ``lax.fori_loop`` of ``--steps`` gradient
steps (so every evaluation is inside one compiled program, as in the trainers). Anchor: the same
losses written in PyTorch, a Python loop over seeds and steps, ``loss.backward()`` per
evaluation (eager; the weight solve under ``no_grad`` for the envelope gradient; one intra-op thread
by default, torch's fastest setting at these sizes). Both sides use
the same dtype (default float64, as the trainers run), the same starting points and the same
step size; the final losses are compared to check the two compute the same thing.

Usage::

    python benchmarks/moving_targets.py [--smoke] [--repeats 7] [--dtype float64] [--json out]
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    import jaxpapers  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers import moving_targets as mt
from jaxpapers.experiments import bench

LAM = 1e-3
STEP = 1e-3


def _torch():
    try:
        import torch
    except ImportError:
        return None, "not installed (pip install torch); anchor skipped"
    return torch, f"torch {torch.__version__} (eager, CPU)"


# -- ours ------------------------------------------------------------------------------------------

def _ours(kind, spec, steps):
    if kind == "MT-varpro":
        loss = lambda x: mt.losses.reduced_act(x, spec, LAM)
    else:
        loss = lambda w: mt.losses.bptt_loss(w, spec)

    def one_seed(p):
        def body(_, carry):
            p, _ = carry
            value, grad = jax.value_and_grad(loss)(p)
            return p - STEP * grad, value
        return jax.lax.fori_loop(0, steps, body, (p, jnp.zeros((), p.dtype)))

    return jax.jit(jax.vmap(one_seed))


# -- the PyTorch anchor ----------------------------------------------------------------------------

def _torch_losses(torch, spec):
    kind = torch.as_tensor(np.array(spec.kind))
    value = torch.as_tensor(np.array(spec.value))
    hidden, inputs = kind == mt.tasks.HIDDEN, kind == mt.tasks.INPUT
    err_mask = (kind[:, 1:] != mt.tasks.INPUT).to(value.dtype)    # [S, T-1, N]
    target = (kind[:, 1:] == mt.tasks.TARGET)
    eps = float(np.finfo(np.float32).eps)
    yd = torch.where(hidden, torch.full_like(value, 0.5), value).clamp(eps, 1 - eps)
    data_x = torch.log(yd) - torch.log1p(-yd)
    n = kind.shape[-1]
    eye = torch.eye(n, dtype=value.dtype)
    active = err_mask.reshape(-1, n).amax(0) > 0

    def solve(Yall, Xall):
        phi = Yall[:, :-1].reshape(-1, n)
        m = err_mask.reshape(-1, n)
        b = (Xall[:, 1:].reshape(-1, n) * m).T @ phi
        M = torch.einsum("ri,rj,rk->ijk", m, phi, phi) + LAM * eye
        M = torch.where(active[:, None, None], M, eye)
        W = torch.cholesky_solve(b.unsqueeze(-1), torch.linalg.cholesky(M)).squeeze(-1)
        return torch.where(active[:, None], W, torch.zeros_like(W))

    def reduced_act(Xh):
        Yall = torch.where(hidden, torch.sigmoid(Xh), value)
        Xall = torch.where(hidden, Xh, data_x)
        with torch.no_grad():                                      # envelope gradient
            W = solve(Yall, Xall)
        r = (torch.einsum("ij,stj->sti", W, Yall[:, :-1]) - Xall[:, 1:]) * err_mask
        return 0.5 * (r ** 2).sum() + 0.5 * LAM * (W ** 2).sum()

    def bptt_loss(W):
        y = value[:, 0]
        loss = 0.0
        for t in range(1, kind.shape[1]):
            y = torch.where(inputs[:, t], value[:, t], torch.sigmoid(y @ W.T))
            d = torch.where(target[:, t - 1], y - value[:, t], torch.zeros_like(y))
            loss = loss + 0.5 * (d ** 2).sum()
        return loss

    return {"MT-varpro": reduced_act, "BPTT": bptt_loss}


def _torch_run(torch, loss, starts, steps):
    def run():
        finals = []
        for p0 in starts:                                          # a loop over seeds
            p = torch.tensor(p0, requires_grad=True)
            for _ in range(steps):
                value = loss(p)
                (grad,) = torch.autograd.grad(value, p)
                with torch.no_grad():
                    p -= STEP * grad
            finals.append(float(value.detach()))
        return finals
    return run


# -- driver ----------------------------------------------------------------------------------------

def run(delay, hidden, seeds, steps, repeats, dtype, torch_threads=1):
    torch, torch_note = _torch()
    if torch is not None:
        torch.set_num_threads(torch_threads)
        torch.set_default_dtype(torch.float64 if dtype == jnp.float64 else torch.float32)
    spec = mt.tasks.delay_task(delay, hidden, low=0.1, high=0.9, dtype=dtype)  # MT-varpro: finite
    key = jax.random.key(0)
    n = spec.kind.shape[-1]
    starts = {
        "MT-varpro": 0.5 * jax.random.normal(key, (seeds,) + spec.kind.shape, dtype),
        "BPTT": 0.5 * jax.random.normal(jax.random.fold_in(key, 1), (seeds, n, n), dtype),
    }
    anchors = _torch_losses(torch, spec) if torch is not None else {}
    rows = []
    for kind, start in starts.items():
        fn = _ours(kind, spec, steps)
        compiled, compile_s = bench.compile_ahead(fn, start)
        timing = bench.time_call(compiled, start, repeats=repeats)
        _, ours_loss = compiled(start)
        evals = seeds * steps
        row = {"loss": kind, "D": delay, "seeds": seeds, "evaluations": evals,
               "jaxpapers": timing.median_s, "jaxpapers_min_s": timing.min_s,
               "jaxpapers_compile_s": compile_s,
               "jaxpapers_evals_per_s": evals / timing.median_s}
        if torch is not None:
            anchor = _torch_run(torch, anchors[kind], np.asarray(start), steps)
            t_timing = bench.time_call(anchor, repeats=max(1, min(repeats, 3)),
                                       sync=lambda out: out)
            torch_loss = np.asarray(anchor())
            np.testing.assert_allclose(torch_loss, np.asarray(ours_loss), rtol=1e-3, atol=1e-6)
            row.update({"torch": t_timing.median_s, "torch_min_s": t_timing.min_s,
                        "torch_evals_per_s": evals / t_timing.median_s})
        rows.append(row)
        print(f"  {kind:10s} ours {row['jaxpapers_evals_per_s']:12.0f} evals/s"
              + (f"   torch {row['torch_evals_per_s']:10.0f} evals/s" if torch else ""),
              file=sys.stderr, flush=True)
    return rows, torch_note


def main(argv=None):
    p = bench.parser(__doc__.splitlines()[0])
    p.add_argument("--delay", type=int, default=100)
    p.add_argument("--hidden", type=int, default=3)
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--steps", type=int, default=50, help="gradient evaluations per seed per call")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float64")
    p.add_argument("--torch-threads", type=int, default=1,
                   help="torch intra-op threads (1 is torch's fastest at these tiny sizes)")
    args = p.parse_args(argv)
    if args.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    dtype = jnp.float64 if args.dtype == "float64" else jnp.float32
    delay, steps, seeds = (10, 5, 2) if args.smoke else (args.delay, args.steps, args.seeds)
    repeats = min(args.repeats, 2) if args.smoke else args.repeats
    _, torch_note = _torch()
    head = bench.header({"anchor": torch_note,
                         "torch threads": str(args.torch_threads),
                         "setup": f"delay task D = {delay}, H = {args.hidden}, {seeds} seeds, "
                                  f"{steps} gradient steps per seed per call, {args.dtype}, "
                                  f"median of {repeats}"})
    print(head)
    print()
    rows, _ = run(delay, args.hidden, seeds, steps, repeats, dtype, args.torch_threads)
    anchors = ["torch"] if any("torch" in r for r in rows) else []
    print("## Seconds per call of seeds x steps gradient evaluations (ratio = torch / jaxpapers)")
    print()
    print(bench.ratio_table(rows, ["loss", "D", "seeds", "evaluations"], "jaxpapers", anchors))
    print()
    print("## Gradient evaluations per second")
    print()
    print("| loss | jaxpapers | " + " | ".join(anchors) + " |")
    print("|---|---|" + "---|" * len(anchors))
    for r in rows:
        cells = [f"{r['jaxpapers_evals_per_s']:.0f}"] + [f"{r[a + '_evals_per_s']:.0f}"
                                                          for a in anchors]
        print(f"| {r['loss']} | " + " | ".join(cells) + " |")
    print()
    print("compile (ahead of time): " + ", ".join(
        f"{r['loss']} {r['jaxpapers_compile_s']:.2f} s" for r in rows))
    bench.write_json(args.json, {"device": bench.device_name(), "header": head,
                                 "anchor": torch_note, "repeats": repeats, "rows": rows})
    return rows


if __name__ == "__main__":
    main()
