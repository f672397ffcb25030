"""Runner: ``jaxpapers reproduce xit [--scale smoke|quick|long|paper]``.

quick (spec Sec. 7.2, 2 CPU cores, minutes): one encoder pretrained on a pool of ten UCR/UEA
sets that ship inside sktime, aeon and tslearn (both splits, channels split, resampled to
L = 64, z-normalised; uniform over datasets), for each objective -- XIT, TS-TCC, XIT without
XD-MixUp, XIT without SICC, and XIT on one source set -- then fine-tuned on the held-out
ArrowHead and GunPoint with k in {1, 5} labels per class (subset seeds paired across rows)
against training from scratch (425 s wall on 2 idle cores, results/xit/quick/). long: the same
with more steps, seeds, labels and subsets, plus the ablation of five inferred choices
(:data:`CHOICES`; 29.8 min wall on 2 idle cores, results/xit/long/). paper: spec Sec. 7.3 on
the UCR archive the user downloads (see :func:`_data_dir`); sized for an accelerator.
"""

from __future__ import annotations

import dataclasses
import os

import jax
import numpy as np

from jaxpapers._src.errors import MissingDependencyError
from jaxpapers.experiments import (
    Row,
    RunContext,
    RunResult,
    estimate,
    paired,
    pyplot,
    save_figure,
)
from jaxpapers.xit._config import FinetuneConfig, ModelConfig, Objective, PretrainConfig
from jaxpapers.xit._experiments._driver import (
    ALL,
    EncoderKey,
    embed,
    encoder_bank,
    finetune_grid,
    label,
    load_target,
    merge_pretrained,
    pretrain_all,
)
from jaxpapers.xit.data import available_datasets, build_pool, read_ts

#: spec Sec. 7.2: the bundled pool (11,515 univariate series at L = 64)
BUNDLED_POOL = ("ACSF1", "OSULeaf", "ItalyPowerDemand", "UnitTest", "Covid3Month_disc",
                "PickupGestureWiimoteZ", "BasicMotions", "JapaneseVowels", "PLAID", "Trace")
AUTO = "auto"      # pool: every equal-length set without missing values in the data folder
POOL = "pool"      # targets: every set of the pool (the 75-datasets protocol)
UCR_ENV = "JAXPAPERS_UCR_DIR"
UCR_DEFAULT = "~/.cache/jaxpapers/UCRArchive_2018"


@dataclasses.dataclass(frozen=True)
class XITScale:
    """One scale of the reproduction.

    Attributes:
      pool: pretraining sets (``("auto",)``: selected from the user's archive by the rule of
        :func:`_auto_pool`).
      targets: held-out fine-tuning sets (``("pool",)``: every pool set, whose train split is
        then the only one in the pool).
      single_source: the one set of the "one source vs all" row.
      seeds: pretraining seeds of the scratch, TS-TCC and XIT rows.
      ablation_seeds: pretraining seeds of the two ablations and the one-source row.
      ks: labels per class; subset_seeds: labelled subsets per (target, k).
      pool_splits: splits of the pool sets used (unlabelled).
      latent_per_dataset: series per pool set in the latent-space figure.
      external_data: read the sets from the folder in ``$JAXPAPERS_UCR_DIR``.
      max_pool_sets: at most this many sets in an ``auto`` pool.
      choices: names of :data:`CHOICES` (the inferred XIT constants) to ablate, each an XIT run
        per ablation seed that differs from the default XIT run in that one value.
    """

    model: ModelConfig = ModelConfig()
    pretrain: PretrainConfig = PretrainConfig(steps=300)
    finetune: FinetuneConfig = FinetuneConfig()
    pool: tuple = BUNDLED_POOL
    targets: tuple = ("ArrowHead", "GunPoint")
    single_source: str = "OSULeaf"
    seeds: int = 2
    ablation_seeds: int = 1
    ks: tuple = (1, 5)
    subset_seeds: int = 5
    pool_splits: tuple = ("train", "test")
    latent_per_dataset: int = 60
    external_data: bool = False
    max_pool_sets: int = 75
    choices: tuple = ()

    def __post_init__(self):
        unknown = sorted(set(self.choices) - set(CHOICES))
        if unknown:
            raise ValueError(f"XITScale.choices: unknown {unknown}; known: {sorted(CHOICES)}")


#: the XIT constants the spec infers (the paper's body could not be read), each with the one
#: alternative the ablation runs: (label, PretrainConfig overrides, Objective or None)
CHOICES = {
    "alpha_0.5": ("Beta(0.5, 0.5) mixing", {"alpha": 0.5}, None),
    "alpha_1": ("Beta(1, 1) mixing", {"alpha": 1.0}, None),
    "with_cc": ("+ CC, w_CC = 0.7", {}, Objective(tc=1.0, cc=0.7, sicc=0.7, mixup=True)),
    "extra_negatives": ("extra SICC negatives", {"extra_negatives": True}, None),
    "proportional": ("size-proportional sampling", {"sampling": "proportional"}, None),
    "lambda_per_batch": ("one λ per batch", {"per_sample_lambda": False}, None),
    "random_partners": ("random partners", {"cross_dataset": False}, None),
}
_DEFAULTS = {"alpha_0.5": "Beta(0.2, 0.2)", "alpha_1": "Beta(0.2, 0.2)", "with_cc": "w_CC = 0",
             "extra_negatives": "no extra negatives", "proportional": "uniform over datasets",
             "lambda_per_batch": "one λ per series", "random_partners": "partners from other sets"}


def _choice_claim(name: str) -> str:
    return f"inferred choice: {_DEFAULTS[name]} vs {CHOICES[name][0]}"


_TINY = ModelConfig(length=32, channels=(8, 8, 16), tc_width=16, tc_depth=1, tc_heads=2,
                    tc_mlp=16, timesteps=2)

SCALES = {
    "smoke": XITScale(model=_TINY,
                      pretrain=PretrainConfig(batch_size=16, steps=4, checkpoint_every=2),
                      finetune=FinetuneConfig(steps=5),
                      pool=("UnitTest", "ItalyPowerDemand", "BasicMotions"),
                      targets=("GunPoint",), single_source="UnitTest", ks=(1,),
                      subset_seeds=2, latent_per_dataset=10),
    # one pretraining seed per row keeps the Quickstart (all seven methods) near 15 minutes on
    # 2 cores; the long scale has 3
    "quick": XITScale(seeds=1),
    "long": XITScale(pretrain=PretrainConfig(steps=600, checkpoint_every=100), seeds=3,
                     ks=(1, 5, 10), subset_seeds=10,
                     choices=("alpha_0.5", "alpha_1", "with_cc", "extra_negatives",
                              "proportional")),
    "paper": XITScale(model=ModelConfig(length=512, timesteps=10),
                      pretrain=PretrainConfig(batch_size=128, steps=20000,
                                              checkpoint_every=1000),
                      pool=(AUTO,), targets=(POOL,), single_source="ArrowHead", seeds=3,
                      ablation_seeds=3, ks=(1, 5, 10), subset_seeds=5,
                      pool_splits=("train",), external_data=True),
}

PAPER = {
    "source": "arXiv 2402.15404 (abstract, Figure 1 labels) and the public ICLR 2024 reviews of "
              "its earlier version; the paper's result tables could not be read, so no number "
              "of the paper is quoted (spec Sec. 0 and 6).",
    "claims": [
        "pretraining on many datasets at once, then fine-tuning, beats training from scratch "
        "in the low-data regime",
        "XIT beats single-objective self-supervised pretraining (TS-TCC) on the same pool",
        "more pretraining datasets help (1 vs 75 sets)",
        "ablation: XD-MixUp and SICC each contribute (reviewers: variances overlap)",
    ],
}

CLAIMS = [  # (a, b, the paper's claim in words)
    (("xit", ALL), ("scratch", ALL), "pretrained > scratch at few labels"),
    (("ts_tcc", ALL), ("scratch", ALL), "pretrained > scratch (TS-TCC objective)"),
    (("xit", ALL), ("ts_tcc", ALL), "XIT > TS-TCC"),
    (("xit", ALL), ("xit", "ONE"), "more sources help"),
    (("xit", ALL), ("xit_no_mixup", ALL), "XD-MixUp helps"),
    (("xit", ALL), ("xit_no_sicc", ALL), "SICC helps"),
]


def _data_dir(scale: XITScale) -> str | None:
    if not scale.external_data:
        return None
    folder = os.path.expanduser(os.environ.get(UCR_ENV, UCR_DEFAULT))
    if not os.path.isdir(folder):
        raise MissingDependencyError(
            f"--scale paper reads the UCR archive from {folder!r} ({UCR_ENV} or the default "
            f"{UCR_DEFAULT}), which does not exist. Download the UCR-2018 univariate archive in "
            ".ts format (Univariate2018_ts.zip, timeseriesclassification.com) and unzip it so "
            f"that {folder}/<Name>/<Name>_TRAIN.ts and _TEST.ts exist, or set {UCR_ENV}.")
    return folder


def _auto_pool(data_dir: str, max_sets: int, length: int) -> tuple:
    """The written selection rule (spec Sec. 2.1, inferred): every set in the folder whose
    header says equal length and no missing values, with at least ``length / 8`` points,
    sorted by name, the first ``max_sets``."""
    chosen = []
    for name in available_datasets(data_dir):
        path = os.path.join(data_dir, name, f"{name}_TRAIN.ts")
        if not os.path.isfile(path):
            continue
        header = read_ts(path).header
        if header.get("equallength", "true").lower() != "true" or \
                header.get("missing", "false").lower() == "true":
            continue
        if int(header.get("serieslength", length)) < length // 8:
            continue
        chosen.append(name)
    if not chosen:
        raise ValueError(f"no usable set in {data_dir}")
    return tuple(chosen[:max_sets])


def _runs(scale: XITScale) -> list[EncoderKey]:
    runs = [EncoderKey(o, ALL, s) for o in ("ts_tcc", "xit") for s in range(scale.seeds)]
    for s in range(scale.ablation_seeds):
        runs += [EncoderKey("xit_no_mixup", ALL, s), EncoderKey("xit_no_sicc", ALL, s),
                 EncoderKey("xit", scale.single_source, s)]
    return runs


def _group(values: np.ndarray, keys: list, objective: str, sources: str, seeds,
           variant: str = "") -> np.ndarray:
    """Mean over the given seeds of one row's per-subset values ``[S]``."""
    rows = [i for i, k in enumerate(keys)
            if k.objective == objective and k.sources == sources and k.seed in seeds
            and k.variant == variant]
    return values[rows].mean(axis=0)


def _seeds_of(keys, objective, sources, variant=""):
    return {k.seed for k in keys
            if k.objective == objective and k.sources == sources and k.variant == variant}


def _fmt(e) -> str:
    return f"{e.mean:.3f} ± {(e.se or 0.0):.3f}"


def _cell_rows(target, k, scores, keys, scale: XITScale, pooled: dict) -> list[Row]:
    section = f"{target}, k = {k} labels per class: test accuracy (mean ± s.e. over " \
              f"{scale.subset_seeds} labelled subsets)"
    rows = []
    groups = []
    for objective, sources in (("scratch", ALL), ("ts_tcc", ALL), ("xit", ALL),
                               ("xit_no_mixup", ALL), ("xit_no_sicc", ALL),
                               ("xit", scale.single_source)):
        seeds = _seeds_of(keys, objective, sources)
        if seeds:
            groups.append((objective, sources, seeds))
    for objective, sources, seeds in groups:
        acc = _group(scores["accuracy"], keys, objective, sources, seeds)
        f1 = _group(scores["macro_f1"], keys, objective, sources, seeds)
        auc = _group(scores["auroc"], keys, objective, sources, seeds)
        note = (f"macro-F1 {_fmt(estimate(f1))}, AUROC {_fmt(estimate(auc, drop_nonfinite=True))}"
                f"; mean over {len(seeds)} pretraining seed(s)")
        rows.append(Row(label(EncoderKey(objective, sources, 0)), estimate(acc), section=section,
                        note=note))
    for name in scale.choices:
        variant = CHOICES[name][0]
        seeds = _seeds_of(keys, "xit", ALL, variant)
        if seeds:
            acc = _group(scores["accuracy"], keys, "xit", ALL, seeds, variant)
            rows.append(Row(label(EncoderKey("xit", ALL, 0, variant)), estimate(acc),
                            section=section, note=f"inferred choice ablated; mean over "
                                                  f"{len(seeds)} pretraining seed(s)"))

    def add_paired(a, b, name_a, name_b, claim, says):
        """A paired row ``a − b`` of this cell, also kept for the pooled section."""
        rows.append(Row(f"{name_a} − {name_b}", estimate(a - b), claim, section=section,
                        comparison=paired(a, b, better="higher", claim=says)))
        pooled.setdefault((name_a, name_b, claim), ([], []))
        pooled[(name_a, name_b, claim)][0].append(a)
        pooled[(name_a, name_b, claim)][1].append(b)

    for (oa, sa), (ob, sb), claim in CLAIMS:
        sa = scale.single_source if sa == "ONE" else sa
        sb = scale.single_source if sb == "ONE" else sb
        seeds = _seeds_of(keys, oa, sa) & _seeds_of(keys, ob, sb)
        if oa == "scratch" or ob == "scratch":
            seeds = _seeds_of(keys, oa if ob == "scratch" else ob,
                              sa if ob == "scratch" else sb) & _seeds_of(keys, "scratch", ALL)
        if not seeds:
            continue
        a = _group(scores["accuracy"], keys, oa, sa, seeds)
        b = _group(scores["accuracy"], keys, ob, sb, seeds)
        name_a, name_b = label(EncoderKey(oa, sa, 0)), label(EncoderKey(ob, sb, 0))
        add_paired(a, b, name_a, name_b, claim, f"{name_a} > {name_b} (paired by subset; "
                                                f"seeds {sorted(seeds)})")
    for name in scale.choices:
        variant = CHOICES[name][0]
        seeds = _seeds_of(keys, "xit", ALL) & _seeds_of(keys, "xit", ALL, variant)
        if not seeds:
            continue
        a = _group(scores["accuracy"], keys, "xit", ALL, seeds)
        b = _group(scores["accuracy"], keys, "xit", ALL, seeds, variant)
        name_a, name_b = label(EncoderKey("xit", ALL, 0)), label(EncoderKey("xit", ALL, 0,
                                                                              variant))
        add_paired(a, b, name_a, name_b, _choice_claim(name),
                   f"{_DEFAULTS[name]} > {variant} (paired by subset; seeds {sorted(seeds)})")
    return rows


def _knn_same(features: np.ndarray, ids: np.ndarray, k: int = 10) -> float:
    """Mean fraction of each point's ``k`` nearest neighbours (Euclidean) from its own set."""
    d = ((features[:, None] - features[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    nn = np.argsort(d, axis=1)[:, :k]
    return float((ids[nn] == ids[:, None]).mean())


def _latent_figure(ctx, scale, pool, pre, targets, key):
    rng = np.random.default_rng(ctx.seed)
    picks = [rng.choice(np.arange(o, o + c), size=min(c, scale.latent_per_dataset),
                        replace=False) for o, c in zip(pool.offsets, pool.counts, strict=True)]
    idx = np.concatenate(picks)
    x = pool.x[idx]
    ids = pool.ds_id[idx]
    tx = [t.test.x[:, :1][:scale.latent_per_dataset] for t in targets]
    x_all = np.concatenate([x] + tx)
    keys = list(pre.keys)
    chosen = [("before pretraining (seed 0 init)", None)]
    for objective in ("xit", "ts_tcc"):
        if EncoderKey(objective, ALL, 0) in keys:
            chosen.append((f"after: {label(EncoderKey(objective, ALL, 0))} (seed 0)",
                           keys.index(EncoderKey(objective, ALL, 0))))
    stack = []
    for _, i in chosen:
        if i is None:
            stack.append((pre.init_params[0], pre.init_stats[0]))
        else:
            stack.append(jax.tree_util.tree_map(lambda a, i=i: a[i], (pre.params, pre.stats)))
    params = jax.tree_util.tree_map(lambda *a: np.stack(a), *[s[0] for s in stack])
    stats = jax.tree_util.tree_map(lambda *a: np.stack(a), *[s[1] for s in stack])
    feats = embed(ctx, params, stats, x_all, scale.model)
    plt = pyplot()
    fig, axes = plt.subplots(1, len(chosen), figsize=(5.2 * len(chosen), 4.6), squeeze=False)
    cmap = plt.get_cmap("tab10" if len(pool.names) <= 10 else "tab20")
    knn = {}
    n_pool = x.shape[0]
    for ax, (title, _), f in zip(axes[0], chosen, feats, strict=True):
        centred = f - f[:n_pool].mean(0)
        _, _, vt = np.linalg.svd(centred[:n_pool], full_matrices=False)
        xy = centred @ vt[:2].T
        for d, name in enumerate(pool.names):
            m = ids == d
            ax.scatter(xy[:n_pool][m, 0], xy[:n_pool][m, 1], s=6, alpha=0.6,
                       color=cmap(d % cmap.N), label=name)
        start = n_pool
        for marker, t, part in zip(("x", "+", "^", "v"), targets, tx, strict=False):
            ax.scatter(xy[start:start + len(part), 0], xy[start:start + len(part), 1], s=18,
                       marker=marker, color="black", label=f"{t.name} (held-out target)")
            start += len(part)
        knn[title] = _knn_same(f[:n_pool], ids)
        ax.set_title(f"{title}\n10-NN from the same set: {knn[title]:.2f}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0, -1].legend(fontsize=6, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.suptitle("Encoder features (time-averaged latents), first two principal components",
                 fontsize=10)
    return save_figure(ctx, fig, "latent_space.png", dpi=90), knn


def _loss_figure(ctx, pre, steps):
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.6))
    window = max(1, steps // 30)
    smooth = lambda v: np.convolve(v, np.ones(window) / window, mode="valid")
    for r, key in enumerate(pre.keys):
        if key.seed != 0 or key.variant:
            continue
        for ax, part in zip(axes, ("tc", "cc", "sicc"), strict=True):
            ax.plot(smooth(np.asarray(pre.losses[part])[:, r]), label=label(key), lw=1)
    for ax, title in zip(axes, ("temporal contrasting (both directions)",
                                "contextual contrasting (NT-Xent)", "SICC"), strict=True):
        ax.set_title(f"{title}, seed 0 (all terms are computed; the weights choose)",
                     fontsize=8)
        ax.set_xlabel("step")
    axes[2].legend(fontsize=7)
    return save_figure(ctx, fig, "pretraining_losses.png", dpi=90)


def run(ctx: RunContext, scale: XITScale) -> RunResult:
    data_dir = _data_dir(scale)
    length = scale.model.length
    pool_names = scale.pool
    if pool_names == (AUTO,):
        pool_names = _auto_pool(data_dir, scale.max_pool_sets, length)
    target_names = pool_names if scale.targets == (POOL,) else scale.targets
    needed = set(pool_names) | set(target_names) | {scale.single_source}
    missing = sorted(needed - set(available_datasets(data_dir)))
    if missing:
        where = f"in {data_dir!r}" if data_dir is not None else "with the package"
        raise MissingDependencyError(
            f"xit --scale {ctx.scale} needs the sets {missing}, which are not {where}: put "
            "them there as <Name>/<Name>_TRAIN.ts and _TEST.ts")
    if scale.targets != (POOL,) and set(target_names) & set(pool_names):
        raise ValueError(f"targets {sorted(set(target_names) & set(pool_names))} are in the pool")
    if scale.single_source not in pool_names:
        raise ValueError(f"single_source {scale.single_source!r} is not in the pool")
    pool = build_pool(pool_names, length, splits=scale.pool_splits, data_dir=data_dir)
    targets = [load_target(name, length, data_dir) for name in target_names]
    key = jax.random.key(ctx.seed)

    runs = _runs(scale)
    parts = [pretrain_all(ctx, jax.random.fold_in(key, 0), pool, runs, scale.model,
                          scale.pretrain)]
    for name in scale.choices:  # same key: same initial parameters and batch keys as XIT
        variant, overrides, objective = CHOICES[name]
        choice_runs = [EncoderKey("xit", ALL, s, variant) for s in range(scale.ablation_seeds)]
        parts.append(pretrain_all(ctx, jax.random.fold_in(key, 0), pool, choice_runs,
                                  scale.model, dataclasses.replace(scale.pretrain, **overrides),
                                  name=f"pretrain-{name}", objective=objective))
        runs += choice_runs
    pre = merge_pretrained(parts)
    keys, enc_params, enc_stats = encoder_bank(pre, range(scale.seeds))

    rows, pooled, scores_all = [], {}, {}
    cells = [(t, k) for t in targets for k in scale.ks]
    for t, k in ctx.progress(cells, desc="fine-tune"):
        scores = finetune_grid(ctx, jax.random.fold_in(jax.random.fold_in(key, 3),
                                                       target_names.index(t.name)),
                               t, k, scale.subset_seeds, enc_params, enc_stats, scale.model,
                               scale.finetune)
        scores_all[(t.name, k)] = scores
        rows += _cell_rows(t.name, k, scores, keys, scale, pooled)

    section = (f"All {len(targets)} target(s) and k ∈ {list(scale.ks)} pooled: test accuracy "
               "difference, paired by (target, k, subset)")
    verdicts = {}
    for (name_a, name_b, claim), (a, b) in pooled.items():
        a, b = np.concatenate(a), np.concatenate(b)
        comparison = paired(a, b, better="higher", claim=f"{name_a} > {name_b}, pooled")
        verdicts[claim] = comparison
        rows.append(Row(f"{name_a} − {name_b}", estimate(a - b), claim, section=section,
                        comparison=comparison))

    latent_plot, knn = _latent_figure(ctx, scale, pool, pre, targets, key)
    for title, value in knn.items():
        rows.append(Row(f"10-NN same-set fraction, {title}", value,
                        section="Latent space (pool series; chance = share of each set)",
                        note="high: the sets form separate islands"))
    loss_plot = _loss_figure(ctx, pre, scale.pretrain.steps)

    def word(claim):
        c = verdicts.get(claim)
        return "not run" if c is None else f"{c.verdict} (Δ {c.difference:+.3f} ± {c.se:.3f})"

    cell_words = [r.comparison.verdict for r in rows if r.comparison is not None
                  and r.paper == CLAIMS[0][2] and not r.section.startswith("All")]
    summary = (f"Pooled over targets, k and subsets: XIT > scratch {word(CLAIMS[0][2])} "
               f"(per cell: {cell_words.count('held')} held, {cell_words.count('tie')} tie, "
               f"{cell_words.count('reversed')} reversed); TS-TCC > scratch {word(CLAIMS[1][2])}; "
               f"XIT > TS-TCC {word(CLAIMS[2][2])}; all sources > one source "
               f"{word(CLAIMS[3][2])}; XD-MixUp helps {word(CLAIMS[4][2])}; SICC helps "
               f"{word(CLAIMS[5][2])} (test accuracy; {scale.pretrain.steps} pretraining steps, "
               f"{scale.seeds} pretraining seed(s), {scale.subset_seeds} subsets).")
    if scale.choices:
        summary += " Inferred choices, default − alternative: " + "; ".join(
            f"{_DEFAULTS[n]} vs {CHOICES[n][0]} {word(_choice_claim(n))}"
            for n in scale.choices) + " (held: the default is better; reversed: the " \
            "alternative is)."
    losses = {part: np.asarray(v) for part, v in pre.losses.items()}
    tail = max(1, scale.pretrain.steps // 10)
    metrics = {
        "pool": {"names": list(pool.names), "counts": pool.counts.tolist(),
                 "series": int(pool.x.shape[0])},
        "encoders": [label(k_) + f" seed {k_.seed}" for k_ in keys],
        "scores": {f"{t}/k={k}": {m: v.tolist() for m, v in s.items()}
                   for (t, k), s in scores_all.items()},
        "pretraining_loss": {
            label(r) + f" seed {r.seed}": {
                part: {"first": float(losses[part][:tail, i].mean()),
                       "last": float(losses[part][-tail:, i].mean())}
                for part in ("loss", "tc", "cc", "sicc")}
            for i, r in enumerate(pre.keys)},
        "latent_knn_same_set": knn,
    }
    notes = [
        f"Pool: {', '.join(f'{n} ({c})' for n, c in zip(pool.names, pool.counts, strict=True))}"
        f" = {pool.x.shape[0]} univariate series (splits {list(scale.pool_splits)}, channels "
        f"split, resampled to L = {length}, z-normalised); sampling "
        f"{scale.pretrain.sampling}. Targets never in the pool.",
        f"Pretraining: B = {scale.pretrain.batch_size}, {scale.pretrain.steps} steps, Adam "
        f"{scale.pretrain.learning_rate} with coupled L2 {scale.pretrain.weight_decay}; "
        f"K = {scale.model.timesteps}, T' = {scale.model.latent_length}; XD-MixUp "
        f"Beta({scale.pretrain.alpha}, {scale.pretrain.alpha}) per series, tau = "
        f"{scale.pretrain.tau}. Objectives: XIT = TC + 0.7 SICC; TS-TCC = TC + 0.7 CC; "
        "w/o XD-MixUp = XIT with lam = 1; w/o SICC = TC alone. Runs of one seed share "
        "their initial parameters and batches (the one-source run samples other batches).",
        f"Fine-tuning: {scale.finetune.steps} full-batch Adam steps ({scale.finetune.mode}), a "
        "linear head on the flattened latents; the same labelled subsets, head initialisation "
        "and dropout stream for every row; scratch = the same initial encoders, no pretraining.",
        *([f"Inferred choices: each alternative is one XIT run per ablation seed "
           f"({scale.ablation_seeds}) that differs from the default XIT run of that seed in "
           "that one value and shares its initial parameters and batch keys; pooled verdicts "
           "test default > alternative."] if scale.choices else []),
        "Standard errors are over labelled subsets (with the row's pretraining seeds averaged), "
        "so they do not include the spread between pretraining seeds; the per-seed scores are "
        "in metrics.scores.",
    ]
    return RunResult(
        experiment="multi-dataset pretraining (XIT vs TS-TCC vs ablations) and few-label "
                   "fine-tuning on held-out UCR sets",
        metrics=metrics, table=rows, summary=summary, paper=PAPER,
        plots=[latent_plot, loss_plot], notes=notes,
        config={"runs": [label(r) + f" seed {r.seed}" for r in runs],
                "pool_names": list(pool.names), "target_names": list(target_names)})
