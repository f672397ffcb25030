"""Benchmark: one XIT pretraining step (jaxpapers.xit) beside a PyTorch TS-TCC-style step of the
same model.

The step: a batch of B series of length L, the weak, strong and XD-mixed views, each through the
encoder (BatchNorm in train mode), the context transformer at K future steps, the two temporal-
contrasting terms, NT-Xent and SICC, backward and one Adam update (full size: B = 128,
L = 128, K = 6, h = 100, 4 layers; the 0.37 M-parameter TS-TCC model). The PyTorch side is
written here in TS-TCC's style (its encoder, Seq_Transformer and losses; augmentations drawn
in torch at every step, XD-MixUp with ``torch.distributions.Beta``) and runs on the same CPU
threads; it is skipped with a message when torch is not importable. Steady state is the
median of ``--repeats`` steps; compile (first call) is reported apart.

PyTorch is never a dependency: ``pip install torch`` (the CPU build) to include it.

Usage::

    python benchmarks/xit.py [--smoke] [--repeats 7] [--json out.json]
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

try:
    import jaxpapers  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax
import jax.numpy as jnp

from jaxpapers import xit
from jaxpapers.experiments import bench

FULL = dict(batch=128, length=128, timesteps=6, channels=(32, 64, 128), width=100, depth=4,
            heads=4, mlp=64)
SMOKE = dict(batch=16, length=32, timesteps=2, channels=(8, 8, 16), width=16, depth=1,
             heads=2, mlp=16)


def _configs(size):
    model = xit.ModelConfig(length=size["length"], timesteps=size["timesteps"],
                            channels=size["channels"], tc_width=size["width"],
                            tc_depth=size["depth"], tc_heads=size["heads"], tc_mlp=size["mlp"])
    return model, xit.PretrainConfig(batch_size=size["batch"])


def _ours(size, repeats):
    model, cfg = _configs(size)
    state = xit.init_pretrain(jax.random.key(0), model, cfg)
    state = jax.tree_util.tree_map(lambda a: a[None], state)._replace(step=jnp.int32(0))
    pool = jax.random.normal(jax.random.key(1), (4 * size["batch"], 1, size["length"]))
    offsets = jnp.asarray([0, 2 * size["batch"]], jnp.int32)
    counts = jnp.asarray([2 * size["batch"], 2 * size["batch"]], jnp.int32)
    keys = jax.random.split(jax.random.key(2), 1)
    args = (pool, offsets, counts, jnp.log(jnp.full((1, 2), 0.5, jnp.float32)),
            jnp.asarray([xit.OBJECTIVES["xit"].as_tuple()], jnp.float32))
    step = jax.jit(xit.make_pretrain_step(model, cfg))
    holder = {"state": state}

    def call():
        holder["state"], info = step(keys, holder["state"], *args)
        return info.loss

    timing = bench.time_call(call, repeats=repeats)
    params = sum(x.size for x in jax.tree_util.tree_leaves(state.params))
    return timing, params


def _torch_step(size, sliced=False):
    import torch
    from torch import nn
    from torch.nn import functional as F

    torch.manual_seed(0)
    b, length, k_steps = size["batch"], size["length"], size["timesteps"]
    c1, c2, c3 = size["channels"]
    h, depth, heads, mlp = size["width"], size["depth"], size["heads"], size["mlp"]

    def block(cin, cout, k, drop=None):
        layers = [nn.Conv1d(cin, cout, k, stride=1, bias=False, padding=k // 2),
                  nn.BatchNorm1d(cout), nn.ReLU(), nn.MaxPool1d(2, 2, padding=1)]
        return nn.Sequential(*layers, *([nn.Dropout(drop)] if drop else []))

    encoder = nn.Sequential(block(1, c1, 8, 0.35), block(c1, c2, 8), block(c2, c3, 8))

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.qkv = nn.Linear(h, 3 * h, bias=False)
            self.out = nn.Sequential(nn.Linear(h, h), nn.Dropout(0.1))

        def forward(self, x, mask):
            n = x.shape[1]
            q, k, v = self.qkv(x).reshape(x.shape[0], n, 3, heads, h // heads).unbind(2)
            q, k, v = (a.transpose(1, 2) for a in (q, k, v))
            logits = q @ k.transpose(-1, -2) * h ** -0.5
            logits = logits.masked_fill(~mask[:, None, None, :], float("-inf"))
            out = (logits.softmax(-1) @ v).transpose(1, 2).reshape(x.shape[0], n, h)
            return self.out(out)

    class Layer(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(h), nn.LayerNorm(h)
            self.attn = Attention()
            self.ff = nn.Sequential(nn.Linear(h, mlp), nn.ReLU(), nn.Dropout(0.1),
                                    nn.Linear(mlp, h), nn.Dropout(0.1))

        def forward(self, x, mask):
            x = x + self.attn(self.ln1(x), mask)
            return x + self.ff(self.ln2(x))

    class TC(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Linear(c3, h)
            self.token = nn.Parameter(torch.randn(1, 1, h))
            self.layers = nn.ModuleList([Layer() for _ in range(depth)])
            self.wk = nn.ModuleList([nn.Linear(h, c3) for _ in range(k_steps)])
            self.proj = nn.Sequential(nn.Linear(h, c3 // 2), nn.BatchNorm1d(c3 // 2),
                                      nn.ReLU(), nn.Linear(c3 // 2, c3 // 4))

        def context(self, z, prefix):  # z [B, T', D]; attend to the token and `prefix` steps
            if sliced:  # the TS-TCC reference: the first `prefix` steps only
                z = z[:, :prefix]
            x = torch.cat([self.token.expand(z.shape[0], -1, -1), self.embed(z)], 1)
            mask = (torch.arange(x.shape[1]) <= prefix)[None].expand(z.shape[0], -1)
            for layer in self.layers:
                x = layer(x, mask)
            return x[:, 0]

    tc = TC()
    params = list(encoder.parameters()) + list(tc.parameters())
    opt = torch.optim.Adam(params, lr=3e-4, betas=(0.9, 0.99), weight_decay=3e-4)
    pool = torch.randn(4 * b, 1, length)
    ds_all = torch.arange(4 * b) // (2 * b)
    beta = torch.distributions.Beta(torch.tensor(0.2), torch.tensor(0.2))

    def permute(x, max_seg=8):
        u = torch.rand(b, 1 + (length - 2) + max_seg)
        m = 1 + (u[:, 0] * (max_seg - 1)).long().clamp(max=max_seg - 2)
        cuts = u[:, 1:length - 1].argsort(1)[:, :max_seg - 2]
        active = torch.arange(max_seg - 2)[None] < (m - 1)[:, None]
        pos = torch.arange(length)
        seg = (active[:, :, None] & (cuts[:, :, None] <= pos[None, None])).sum(1)
        rank = u[:, length - 1:].argsort(1).gather(1, seg)
        order = (rank * length + pos).argsort(1)
        return x.gather(2, order[:, None].expand_as(x))

    def normalize(a):
        return F.normalize(a, dim=-1)

    def nt_xent(u, v, tau=0.2):
        q = normalize(torch.cat([u, v]))
        s = q @ q.T / tau
        s = s.masked_fill(torch.eye(2 * b, dtype=torch.bool), -1e9)
        pos = (torch.arange(2 * b) + b) % (2 * b)
        return F.cross_entropy(s, pos)

    def tc_loss(c, z_other, t):
        total = 0.0
        for i, wk in enumerate(tc.wk):
            scores = z_other[:, t + 1 + i] @ wk(c).T
            total = total - torch.diagonal(scores.log_softmax(-1)).mean()
        return total / k_steps

    def step():
        idx = torch.randint(0, 4 * b, (b,))
        x, ds = pool[idx], ds_all[idx]
        x_w = x * (2 + 1.1 * torch.randn(b, 1, length))
        x_s = permute(x) + 0.8 * torch.randn_like(x)
        order = torch.argsort(ds * 2.0 + torch.rand(b))   # grouped by dataset, then shifted
        n_max = int(torch.bincount(ds).max())
        perm = torch.empty(b, dtype=torch.long)
        perm[order] = order[(torch.arange(b) + n_max) % b]
        lam = beta.sample((b,))
        x_m = lam[:, None, None] * x + (1 - lam[:, None, None]) * x[perm]
        x_m = x_m * (2 + 1.1 * torch.randn(b, 1, length))
        zs = [normalize(encoder(v).transpose(1, 2)) for v in (x_w, x_s, x_m)]
        steps = zs[0].shape[1]
        t1, t2 = (int(t) for t in torch.randint(0, steps - k_steps, (2,)))
        c_w, c_s, c_m = tc.context(zs[0], t1 + 1), tc.context(zs[1], t2 + 1), \
            tc.context(zs[2], t1 + 1)
        loss_tc = tc_loss(c_w, zs[1], t1) + tc_loss(c_s, zs[0], t2)
        u, v, m = tc.proj(c_w), tc.proj(c_s), tc.proj(c_m)
        logp = (normalize(m) @ normalize(u).T / 0.2).log_softmax(-1)
        ar = torch.arange(b)
        loss_sicc = -(lam * logp[ar, ar] + (1 - lam) * logp[ar, perm]).mean()
        loss = loss_tc + 0.7 * loss_sicc + 0.0 * nt_xent(u, v)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return float(loss.detach())

    nparams = sum(p.numel() for p in params)
    return step, nparams, f"torch {torch.__version__} ({torch.get_num_threads()} threads)"


def main(argv=None):
    p = bench.parser(__doc__.splitlines()[0])
    args = p.parse_args(argv)
    size = SMOKE if args.smoke else FULL
    repeats = min(args.repeats, 3) if args.smoke else args.repeats
    try:
        torch_step, torch_params, torch_note = _torch_step(size)
        torch_sliced = _torch_step(size, sliced=True)[0]
    except ImportError:
        torch_step, torch_params, torch_note = None, 0, "not installed (pip install torch)"
        torch_sliced = None
    head = bench.header({"anchor": f"PyTorch TS-TCC-style step: {torch_note}; 'pytorch': "
                                   "the transformer over all T' steps with a mask, "
                                   "'pytorch_sliced': over the prefix only (the TS-TCC "
                                   "reference's slice)",
                         "setup": f"B = {size['batch']}, L = {size['length']}, "
                                  f"K = {size['timesteps']}, three views (weak, strong, "
                                  f"XD-mixed), median of {repeats} steps; ours: one run, "
                                  "context transformer on the first T' - K steps, prefix "
                                  "lengths bucketed (PretrainConfig.context_buckets = "
                                  f"{xit.PretrainConfig().context_buckets})"})
    print(head)
    print()
    timing, ours_params = _ours(size, repeats)
    row = {"case": f"B={size['batch']} L={size['length']} K={size['timesteps']}",
           "jaxpapers": timing.median_s, "jaxpapers_min_s": timing.min_s,
           "jaxpapers_compile_s": timing.compile_s, "jaxpapers_params": int(ours_params)}
    if torch_step is not None:
        tt = bench.time_call(torch_step, repeats=repeats, sync=lambda out: out)
        row.update({"pytorch": tt.median_s, "pytorch_min_s": tt.min_s,
                    "pytorch_first_s": tt.compile_s, "pytorch_params": int(torch_params)})
        ts = bench.time_call(torch_sliced, repeats=repeats, sync=lambda out: out)
        row.update({"pytorch_sliced": ts.median_s, "pytorch_sliced_min_s": ts.min_s,
                    "pytorch_sliced_params": int(torch_params)})
    rows = [row]
    print(bench.ratio_table(rows, ["case"], "jaxpapers",
                            ["pytorch", "pytorch_sliced"] if torch_step is not None else []))
    print()
    for name in ("jaxpapers", "pytorch", "pytorch_sliced"):
        if name in row:
            rate = 1.0 / row[name]
            print(f"{name}: {rate:.2f} steps/s, {rate * size['batch']:.0f} samples/s "
                  f"(min {row[f'{name}_min_s'] * 1e3:.1f} ms/step), "
                  f"{row[f'{name}_params']} parameters")
    print(f"jaxpapers compile (first call): {row['jaxpapers_compile_s']:.1f} s")
    print(f"device: {bench.device_name()}; load average after the run: "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    if not math.isfinite(row["jaxpapers"]):
        raise SystemExit("non-finite timing")
    bench.write_json(args.json, {"device": bench.device_name(), "header": head,
                                 "repeats": repeats, "rows": rows,
                                 "size": {k: list(v) if isinstance(v, tuple) else v
                                          for k, v in size.items()}})
    return rows


if __name__ == "__main__":
    main()
