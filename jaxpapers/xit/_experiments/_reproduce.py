"""Runner: ``jaxpapers reproduce xit [--scale smoke|quick|long|steps2400|indomain|paper]``.

quick (spec Sec. 7.2, 2 CPU cores, minutes): encoders pretrained on a pool of ten UCR/UEA sets
that ship inside sktime, aeon and tslearn (both splits, channels split, resampled to L = 64,
z-normalised; uniform over datasets) plus the unlabelled TRAIN splits of the targets ArrowHead
and GunPoint (the paper's in-pool setting, the headline), for XIT, TS-TCC and the two
ablations, and XIT without the targets' sets (the held-out panel); then fine-tuned with
k in {1, 5} labels per class (subset seeds paired across rows) against training from scratch,
every contrastive loss reported against its chance level (results/xit/quick/). steps2400: the
same at L = 128 with 2,400 pretraining steps (results/xit/steps2400/). indomain: TS-TCC on each
target's own TRAIN split with TS-TCC's protocol (results/xit/indomain/). long: the earlier
held-out setting with HAR-strength augmentations and the ablation of five inferred choices
(:data:`CHOICES`; results/xit/long/). paper: spec Sec. 7.3 on the UCR archive the user
downloads (see :func:`_data_dir`); sized for an accelerator.
"""

from __future__ import annotations

import dataclasses
import os

import jax
import numpy as np

from jaxpapers._src.errors import MissingDependencyError
from jaxpapers.experiments import Row, RunContext, RunResult
from jaxpapers.experiments.report import pyplot, save_figure
from jaxpapers.experiments.stats import estimate, paired
from jaxpapers.xit._config import (
    OBJECTIVES,
    WEAK_AUGMENT,
    FinetuneConfig,
    ModelConfig,
    Objective,
    PretrainConfig,
)
from jaxpapers.xit._experiments._driver import (
    ALL,
    HELD_OUT,
    EncoderKey,
    embed,
    encoder_bank,
    finetune_grid,
    label,
    load_target,
    merge_pretrained,
    pretrain_all,
)
from jaxpapers.xit._pretrain import chance_levels
from jaxpapers.xit.data import Pool, available_datasets, build_pool, load_dataset, read_ts

#: spec Sec. 7.2: the bundled pool (11,515 univariate series at L = 64)
BUNDLED_POOL = ("ACSF1", "OSULeaf", "ItalyPowerDemand", "UnitTest", "Covid3Month_disc",
                "PickupGestureWiimoteZ", "BasicMotions", "JapaneseVowels", "PLAID", "Trace")
AUTO = "auto"      # pool: every equal-length set without missing values in the data folder
POOL = "pool"      # targets: every set of the pool (the 75-datasets protocol)
UCR_ENV = "JAXPAPERS_UCR_DIR"
UCR_DEFAULT = "~/.cache/jaxpapers/UCRArchive_2018"


@dataclasses.dataclass(frozen=True)
class InDomain:
    """The in-domain TS-TCC check: each target pretrained on its own TRAIN split with TS-TCC's
    objective (TC + 0.7 CC) and protocol -- native length, weak augmentations drawn once per
    series, ``K = 10``, batch 16 -- then fine-tuned for 40 epochs with the plateau schedule on
    the validation loss (the TRAIN series outside the labelled subset), against scratch under
    the same protocol.

    Attributes:
      model: the model; its ``length`` is replaced by each target's native length.
      draw_ablation: targets where a second set of runs draws the views per step instead.
      ablation_seeds: pretraining seeds of those runs.
    """

    targets: tuple = ("GunPoint", "ArrowHead")
    model: ModelConfig = ModelConfig(length=150, timesteps=10)
    pretrain: PretrainConfig = PretrainConfig(batch_size=16, steps=2400, checkpoint_every=200,
                                              augment=WEAK_AUGMENT, augment_draw="once")
    finetune: FinetuneConfig = FinetuneConfig(steps=40, schedule="plateau")
    seeds: int = 2
    ks: tuple = (1, 5)
    subset_seeds: int = 10
    draw_ablation: tuple = ("GunPoint",)
    ablation_seeds: int = 1


@dataclasses.dataclass(frozen=True)
class XITScale:
    """One scale of the reproduction.

    Attributes:
      pool: pretraining sets (``("auto",)``: selected from the user's archive by the rule of
        :func:`_auto_pool`).
      targets: fine-tuning sets (``("pool",)``: every pool set, whose train split is then the
        only one in the pool).
      in_pool: the targets' unlabelled TRAIN splits join the pool (the paper's UCR setting,
        the headline rows); runs keyed :data:`HELD_OUT` skip them (the held-out panel).
        False: the targets are never in the pool (the earlier setting).
      held_out_objectives: objectives also pretrained without the targets (``in_pool`` only).
      single_source: the one set of the "one source vs all" row (None: no such row).
      pool_runs: run the pool pretraining at all (False: only the in-domain check).
      indomain: the in-domain TS-TCC check (:class:`InDomain`) or None.
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
    in_pool: bool = True
    held_out_objectives: tuple = ("xit",)
    single_source: str | None = "OSULeaf"
    pool_runs: bool = True
    indomain: InDomain | None = None
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

_TINY_INDOMAIN = InDomain(
    targets=("GunPoint",), model=dataclasses.replace(_TINY, timesteps=3),
    pretrain=PretrainConfig(batch_size=8, steps=4, checkpoint_every=2, augment=WEAK_AUGMENT,
                            augment_draw="once"),
    finetune=FinetuneConfig(steps=4, schedule="plateau", plateau_patience=1), seeds=1, ks=(1,),
    subset_seeds=2, draw_ablation=("GunPoint",), ablation_seeds=1)

#: the pool runs' augmentations at the quick and steps2400 scales: TS-TCC's weak (Epilepsy)
#: strengths; HAR's left the TC loss at its chance level on these short series (long scale)
_POOL_AUGMENT = WEAK_AUGMENT

SCALES = {
    "smoke": XITScale(model=_TINY,
                      pretrain=PretrainConfig(batch_size=16, steps=4, checkpoint_every=2,
                                              augment=_POOL_AUGMENT),
                      finetune=FinetuneConfig(steps=5),
                      pool=("UnitTest", "ItalyPowerDemand", "BasicMotions"),
                      targets=("GunPoint",), single_source="UnitTest", ks=(1,),
                      subset_seeds=2, latent_per_dataset=10),
    # one pretraining seed per row keeps the Quickstart (all seven methods) near 15 minutes on
    # 2 cores: five runs (in-pool TS-TCC, XIT and its two ablations; held-out XIT)
    "quick": XITScale(pretrain=PretrainConfig(steps=300, augment=_POOL_AUGMENT), seeds=1,
                      single_source=None),
    # the earlier held-out-only setting with HAR-strength augmentations (results/xit/long/)
    "long": XITScale(pretrain=PretrainConfig(steps=600, checkpoint_every=100), seeds=3,
                     ks=(1, 5, 10), subset_seeds=10, in_pool=False,
                     choices=("alpha_0.5", "alpha_1", "with_cc", "extra_negatives",
                              "proportional")),
    # 2,400 pretraining steps at L = 128 (K = 6, T' = 18, B = 32): in-pool XIT and TS-TCC,
    # held-out XIT, one seed each (about an hour of 2 cores; run in the background, --resume)
    "steps2400": XITScale(model=ModelConfig(length=128, timesteps=6),
                          pretrain=PretrainConfig(batch_size=32, steps=2400,
                                                  checkpoint_every=200, augment=_POOL_AUGMENT),
                          seeds=1, ablation_seeds=0, single_source=None, subset_seeds=10),
    # the in-domain TS-TCC check alone (GunPoint, ArrowHead; 2,400 steps each)
    "indomain": XITScale(pool_runs=False, indomain=InDomain()),
    "paper": XITScale(model=ModelConfig(length=512, timesteps=10),
                      pretrain=PretrainConfig(batch_size=128, steps=20000,
                                              checkpoint_every=1000),
                      pool=(AUTO,), targets=(POOL,), single_source="ArrowHead", seeds=3,
                      ablation_seeds=3, ks=(1, 5, 10), subset_seeds=5, in_pool=False,
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
#: the held-out panel (extension: the targets' TRAIN splits not in the pool)
HELD_OUT_CLAIMS = [
    (("xit", HELD_OUT), ("scratch", ALL), "extension: pretrained > scratch on held-out targets"),
    (("ts_tcc", HELD_OUT), ("scratch", ALL),
     "extension: pretrained > scratch on held-out targets (TS-TCC objective)"),
    (("xit", ALL), ("xit", HELD_OUT), "extension: the targets' unlabelled TRAIN splits in the "
                                      "pool help"),
]
INDOMAIN_CLAIM = "pretrained > scratch (TS-TCC on the target's own TRAIN split, TS-TCC's protocol)"
DRAW_CLAIM = "ablation: views drawn once per series (TS-TCC) vs per step"


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
    if scale.in_pool:
        runs += [EncoderKey(o, HELD_OUT, s) for o in scale.held_out_objectives
                 for s in range(scale.seeds)]
    for s in range(scale.ablation_seeds):
        runs += [EncoderKey("xit_no_mixup", ALL, s), EncoderKey("xit_no_sicc", ALL, s)]
        if scale.single_source is not None:
            runs.append(EncoderKey("xit", scale.single_source, s))
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


HELD_PANEL = "held-out transfer (extension: the targets' TRAIN splits are not in the pool)"


def _section(target: str, k: int, subsets: int, panel: str = "") -> str:
    head = f"{target}, k = {k} labels per class" + (f" — {panel}" if panel else "")
    return f"{head}: test accuracy (mean ± s.e. over {subsets} labelled subsets)"


def _cell_rows(target, k, scores, keys, scale: XITScale, pooled: dict) -> list[Row]:
    """The rows of one (target, k): the headline section (pool runs as keyed; in-pool when
    ``scale.in_pool``) and, with held-out runs, the held-out panel's section."""
    main = _section(target, k, scale.subset_seeds)
    held = _section(target, k, scale.subset_seeds, HELD_PANEL)
    rows = []
    groups = []
    for objective, sources in (("scratch", ALL), ("ts_tcc", ALL), ("xit", ALL),
                               ("xit_no_mixup", ALL), ("xit_no_sicc", ALL),
                               ("xit", scale.single_source), ("xit", HELD_OUT),
                               ("ts_tcc", HELD_OUT)):
        seeds = _seeds_of(keys, objective, sources)
        if seeds:
            groups.append((objective, sources, seeds))
    for objective, sources, seeds in groups:
        acc = _group(scores["accuracy"], keys, objective, sources, seeds)
        f1 = _group(scores["macro_f1"], keys, objective, sources, seeds)
        auc = _group(scores["auroc"], keys, objective, sources, seeds)
        note = (f"macro-F1 {_fmt(estimate(f1))}, AUROC {_fmt(estimate(auc, drop_nonfinite=True))}"
                f"; mean over {len(seeds)} pretraining seed(s)")
        rows.append(Row(label(EncoderKey(objective, sources, 0)), estimate(acc),
                        section=held if sources == HELD_OUT else main, note=note))
    for name in scale.choices:
        variant = CHOICES[name][0]
        seeds = _seeds_of(keys, "xit", ALL, variant)
        if seeds:
            acc = _group(scores["accuracy"], keys, "xit", ALL, seeds, variant)
            rows.append(Row(label(EncoderKey("xit", ALL, 0, variant)), estimate(acc),
                            section=main, note=f"inferred choice ablated; mean over "
                                               f"{len(seeds)} pretraining seed(s)"))

    def add_paired(a, b, name_a, name_b, claim, says, section):
        """A paired row ``a − b`` of this cell, also kept for the pooled section."""
        rows.append(Row(f"{name_a} − {name_b}", estimate(a - b), claim, section=section,
                        comparison=paired(a, b, better="higher", claim=says)))
        pooled.setdefault((name_a, name_b, claim), ([], []))
        pooled[(name_a, name_b, claim)][0].append(a)
        pooled[(name_a, name_b, claim)][1].append(b)

    for claims, section in ((CLAIMS, main), (HELD_OUT_CLAIMS, held)):
        for (oa, sa), (ob, sb), claim in claims:
            sa = scale.single_source if sa == "ONE" else sa
            sb = scale.single_source if sb == "ONE" else sb
            if sa is None or sb is None:
                continue
            seeds = _seeds_of(keys, oa, sa) & _seeds_of(keys, ob, sb)
            if not seeds:
                continue
            a = _group(scores["accuracy"], keys, oa, sa, seeds)
            b = _group(scores["accuracy"], keys, ob, sb, seeds)
            name_a, name_b = label(EncoderKey(oa, sa, 0)), label(EncoderKey(ob, sb, 0))
            add_paired(a, b, name_a, name_b, claim,
                       f"{name_a} > {name_b} (paired by subset; seeds {sorted(seeds)})", section)
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
                   f"{_DEFAULTS[name]} > {variant} (paired by subset; seeds {sorted(seeds)})",
                   main)
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


_PARTS = (("tc", "temporal contrasting (both directions)"), ("cc", "contextual contrasting "
                                                              "(NT-Xent)"), ("sicc", "SICC"))


def _loss_summary(pre, cfg: PretrainConfig) -> dict:
    """Per run: each loss term's mean over the first and last tenth of the steps, and its
    chance level (:func:`~jaxpapers.xit._pretrain.chance_levels`)."""
    chance = chance_levels(cfg)
    losses = {part: np.asarray(v) for part, v in pre.losses.items()}
    steps = losses["loss"].shape[0]
    tail = max(1, steps // 10)
    out = {}
    for i, r in enumerate(pre.keys):
        entry = {part: {"first": float(losses[part][:tail, i].mean()),
                        "last": float(losses[part][-tail:, i].mean())} for part in losses}
        for part, level in chance.items():
            entry[part]["chance"] = level
        out[r] = entry
    return out


def _chance_rows(summary: dict, section: str, namer=None) -> list[Row]:
    """``first → last (chance)`` of each loss term a run's objective uses, seed 0 runs."""
    namer = namer or label
    rows = []
    for r, entry in summary.items():
        if r.seed != 0 or r.variant:
            continue
        weights = OBJECTIVES[r.objective]
        for (part, title), w in zip(_PARTS, (weights.tc, weights.cc, weights.sicc),
                                    strict=True):
            if w == 0:
                continue
            e = entry[part]
            rows.append(Row(f"{namer(r)}: {title}, last tenth of steps", e["last"],
                            section=section,
                            note=f"first tenth {e['first']:.3f}; chance {e['chance']:.3f} "
                                 f"(last − chance {e['last'] - e['chance']:+.3f})"))
    return rows


def _loss_figure(ctx, pre, steps, chance, filename="pretraining_losses.png", title="",
                 namer=None):
    namer = namer or label
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.6))
    window = max(1, steps // 30)
    smooth = lambda v: np.convolve(v, np.ones(window) / window, mode="valid")
    for r, key in enumerate(pre.keys):
        if key.seed != 0:
            continue
        for ax, (part, _) in zip(axes, _PARTS, strict=True):
            ax.plot(smooth(np.asarray(pre.losses[part])[:, r]), label=namer(key), lw=1)
    for ax, (part, name) in zip(axes, _PARTS, strict=True):
        ax.axhline(chance[part], color="black", ls="--", lw=1, label="chance")
        ax.set_title(f"{name}, seed 0; dashed: chance {chance[part]:.2f}", fontsize=8)
        ax.set_xlabel("step")
    axes[2].legend(fontsize=6)
    fig.suptitle(title or "Pretraining losses (all terms are computed; the weights choose)",
                 fontsize=9)
    return save_figure(ctx, fig, filename, dpi=90)


def _with_targets(pool: Pool, extra: Pool) -> Pool:
    """``pool`` followed by the sets of ``extra`` (one pool, one compiled step)."""
    counts = np.concatenate([pool.counts, extra.counts]).astype(np.int32)
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int32)
    return Pool(np.concatenate([pool.x, extra.x]), np.concatenate(
        [pool.ds_id, extra.ds_id + len(pool.names)]).astype(np.int32),
        pool.names + extra.names, offsets, counts)


def _indomain_label(key: EncoderKey) -> str:
    return f"in-domain TS-TCC ({key.sources})" + (f" [{key.variant}]" if key.variant else "")


def _indomain(ctx, scale: XITScale, key):
    """The in-domain TS-TCC check: rows per (target, k), the paired samples for the pooled
    verdicts, per-run loss summaries and the loss figure."""
    ind = scale.indomain
    rows, pooled, summaries, scores_all, pres = [], {}, {}, {}, []
    for t_i, name in enumerate(ind.targets):
        native = load_dataset(name, "train").x.shape[-1]
        model = dataclasses.replace(ind.model, length=native)
        target = load_target(name, native)
        pool = build_pool((name,), native, splits=("train",))
        k_t = jax.random.fold_in(jax.random.fold_in(key, 10), t_i)
        runs = [EncoderKey("ts_tcc", name, s) for s in range(ind.seeds)]
        parts = [pretrain_all(ctx, k_t, pool, runs, model, ind.pretrain,
                              name=f"indomain-{name}")]
        other = "per_step" if ind.pretrain.augment_draw == "once" else "once"
        variant = f"views drawn {other.replace('_', ' ')}"
        if name in ind.draw_ablation:
            parts.append(pretrain_all(
                ctx, k_t, pool, [EncoderKey("ts_tcc", name, s, variant)
                                 for s in range(ind.ablation_seeds)], model,
                dataclasses.replace(ind.pretrain, augment_draw=other),
                name=f"indomain-{name}-{other}"))
        pre = merge_pretrained(parts)
        pres.append(pre)
        summaries.update(_loss_summary(pre, ind.pretrain))
        keys, enc_params, enc_stats = encoder_bank(pre, range(ind.seeds))
        for k in ind.ks:
            scores = finetune_grid(ctx, jax.random.fold_in(jax.random.fold_in(key, 11), t_i),
                                   target, k, ind.subset_seeds, enc_params, enc_stats, model,
                                   ind.finetune)
            scores_all[(name, k)] = scores
            section = _section(name, k, ind.subset_seeds)
            acc = scores["accuracy"]
            seeds = set(range(ind.seeds))
            scratch = _group(acc, keys, "scratch", ALL, seeds)
            own = _group(acc, keys, "ts_tcc", name, seeds)
            note = (f"native length {native}, T' = {model.latent_length}, K = "
                    f"{model.timesteps}; {ind.finetune.steps} epochs, plateau schedule on the "
                    "validation loss")
            rows.append(Row("scratch, in-domain protocol", estimate(scratch), section=section,
                            note=note + f"; mean over {ind.seeds} initialisation(s)"))
            rows.append(Row("in-domain TS-TCC", estimate(own), section=section,
                            note=f"{ind.pretrain.steps} steps, B = {ind.pretrain.batch_size}, "
                                 f"views drawn {ind.pretrain.augment_draw.replace('_', ' ')}; "
                                 f"mean over {ind.seeds} pretraining seed(s)"))
            says = f"in-domain TS-TCC > scratch (paired by subset; seeds {sorted(seeds)})"
            rows.append(Row("in-domain TS-TCC − scratch", estimate(own - scratch),
                            INDOMAIN_CLAIM, section=section,
                            comparison=paired(own, scratch, better="higher", claim=says),
                            note="scratch under the same in-domain protocol"))
            pooled.setdefault(("in-domain TS-TCC", "scratch", INDOMAIN_CLAIM), ([], []))
            pooled[("in-domain TS-TCC", "scratch", INDOMAIN_CLAIM)][0].append(own)
            pooled[("in-domain TS-TCC", "scratch", INDOMAIN_CLAIM)][1].append(scratch)
            if name in ind.draw_ablation:
                a_seeds = set(range(ind.ablation_seeds))
                alt = _group(acc, keys, "ts_tcc", name, a_seeds, variant)
                base = _group(acc, keys, "ts_tcc", name, a_seeds)
                rows.append(Row(f"in-domain TS-TCC [{variant}]", estimate(alt),
                                section=section, note=f"ablation; mean over "
                                                      f"{ind.ablation_seeds} seed(s)"))
                says = (f"views drawn {ind.pretrain.augment_draw.replace('_', ' ')} > "
                        f"{variant} (paired by subset; seeds {sorted(a_seeds)})")
                rows.append(Row(f"in-domain TS-TCC − in-domain TS-TCC [{variant}]",
                                estimate(base - alt), DRAW_CLAIM, section=section,
                                comparison=paired(base, alt, better="higher", claim=says)))
    return rows, pooled, summaries, scores_all, pres


def run(ctx: RunContext, scale: XITScale) -> RunResult:
    key = jax.random.key(ctx.seed)
    rows, pooled, scores_all, plots, notes = [], {}, {}, [], []
    metrics: dict = {}
    verdicts = {}
    summary_parts = []

    def word(claim):
        c = verdicts.get(claim)
        return "not run" if c is None else f"{c.verdict} (Δ {c.difference:+.3f} ± {c.se:.3f})"

    if scale.pool_runs:
        rows_p, pooled_p, metrics_p, plots_p, notes_p, scores_p = _pool_experiment(ctx, scale,
                                                                                   key)
        rows += rows_p
        pooled.update(pooled_p)
        metrics.update(metrics_p)
        plots += plots_p
        notes += notes_p
        scores_all.update(scores_p)
    ind_rows, ind_pooled, ind_summaries = [], {}, {}
    if scale.indomain is not None:
        ind_rows, ind_pooled, ind_summaries, ind_scores, ind_pres = _indomain(ctx, scale, key)
        ind = scale.indomain
        metrics["indomain"] = {
            "scores": {f"{t}/k={k}": {m: v.tolist() for m, v in sc.items()}
                       for (t, k), sc in ind_scores.items()},
            "pretraining_loss": {_indomain_label(r) + f" seed {r.seed}": v
                                 for r, v in ind_summaries.items()}}
        merged = merge_pretrained(ind_pres) if len(ind_pres) > 1 else ind_pres[0]
        plots.append(_loss_figure(ctx, merged, ind.pretrain.steps, chance_levels(ind.pretrain),
                                  "indomain_losses.png",
                                  "In-domain TS-TCC pretraining losses (each target on its "
                                  "own TRAIN split; TS-TCC uses TC and NT-Xent)",
                                  _indomain_label))
        notes.append(
            f"In-domain TS-TCC check ({', '.join(ind.targets)}): each target's TRAIN split "
            f"alone, at its native length, TS-TCC's objective (TC + 0.7 NT-Xent), K = "
            f"{ind.model.timesteps}, B = {ind.pretrain.batch_size}, {ind.pretrain.steps} steps, "
            f"augmentations (σ_scale {ind.pretrain.augment.scale_sigma}, σ_jitter "
            f"{ind.pretrain.augment.jitter_sigma}, ≤ {ind.pretrain.augment.max_segments} "
            f"segments) drawn {ind.pretrain.augment_draw.replace('_', ' ')} per series; "
            f"fine-tuning {ind.finetune.steps} epochs (one full batch each) with "
            "ReduceLROnPlateau('min') on the validation loss (factor "
            f"{ind.finetune.plateau_factor}, patience {ind.finetune.plateau_patience}); the "
            "validation set is the rest of the TRAIN split (its labels drive the schedule "
            "only); scratch = the same initial encoders under the same protocol. "
            f"{ind.seeds} pretraining seeds × {ind.subset_seeds} labelled subsets.")
    rows += ind_rows
    pooled.update(ind_pooled)

    for (name_a, name_b, claim), (a, b) in pooled.items():
        a, b = np.concatenate(a), np.concatenate(b)
        comparison = paired(a, b, better="higher", claim=f"{name_a} > {name_b}, pooled")
        verdicts[claim] = comparison
        if claim == INDOMAIN_CLAIM:
            section = ("In-domain TS-TCC, all targets and k pooled: test accuracy difference, "
                       "paired by (target, k, subset)")
        elif claim.startswith("extension"):
            section = ("Held-out transfer (extension), all targets and k pooled: test "
                       "accuracy difference, paired by (target, k, subset)")
        else:
            section = ("All targets and k pooled: test accuracy difference, paired by "
                       "(target, k, subset)")
        rows.append(Row(f"{name_a} − {name_b}", estimate(a - b), claim, section=section,
                        comparison=comparison))

    if scale.pool_runs:
        cell_words = [r.comparison.verdict for r in rows if r.comparison is not None
                      and r.paper == CLAIMS[0][2] and not r.section.startswith("All")]
        where = "in-pool (targets' unlabelled TRAIN splits in the pool)" if scale.in_pool \
            else "held-out targets"
        text = (f"Pooled over targets, k and subsets, {where}: XIT > scratch "
                f"{word(CLAIMS[0][2])} (per cell: {cell_words.count('held')} held, "
                f"{cell_words.count('tie')} tie, {cell_words.count('reversed')} reversed); "
                f"TS-TCC > scratch {word(CLAIMS[1][2])}; XIT > TS-TCC {word(CLAIMS[2][2])}")
        if scale.single_source is not None:
            text += f"; all sources > one source {word(CLAIMS[3][2])}"
        if scale.ablation_seeds:
            text += (f"; XD-MixUp helps {word(CLAIMS[4][2])}; SICC helps "
                     f"{word(CLAIMS[5][2])}")
        if scale.in_pool:
            text += (f". Held-out panel: XIT > scratch {word(HELD_OUT_CLAIMS[0][2])}"
                     + (f", TS-TCC > scratch {word(HELD_OUT_CLAIMS[1][2])}"
                        if "ts_tcc" in scale.held_out_objectives else "")
                     + f", in-pool XIT > held-out XIT {word(HELD_OUT_CLAIMS[2][2])}")
        text += (f" (test accuracy; {scale.pretrain.steps} pretraining steps, {scale.seeds} "
                 f"pretraining seed(s), {scale.subset_seeds} subsets).")
        summary_parts.append(text)
        if scale.choices:
            summary_parts.append("Inferred choices, default − alternative: " + "; ".join(
                f"{_DEFAULTS[n]} vs {CHOICES[n][0]} {word(_choice_claim(n))}"
                for n in scale.choices) + " (held: the default is better; reversed: the "
                "alternative is).")
    if scale.indomain is not None:
        ind = scale.indomain
        cells = [r.comparison.verdict for r in ind_rows if r.comparison is not None
                 and r.paper == INDOMAIN_CLAIM]
        text = (f"In-domain TS-TCC − scratch (TS-TCC's protocol, {ind.pretrain.steps} steps): "
                f"{word(INDOMAIN_CLAIM)} pooled (per cell: {cells.count('held')} held, "
                f"{cells.count('tie')} tie, {cells.count('reversed')} reversed)")
        draws = [r for r in ind_rows if r.paper == DRAW_CLAIM]
        if draws:
            text += "; views drawn once − per step: " + ", ".join(
                f"{r.section.split(':')[0]} {r.comparison.verdict} "
                f"(Δ {r.comparison.difference:+.3f} ± {r.comparison.se:.3f})" for r in draws)
        summary_parts.append(text + ".")
        rows += _chance_rows(ind_summaries, "In-domain pretraining losses against chance "
                                            "(seed 0)", _indomain_label)
    return RunResult(
        experiment="multi-dataset pretraining (XIT vs TS-TCC vs ablations) and few-label "
                   "fine-tuning on UCR sets in the pool (headline) and held out; an in-domain "
                   "TS-TCC check",
        metrics=metrics, table=rows, summary=" ".join(summary_parts), paper=PAPER,
        plots=plots, notes=notes,
        config={"pool_runs": scale.pool_runs, "in_pool": scale.in_pool,
                "pool_names": metrics.get("pool", {}).get("names", []),
                "target_names": metrics.get("pool", {}).get("targets", []),
                "runs": [label(r) + f" seed {r.seed}" for r in _runs(scale)]
                if scale.pool_runs else [],
                "indomain_targets": list(scale.indomain.targets) if scale.indomain else []})


def _pool_experiment(ctx, scale: XITScale, key):
    data_dir = _data_dir(scale)
    length = scale.model.length
    pool_names = scale.pool
    if pool_names == (AUTO,):
        pool_names = _auto_pool(data_dir, scale.max_pool_sets, length)
    target_names = pool_names if scale.targets == (POOL,) else scale.targets
    needed = set(pool_names) | set(target_names)
    if scale.single_source is not None:
        needed.add(scale.single_source)
    missing = sorted(needed - set(available_datasets(data_dir)))
    if missing:
        where = f"in {data_dir!r}" if data_dir is not None else "with the package"
        raise MissingDependencyError(
            f"xit --scale {ctx.scale} needs the sets {missing}, which are not {where}: put "
            "them there as <Name>/<Name>_TRAIN.ts and _TEST.ts")
    if scale.targets != (POOL,) and set(target_names) & set(pool_names):
        raise ValueError(f"targets {sorted(set(target_names) & set(pool_names))} are in the pool")
    if scale.single_source is not None and scale.single_source not in pool_names:
        raise ValueError(f"single_source {scale.single_source!r} is not in the pool")
    pool = build_pool(pool_names, length, splits=scale.pool_splits, data_dir=data_dir)
    in_pool = scale.in_pool and scale.targets != (POOL,)
    if in_pool:  # the targets' unlabelled TRAIN splits (never TEST) join the pool
        pool = _with_targets(pool, build_pool(target_names, length, splits=("train",),
                                              data_dir=data_dir))
    targets = [load_target(name, length, data_dir) for name in target_names]

    runs = _runs(scale)
    held_out = tuple(target_names) if in_pool else ()
    parts = [pretrain_all(ctx, jax.random.fold_in(key, 0), pool, runs, scale.model,
                          scale.pretrain, held_out=held_out)]
    for name in scale.choices:  # same key: same initial parameters and batch keys as XIT
        variant, overrides, objective = CHOICES[name]
        choice_runs = [EncoderKey("xit", ALL, s, variant) for s in range(scale.ablation_seeds)]
        parts.append(pretrain_all(ctx, jax.random.fold_in(key, 0), pool, choice_runs,
                                  scale.model, dataclasses.replace(scale.pretrain, **overrides),
                                  name=f"pretrain-{name}", objective=objective,
                                  held_out=held_out))
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

    latent_plot, knn = _latent_figure(ctx, scale, pool, pre, targets, key)
    knn_rows = [Row(f"10-NN same-set fraction, {title}", value,
                    section="Latent space (pool series; chance = share of each set)",
                    note="high: the sets form separate islands") for title, value in knn.items()]
    chance = chance_levels(scale.pretrain)
    loss_plot = _loss_figure(ctx, pre, scale.pretrain.steps, chance)
    summaries = _loss_summary(pre, scale.pretrain)
    chance_rows = _chance_rows(summaries, "Pretraining losses against chance (pool runs, "
                                          "seed 0)")
    metrics = {
        "pool": {"names": list(pool.names), "counts": pool.counts.tolist(),
                 "series": int(pool.x.shape[0]), "targets_in_pool": in_pool,
                 "targets": list(target_names)},
        "encoders": [label(k_) + f" seed {k_.seed}" for k_ in keys],
        "scores": {f"{t}/k={k}": {m: v.tolist() for m, v in s.items()}
                   for (t, k), s in scores_all.items()},
        "pretraining_loss": {label(r) + f" seed {r.seed}": v for r, v in summaries.items()},
        "chance_levels": chance,
        "latent_knn_same_set": knn,
    }
    aug = scale.pretrain.augment
    notes = [
        f"Pool: {', '.join(f'{n} ({c})' for n, c in zip(pool.names, pool.counts, strict=True))}"
        f" = {pool.x.shape[0]} univariate series (splits {list(scale.pool_splits)}"
        + (f"; the targets {', '.join(target_names)} with their TRAIN split only, unlabelled"
           if in_pool else "") +
        f"; channels split, resampled to L = {length}, z-normalised); sampling "
        f"{scale.pretrain.sampling}. "
        + ("Headline rows: the targets' TRAIN splits are in the pool (the paper's UCR "
           "setting); rows marked 'held-out' never draw the targets' sets (the extension)."
           if in_pool else "Targets never in the pool."),
        f"Pretraining: B = {scale.pretrain.batch_size}, {scale.pretrain.steps} steps, Adam "
        f"{scale.pretrain.learning_rate} with coupled L2 {scale.pretrain.weight_decay}; "
        f"K = {scale.model.timesteps}, T' = {scale.model.latent_length}; augmentations "
        f"σ_scale {aug.scale_sigma}, σ_jitter {aug.jitter_sigma}, ≤ {aug.max_segments} "
        f"segments, drawn {scale.pretrain.augment_draw.replace('_', ' ')}; XD-MixUp "
        f"Beta({scale.pretrain.alpha}, {scale.pretrain.alpha}) per series, tau = "
        f"{scale.pretrain.tau}. Objectives: XIT = TC + 0.7 SICC; TS-TCC = TC + 0.7 CC; "
        "w/o XD-MixUp = XIT with lam = 1; w/o SICC = TC alone. Runs of one seed share "
        "their initial parameters and batch keys (held-out and one-source runs draw other "
        "sets).",
        f"Chance levels (every candidate equally likely): TC (both directions) 2 ln B = "
        f"{chance['tc']:.3f}, NT-Xent ln(2B − 1) = {chance['cc']:.3f}, SICC ln B = "
        f"{chance['sicc']:.3f}.",
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
    return (rows + chance_rows + knn_rows, pooled, metrics, [latent_plot, loss_plot], notes,
            scores_all)
