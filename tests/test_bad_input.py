"""Bad input against every public name: refuse it, flag it, or document NaN out.

The rule (written in each walked package's docstring):

* a shape, dtype or configuration error raises ``ValueError`` naming the argument, at call or
  trace time;
* a value error (NaN/inf, an out-of-range value seen only at run time) raises eagerly and, under
  ``jit``, sets a validity flag that is never True over a NaN result (or fails the computation
  with a message naming the argument); no selection falls back to index 0;
* NaN in, NaN out is accepted only where the function documents it and no flag claims validity.

Structure: :data:`PACKAGES` lists the walked packages. Each public name has an entry in
:data:`CASES` (a builder of good arguments, which of them are arrays, which are traced under
``jit``, a validity flag if the result has one, special bad values) or in :data:`EXEMPT` with a
reason. The generic corruptions (:func:`corruptions`) are drawn by hypothesis strategies: a
NaN or an infinity at a drawn position, a drawn wrong shape (extra axis, missing axis, wrong
size), a wrong dtype, an int in place of a PRNG key. Each bad input runs eagerly and, where the
name is traceable, under ``jax.jit``; the outcome is one of :data:`OUTCOMES`. To add a package,
list it in :data:`PACKAGES` and give its names a case or an exemption.

Census: ``BAD_INPUT_CENSUS=path.jsonl pytest tests/test_bad_input.py`` appends every drawn bad
input's outcome to ``path.jsonl`` as it runs (with ``-m ""`` the slow ones too: the BO loop,
the acquisition maximisers and the hyper-parameter fit compile for a while);
``BAD_INPUT_EXAMPLES=N`` draws ``N`` examples per bad input and mode (default 1).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import json
import math
import os
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

PACKAGES = ("gp", "bocvs", "smc", "xit")
OUTCOMES = ("error", "flagged", "documented_nan", "garbage", "crash", "hang")
PASSING = ("error", "flagged", "documented_nan")
HANG_SECONDS = 120.0
EXAMPLES = int(os.environ.get("BAD_INPUT_EXAMPLES", "1"))  # hypothesis draws per input and mode

# ----------------------------------------------------------------------------------------------
# cases


@dataclasses.dataclass(frozen=True)
class Special:
    """A named bad value for one argument: ``values`` is a strategy of bad values."""

    arg: str
    label: str
    values: Any  # hypothesis strategy
    nan_ok: bool = False  # documented: the result is NaN (no flag)


@dataclasses.dataclass(frozen=True)
class Case:
    """How to call one public name with good arguments, and what can be corrupted.

    ``build()`` returns ``(fn, kwargs)``: ``fn(**kwargs)`` is a good call. ``arrays`` names the
    array arguments that take the generic corruptions (``arrays[name]``: the corruption kinds;
    default all). ``traced``: the arguments passed to ``jax.jit`` as traced values (the others
    are closed over); ``None``: not traceable, eager only. ``flag(result)``: the result's claim
    of validity (a bool), if it has one. ``nan_ok``: corruption kinds after which a NaN result
    is the documented answer.
    """

    build: Callable[[], tuple[Callable, dict]]
    arrays: dict = dataclasses.field(default_factory=dict)
    traced: tuple | None = None
    flag: Callable | None = None
    nan_ok: tuple = ()
    specials: tuple = ()
    slow: bool = False
    nonfinite_values: tuple = (math.nan, math.inf, -math.inf)  # -inf is legal for log-weights
    documented: tuple = ()  # kinds whose result under jit is a documented fallback (no NaN)


ALL_KINDS = ("nonfinite", "shape", "dtype")
KEY_KINDS = ("int_key",)

neg = st.floats(max_value=-1e-3, allow_nan=False, allow_infinity=True)
nonpos = st.one_of(st.just(0.0), neg)
nanv = st.just(float("nan"))
bad_positive = st.one_of(nonpos, nanv)
bad_unit = st.one_of(st.floats(min_value=1.001, max_value=1e6), st.floats(max_value=-1e-3,
                                                                          min_value=-1e6), nanv)
bad_count = st.integers(max_value=0)


def _key():
    return jax.random.key(0)


# --- gp -----------------------------------------------------------------------------------------

def _gp_data(n=6, d=2):
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.uniform(size=(n, d)), jnp.float32)
    y = jnp.asarray(np.sin(3 * np.asarray(x)).sum(1), jnp.float32)
    return x, y


def _gp_params():
    from jaxpapers import gp
    return gp.gp_params(0.3, 1.0, 1e-3, dim=2, dtype=jnp.float32)


def _posterior():
    from jaxpapers import gp
    x, y = _gp_data()
    return gp.condition(_gp_params(), x, y)


def _gp_cases():
    from jaxpapers import gp
    x, y = _gp_data()
    xs = jnp.asarray(np.random.default_rng(1).uniform(size=(4, 2)), jnp.float32)
    mask = jnp.ones(6, bool).at[5].set(False)
    return {
        "bucket_size": Case(lambda: (gp.bucket_size, dict(n=5)), specials=(
            Special("n", "negative n", st.integers(max_value=-1)),
            Special("minimum", "minimum <= 0", st.integers(max_value=0)))),
        "condition": Case(lambda: (gp.condition, dict(params=_gp_params(), x=x, y=y, mask=mask)),
                          arrays={"x": ALL_KINDS, "y": ALL_KINDS, "mask": ("shape",),
                                  "params": ("nonfinite",)},
                          traced=("params", "x", "y", "mask"), flag=lambda r: r.ok,
                          specials=(Special("jitter", "negative jitter", neg),
                                    Special("max_tries", "negative max_tries",
                                            st.integers(max_value=-1)),
                                    Special("kernel", "unknown kernel", st.just("rbf")))),
        "fit_hypers": Case(lambda: (functools.partial(gp.fit_hypers, num_restarts=2,
                                                      num_steps=3),
                                    dict(key=_key(), params=_gp_params(), x=x, y=y, mask=mask)),
                           arrays={"x": ALL_KINDS, "y": ALL_KINDS, "key": KEY_KINDS,
                                   "params": ("nonfinite",)},
                           traced=("key", "params", "x", "y", "mask"),
                           nan_ok=("nonfinite",),
                           specials=(Special("learning_rate", "learning_rate <= 0", bad_positive),
                                     Special("log_bounds", "inverted bounds",
                                             st.just(((3.0, -7.0), (-7.0, 3.0), (-16.0, 1.0)))),
                                     Special("spread", "spread < 1 or NaN",
                                             st.one_of(st.floats(max_value=0.99), nanv)),
                                     Special("jitter", "negative jitter", neg)),
                           slow=True),
        "get_kernel": Case(lambda: (gp.get_kernel, dict(name="se")), specials=(
            Special("name", "unknown name", st.sampled_from(["rbf", "", "SE"])),)),
        "gp_params": Case(lambda: (gp.gp_params, dict(lengthscale=jnp.full(2, 0.3), variance=1.0,
                                                      noise=1e-3)),
                          arrays={"lengthscale": ("nonfinite", "dtype")},
                          traced=("lengthscale", "variance", "noise"), nan_ok=("nonfinite",),
                          specials=(Special("noise", "noise < 0 or NaN", st.one_of(neg, nanv),
                                            nan_ok=True),
                                    Special("variance", "variance <= 0", bad_positive,
                                            nan_ok=True),
                                    Special("dtype", "integer dtype",
                                            st.sampled_from([jnp.int32, jnp.bool_])),
                                    Special("dim", "dim <= 0", bad_count))),
        "lcb": Case(lambda: (gp.lcb, dict(posterior=_posterior(), xs=xs, beta=2.0)),
                    arrays={"xs": ALL_KINDS}, traced=("posterior", "xs", "beta"),
                    nan_ok=("nonfinite",),
                    specials=(Special("beta", "negative beta", neg, nan_ok=True),)),
        "ucb": Case(lambda: (gp.ucb, dict(posterior=_posterior(), xs=xs, beta=2.0)),
                    arrays={"xs": ALL_KINDS}, traced=("posterior", "xs", "beta"),
                    nan_ok=("nonfinite",),
                    specials=(Special("beta", "negative beta", neg, nan_ok=True),)),
        "predict": Case(lambda: (gp.predict, dict(posterior=_posterior(), xs=xs)),
                        arrays={"xs": ALL_KINDS}, traced=("posterior", "xs"),
                        nan_ok=("nonfinite",)),
        "log_marginal_likelihood": Case(
            lambda: (gp.log_marginal_likelihood, dict(params=_gp_params(), x=x, y=y, mask=mask)),
            arrays={"x": ALL_KINDS, "y": ALL_KINDS, "mask": ("shape",), "params": ("nonfinite",)},
            traced=("params", "x", "y", "mask"), nan_ok=("nonfinite",),
            specials=(Special("jitter", "negative jitter", neg, nan_ok=True),)),
        "se_ard": Case(lambda: (gp.se_ard, dict(params=_gp_params(), x1=x, x2=xs)),
                       arrays={"x1": ALL_KINDS, "x2": ALL_KINDS, "params": ("nonfinite",)},
                       traced=("params", "x1", "x2"), nan_ok=("nonfinite",)),
        "matern52": Case(lambda: (gp.matern52, dict(params=_gp_params(), x1=x, x2=xs)),
                         arrays={"x1": ALL_KINDS, "x2": ALL_KINDS, "params": ("nonfinite",)},
                         traced=("params", "x1", "x2"), nan_ok=("nonfinite",)),
        "pad_data": Case(lambda: (gp.pad_data, dict(x=x, y=y, size=8)),
                         arrays={"x": ("shape", "dtype"), "y": ("shape", "dtype")},
                         traced=("x", "y"),
                         specials=(Special("size", "size < n", st.integers(-3, 5)),)),
    }


# --- bocvs --------------------------------------------------------------------------------------

def _masks():
    return jnp.asarray([[1, 0, 0], [0, 1, 1], [1, 1, 1]], jnp.float32)


def _w():
    return jnp.asarray(np.random.default_rng(2).uniform(size=(8, 3)), jnp.float32)


def _posterior3():
    from jaxpapers import gp
    rng = np.random.default_rng(3)
    x = jnp.asarray(rng.uniform(size=(6, 3)), jnp.float32)
    return gp.condition(gp.gp_params(0.3, 1.0, 1e-3, dim=3, dtype=jnp.float32), x,
                        jnp.sin(x).sum(1))


def _opt_config():
    from jaxpapers import bocvs
    return bocvs.OptimizerConfig(num_raw=8, num_restarts=2, num_steps=3)


def _history():
    from jaxpapers import bocvs
    t = 4
    return bocvs.History(
        set_index=jnp.asarray([0, 1, 2, -1], jnp.int32), stage=jnp.zeros(t, jnp.int32),
        query=jnp.zeros((t, 3)), x=jnp.zeros((t, 3)), y=jnp.zeros(t),
        cost=jnp.asarray([0.1, 0.2, 1.0, np.nan]), spent=jnp.asarray([0.1, 0.3, 1.3, np.nan]),
        value=jnp.asarray([0.5, 0.8, 1.0, np.nan]), acq_value=jnp.zeros(t),
        x_init=jnp.zeros((2, 3)), y_init=jnp.zeros(2), num_rounds=jnp.int32(3),
        total_spent=jnp.asarray(1.3), status=jnp.int32(1), last_choice=jnp.int32(2))


def _spec():
    from jaxpapers import bocvs
    return bocvs.ProblemSpec(_masks(), jnp.asarray([0.1, 0.2, 1.0]), jnp.full(3, 0.1),
                             jnp.asarray(1.5), jnp.asarray(0.01), jnp.full(3, 0.3))


def _objective(x):
    return -jnp.sum((x - 0.5) ** 2)


def _bo_config():
    from jaxpapers import bocvs
    return bocvs.BOConfig(num_samples=8, num_eval_samples=8, num_init=2, buckets=(8,),
                          optimizer=_opt_config())


def _run_bo(key, masks, costs, scales, budget, noise_sd, lengthscale, policy=None,
            objective=_objective, config="default"):
    from jaxpapers import bocvs
    spec = bocvs.ProblemSpec(masks, costs, scales, budget, noise_sd, lengthscale)
    policy = bocvs.ucb_cvs(3) if policy is None else policy
    config = _bo_config() if config == "default" else config
    return bocvs.run_bo(key, spec, policy, objective, config)


def _validated_optimizer_config(**kwargs):
    from jaxpapers import bocvs
    return bocvs.OptimizerConfig(**kwargs).validate()


def _value_fn(mask_row, x):
    return -jnp.sum((mask_row * x - 0.5) ** 2)


def _bocvs_cases():
    from jaxpapers import bocvs
    good_spec = _spec()._asdict()
    bo_ok = lambda h: h.status == 1  # noqa: E731  (budget exhausted: a normal end)
    return {
        "BOConfig": Case(lambda: (bocvs.BOConfig, {}), specials=(
            Special("beta", "beta < 0 or NaN", st.one_of(neg, nanv)),
            Special("num_samples", "num_samples <= 0", bad_count),
            Special("noise_variance", "noise_variance <= 0", bad_positive),
            Special("buckets", "bad buckets", st.sampled_from([(), (8, 4), (0,)])),
            Special("jitter", "jitter < 0 or NaN", st.one_of(neg, nanv)))),
        # a NamedTuple: every consumer (BOConfig, maximize_*) calls its validate()
        "OptimizerConfig": Case(lambda: (_validated_optimizer_config, {}), specials=(
            Special("num_raw", "num_raw <= 0", bad_count),
            Special("learning_rate", "learning_rate <= 0 or NaN", bad_positive),
            Special("method", "unknown method", st.just("lbfgs")))),
        "cumulative_regret": Case(lambda: (bocvs.cumulative_regret,
                                           dict(history=_history(), f_star=1.0)),
                                  specials=(Special("f_star", "non-finite f_star",
                                                    st.sampled_from([math.nan, math.inf])),)),
        "final_simple_regret": Case(lambda: (bocvs.final_simple_regret,
                                             dict(history=_history(), f_star=1.0)),
                                    specials=(Special("f_star", "non-finite f_star",
                                                      st.sampled_from([math.nan, math.inf])),)),
        "simple_regret_curve": Case(lambda: (bocvs.simple_regret_curve,
                                             dict(history=_history(), f_star=1.0,
                                                  grid=np.linspace(0, 1.3, 5))),
                                    arrays={"grid": ("nonfinite", "shape")},
                                    specials=(Special("f_star", "non-finite f_star",
                                                      st.sampled_from([math.nan, math.inf])),)),
        "etc": Case(lambda: (bocvs.etc, dict(num_sets=7, targets=(5, 5))), specials=(
            Special("num_sets", "num_sets <= 0", bad_count),
            Special("targets", "negative target", st.just((5, -1))),
            Special("eps", "eps < 0 or NaN", st.one_of(neg, nanv)))),
        "etc_ada": Case(lambda: (bocvs.etc_ada, dict(costs=(0.1,) * 3 + (0.2,) * 3 + (1.0,))),
                        specials=(Special("costs", "non-positive or NaN cost",
                                          st.sampled_from([(0.0,) * 7, (-1.0,) * 7,
                                                           (math.nan,) * 7])),
                                  Special("units", "units <= 0 or NaN", bad_positive))),
        "ucb_cvs": Case(lambda: (bocvs.ucb_cvs, dict(num_sets=7, eps=0.1)), specials=(
            Special("num_sets", "num_sets <= 0", bad_count),
            Special("eps", "eps < 0 or NaN", st.one_of(neg, nanv)),
            Special("num_stages", "num_stages < 1", st.integers(max_value=0)))),
        "ucb_psq": Case(lambda: (bocvs.ucb_psq, dict(num_sets=7)), specials=(
            Special("num_sets", "num_sets <= 0", bad_count),)),
        "ucb_psq_per_cost": Case(lambda: (bocvs.ucb_psq_per_cost, dict(num_sets=7)), specials=(
            Special("num_sets", "num_sets <= 0", bad_count),)),
        "expected_ucb": Case(lambda: (bocvs.expected_ucb,
                                      dict(posterior=_posterior3(), mask_row=_masks()[1],
                                           x=jnp.full(3, 0.4), w=_w(), beta=2.0)),
                             arrays={"mask_row": ALL_KINDS, "x": ALL_KINDS, "w": ALL_KINDS},
                             traced=("posterior", "mask_row", "x", "w", "beta"),
                             nan_ok=("nonfinite",),
                             specials=(Special("beta", "negative beta", neg, nan_ok=True),)),
        "make_problem": Case(lambda: (bocvs.make_problem, dict(name="hartmann3")), specials=(
            Special("name", "unknown problem", st.just("rosenbrock")),
            Special("variance", "variance <= 0 or NaN", bad_positive),
            Special("budget", "budget <= 0 or NaN", bad_positive),
            Special("costs", "unknown regime or bad costs",
                    st.sampled_from(["free", (0.1, 0.2), (-1.0,) * 7])))),
        "maximize_expected_ucb": Case(
            lambda: (bocvs.maximize_expected_ucb,
                     dict(key=_key(), posterior=_posterior3(), masks=_masks(), w=_w(), beta=2.0,
                          config=_opt_config())),
            arrays={"masks": ALL_KINDS, "w": ALL_KINDS, "key": KEY_KINDS},
            traced=("key", "posterior", "masks", "w", "beta"), nan_ok=("nonfinite",),
            specials=(Special("beta", "negative beta", neg, nan_ok=True),), slow=True),
        "maximize_per_control_set": Case(
            lambda: (bocvs.maximize_per_control_set,
                     dict(key=_key(), value_fn=_value_fn, masks=_masks(),
                          config=_opt_config())),
            arrays={"masks": ALL_KINDS, "key": KEY_KINDS}, traced=("key", "masks"),
            nan_ok=("nonfinite",), slow=True),
        "newton_refine": Case(
            lambda: (bocvs.newton_refine,
                     dict(derivatives=_newton_derivatives, masks=_masks(),
                          starts=jnp.full((3, 2, 3), 0.4), num_steps=2)),
            arrays={"masks": ALL_KINDS, "starts": ALL_KINDS}, traced=("masks", "starts"),
            nan_ok=("nonfinite",),
            specials=(Special("num_steps", "num_steps < 0", st.integers(max_value=-1)),),
            slow=True),
        "problem_spec": Case(lambda: (bocvs.problem_spec,
                                      dict(problem=bocvs.make_problem("hartmann3"))),
                             specials=(Special("dtype", "integer dtype",
                                               st.sampled_from([jnp.int32, jnp.bool_])),)),
        "raise_for_status": Case(lambda: (bocvs.raise_for_status, dict(history=_history())),
                                 specials=(Special("history", "unknown status code",
                                                   st.just(_history()._replace(
                                                       status=jnp.int32(99)))),)),
        "run_bo": Case(lambda: (_run_bo, dict(key=_key(), **good_spec)),
                       arrays={"masks": ("shape",), "costs": ALL_KINDS, "scales": ("shape",),
                               "budget": ("nonfinite", "shape"), "lengthscale": ("shape",),
                               "key": KEY_KINDS},
                       traced=("key",) + tuple(good_spec), flag=bo_ok,
                       specials=(Special("budget", "NaN or negative budget",
                                         st.sampled_from([math.nan, -1.0])),
                                 Special("config", "config is None", st.just(None))),
                       slow=True),
        "select_control_set": Case(
            lambda: (bocvs.select_control_set,
                     dict(values=jnp.asarray([0.1, 0.5, 0.4]), costs=jnp.asarray([0.1, 0.2, 1.0]),
                          eps=0.1, allowed=jnp.ones(3, bool))),
            arrays={"values": ("nonfinite", "shape", "dtype"), "costs": ALL_KINDS,
                    "allowed": ("shape",)},
            traced=("values", "costs", "eps", "allowed"), flag=lambda r: r >= 0,
            # one NaN value marks an unavailable set (documented, used by run_bo): not bad input
            nonfinite_values=(math.inf, -math.inf),
            specials=(Special("values", "all NaN", st.just(jnp.full(3, jnp.nan))),
                      Special("allowed", "nothing allowed", st.just(jnp.zeros(3, bool))),
                      Special("eps", "eps < 0 or NaN", st.one_of(neg, nanv)))),
    }


def _newton_derivatives(set_index, x):
    del set_index
    return -jnp.sum((x - 0.5) ** 2), -2.0 * (x - 0.5), -2.0 * jnp.eye(x.shape[-1])


# --- smc ----------------------------------------------------------------------------------------

def _smc_cases():
    from jaxpapers import smc
    lw = jnp.log(jnp.asarray([0.1, 0.2, 0.3, 0.4]))
    w = jnp.asarray([0.1, 0.2, 0.3, 0.4])
    obs = jnp.asarray([0.1, -0.3, 0.5, 0.2])
    model = smc.LGSSM()
    state = smc.init(jnp.zeros(4))
    all_valid = lambda r: jnp.all(r[1].valid & (r[1].num_nan == 0))  # noqa: E731

    def transition(key, particles, inputs):
        del inputs
        return particles + jax.random.normal(key, particles.shape)

    def potential(particles, inputs):
        return -0.5 * (particles - inputs) ** 2

    # invalid weights under jit: the documented fallback (identity-like ancestors), no flag
    resampler = dict(arrays={"weights": ALL_KINDS, "key": KEY_KINDS}, traced=("key", "weights"),
                     documented=("nonfinite",),
                     specials=(Special("num_samples", "num_samples <= 0", bad_count),))
    cases = {name: Case(functools.partial(lambda f: (f, dict(key=_key(), weights=w)),
                                          getattr(smc, name)), **resampler)
             for name in ("multinomial", "residual", "stratified", "systematic")}
    finite_lw = (math.nan, math.inf)
    weights_only = dict(arrays={"log_weights": ALL_KINDS}, traced=("log_weights",),
                        nan_ok=("nonfinite",), nonfinite_values=finite_lw)
    cases.update({
        "LGSSM": Case(lambda: (smc.LGSSM, {}), specials=(
            Special("transition", "NaN transition", st.sampled_from([math.nan, math.inf])),
            Special("observation_scale", "observation_scale <= 0", bad_positive))),
        "bootstrap_particle_filter": Case(
            lambda: (smc.bootstrap_particle_filter, dict(key=_key(), model=model,
                                                         observations=obs, num_particles=8)),
            arrays={"observations": ALL_KINDS, "key": KEY_KINDS},
            traced=("key", "observations"), flag=lambda r: r.valid,
            specials=(Special("ess_threshold", "ess_threshold outside [0, 1]", bad_unit),
                      Special("num_particles", "num_particles <= 0", bad_count),
                      Special("scheme", "unknown scheme", st.just("bogus")))),
        "kalman_log_likelihood": Case(
            lambda: (smc.kalman_log_likelihood, dict(model=model, observations=obs)),
            arrays={"observations": ALL_KINDS}, traced=("observations",),
            nan_ok=("nonfinite",)),
        "simulate": Case(lambda: (smc.simulate, dict(key=_key(), model=model, num_steps=5)),
                         arrays={"key": KEY_KINDS}, traced=("key",),
                         specials=(Special("num_steps", "num_steps <= 0", bad_count),)),
        "init": Case(lambda: (smc.init, dict(particles=jnp.zeros(4), log_weights=lw)),
                     arrays={"particles": ("shape",), "log_weights": ALL_KINDS},
                     traced=("particles", "log_weights"), nonfinite_values=finite_lw,
                     flag=lambda s: smc.log_weights_are_valid(s.log_weights)),
        "make_step": Case(lambda: (smc.make_step, dict(scheme="systematic", ess_threshold=0.5)),
                          specials=(Special("scheme", "unknown scheme", st.just("bogus")),
                                    Special("ess_threshold", "outside [0, 1]", bad_unit))),
        "particle_filter": Case(
            lambda: (functools.partial(smc.particle_filter, scheme="systematic",
                                       ess_threshold=0.5),
                     dict(key=_key(), transition_fn=transition, log_potential_fn=potential,
                          particles=jnp.zeros(8), inputs=obs)),
            arrays={"particles": ("nonfinite",), "inputs": ("nonfinite",), "key": KEY_KINDS},
            traced=("key", "particles", "inputs"), flag=all_valid,
            specials=(Special("ess_threshold", "outside [0, 1]", bad_unit),)),
        "reweight": Case(lambda: (smc.reweight, dict(state=state, log_potential=lw)),
                         arrays={"log_potential": ALL_KINDS}, traced=("state", "log_potential"),
                         nonfinite_values=finite_lw,
                         flag=lambda r: r[1].valid & (r[1].num_nan == 0)),
        "ess": Case(lambda: (smc.ess, dict(log_weights=lw)), **weights_only),
        "log_ess": Case(lambda: (smc.log_ess, dict(log_weights=lw)), **weights_only),
        "normalize_log_weights": Case(lambda: (smc.normalize_log_weights, dict(log_weights=lw)),
                                      **weights_only),
        "log_weights_are_valid": Case(lambda: (smc.log_weights_are_valid, dict(log_weights=lw)),
                                      # a predicate over arrays of any shape
                                      arrays={"log_weights": ("nonfinite",)},
                                      traced=("log_weights",), flag=lambda r: r,
                                      nonfinite_values=finite_lw),
        "weights_are_valid": Case(lambda: (smc.weights_are_valid, dict(weights=w)),
                                  arrays={"weights": ("nonfinite",)},
                                  traced=("weights",), flag=lambda r: r),
        "maybe_resample": Case(lambda: (smc.maybe_resample, dict(key=_key(), log_weights=lw)),
                               arrays={"log_weights": ALL_KINDS, "key": KEY_KINDS},
                               nonfinite_values=finite_lw,
                               traced=("key", "log_weights", "threshold"),
                               flag=lambda r: smc.log_weights_are_valid(r[1]),
                               specials=(Special("threshold", "outside [0, 1]", bad_unit),
                                         Special("scheme", "unknown scheme", st.just("x")))),
        "resample": Case(lambda: (smc.resample, dict(key=_key(), log_weights=lw)),
                         arrays={"log_weights": ALL_KINDS, "key": KEY_KINDS},
                         nonfinite_values=finite_lw, documented=("nonfinite",),
                         traced=("key", "log_weights"),
                         specials=(Special("num_samples", "num_samples <= 0", bad_count),
                                   Special("scheme", "unknown scheme", st.just("x")))),
    })
    return cases


# --- xit ----------------------------------------------------------------------------------------

def _xit_cases():
    from jaxpapers import xit
    rng = np.random.default_rng(4)
    u = jnp.asarray(rng.normal(size=(4, 5)), jnp.float32)
    v = jnp.asarray(rng.normal(size=(4, 5)), jnp.float32)
    series = jnp.asarray(rng.normal(size=(2, 16)), jnp.float32)
    batch = jnp.asarray(rng.normal(size=(4, 2, 16)), jnp.float32)
    logits = jnp.asarray(rng.normal(size=(6, 3)), jnp.float32)
    labels = jnp.asarray([0, 1, 2, 0, 1, 2], jnp.int32)
    tau = dict(tau=0.2)
    bad_tau = Special("tau", "tau <= 0 or NaN", bad_positive, nan_ok=True)
    augment = lambda f, **kw: Case(  # noqa: E731
        lambda: (f, dict(key=_key(), x=series, **kw)),
        arrays={"x": ("nonfinite",), "key": KEY_KINDS}, traced=("key", "x") + tuple(
            k for k in kw if "sigma" in k), nan_ok=("nonfinite",),
        specials=tuple(Special(k, f"{k} < 0 or NaN", st.one_of(neg, nanv), nan_ok=True)
                       for k in kw if "sigma" in k) + tuple(
            Special(k, f"{k} < 2", st.integers(max_value=1)) for k in kw if "segments" in k))
    return {
        "AugmentConfig": Case(lambda: (xit.AugmentConfig, {}), specials=(
            Special("jitter_sigma", "negative or NaN", st.one_of(neg, nanv)),
            Special("max_segments", "max_segments < 2", st.integers(max_value=1)))),
        "FinetuneConfig": Case(lambda: (xit.FinetuneConfig, {}), specials=(
            Special("learning_rate", "learning_rate <= 0 or NaN", bad_positive),
            Special("mode", "unknown mode", st.just("probe")))),
        "ModelConfig": Case(lambda: (xit.ModelConfig, {}), specials=(
            Special("length", "length <= 0", bad_count),)),
        "Objective": Case(lambda: (xit.Objective, {}), specials=(
            Special("sicc", "negative or NaN weight", st.one_of(neg, nanv)),)),
        "PretrainConfig": Case(lambda: (xit.PretrainConfig, {}), specials=(
            Special("tau", "tau <= 0 or NaN", bad_positive),
            Special("alpha", "alpha <= 0 or NaN", bad_positive),
            Special("batch_size", "batch_size <= 0", bad_count))),
        "accuracy": Case(lambda: (xit.accuracy, dict(logits=logits, labels=labels)),
                         arrays={"logits": ALL_KINDS, "labels": ("shape", "dtype")},
                         traced=("logits", "labels"), nan_ok=("nonfinite",),
                         specials=(Special("labels", "label out of range",
                                           st.sampled_from([-1, 3, 7]).map(
                                               lambda b: labels.at[0].set(b)), nan_ok=True),)),
        "macro_f1": Case(lambda: (xit.macro_f1, dict(predictions=labels[::-1], labels=labels,
                                                     num_classes=3)),
                         arrays={"predictions": ("shape", "dtype"), "labels": ("shape", "dtype")},
                         traced=("predictions", "labels"),
                         specials=(Special("labels", "label out of range",
                                           st.sampled_from([-1, 3, 7]).map(
                                               lambda b: labels.at[0].set(b)), nan_ok=True),
                                   Special("num_classes", "num_classes <= 0", bad_count))),
        "auroc": Case(lambda: (xit.auroc, dict(scores=logits, labels=labels, num_classes=3)),
                      arrays={"scores": ALL_KINDS, "labels": ("shape", "dtype")},
                      traced=("scores", "labels"), nan_ok=("nonfinite",),
                      specials=(Special("labels", "label out of range",
                                        st.sampled_from([-1, 3, 7]).map(
                                            lambda b: labels.at[0].set(b)), nan_ok=True),)),
        "dataset_probabilities": Case(
            lambda: (xit.dataset_probabilities, dict(counts=np.asarray([10, 20, 5]),
                                                     mode="temperature")),
            arrays={"counts": ("nonfinite", "shape")},
            specials=(Special("temperature", "negative or NaN", st.one_of(neg, nanv)),
                      Special("counts", "negative count", st.just(np.asarray([10, -2, 5]))))),
        "encoder_length": Case(lambda: (xit.encoder_length, dict(length=64)), specials=(
            Special("length", "length <= 0", bad_count),
            Special("s1", "stride <= 0", bad_count))),
        "k_per_class": Case(lambda: (xit.k_per_class, dict(labels=np.asarray([0, 1, 0, 1, 2, 2]),
                                                           k=1, seed=0)),
                            arrays={"labels": ("shape", "dtype")},
                            specials=(Special("k", "k <= 0", bad_count),
                                      Special("labels", "negative label",
                                              st.just(np.asarray([0, -1, 0, 1]))))),
        "jitter": augment(xit.jitter, sigma=0.1),
        "weak_scale": augment(xit.weak_scale, sigma=0.1),
        "segment_permute": augment(xit.segment_permute, max_segments=4),
        "strong_augment": augment(xit.strong_augment, jitter_sigma=0.1, max_segments=4),
        "nt_xent": Case(lambda: (xit.nt_xent, dict(u=u, v=v, **tau)),
                        arrays={"u": ALL_KINDS, "v": ALL_KINDS}, traced=("u", "v", "tau"),
                        nan_ok=("nonfinite",), specials=(bad_tau,)),
        "tc_infonce": Case(lambda: (xit.tc_infonce, dict(pred=u[None], fut=v[None])),
                           arrays={"pred": ALL_KINDS, "fut": ALL_KINDS}, traced=("pred", "fut"),
                           nan_ok=("nonfinite",)),
        "sicc": Case(lambda: (xit.sicc, dict(m=u, r=v, perm=jnp.asarray([1, 0, 3, 2]),
                                             lam=jnp.full(4, 0.7), **tau)),
                     arrays={"m": ALL_KINDS, "r": ALL_KINDS, "perm": ("shape", "dtype"),
                             "lam": ALL_KINDS},
                     traced=("m", "r", "perm", "lam", "tau"), nan_ok=("nonfinite",),
                     specials=(bad_tau,
                               Special("perm", "index out of range",
                                       st.sampled_from([-1, 4, 100]).map(
                                           lambda b: jnp.asarray([1, 0, 3, 2]).at[0].set(b)),
                                       nan_ok=True),
                               Special("lam", "lam outside [0, 1]",
                                       st.sampled_from([-0.5, 1.5]).map(
                                           lambda b: jnp.full(4, b)), nan_ok=True))),
        "xd_mixup": Case(lambda: (xit.xd_mixup, dict(key=_key(), x=batch,
                                                     ds_id=jnp.asarray([0, 0, 1, 1]),
                                                     alpha=0.2)),
                         arrays={"x": ("nonfinite", "dtype"), "ds_id": ("shape", "dtype"),
                                 "key": KEY_KINDS},
                         traced=("key", "x", "ds_id", "alpha"), nan_ok=("nonfinite",),
                         specials=(Special("alpha", "alpha <= 0 or NaN", bad_positive,
                                           nan_ok=True),)),
        "sample_batch": Case(
            lambda: (xit.sample_batch, dict(key=_key(), x=batch, offsets=jnp.asarray([0, 2]),
                                            counts=jnp.asarray([2, 2]),
                                            log_probs=jnp.log(jnp.asarray([0.5, 0.5])),
                                            batch_size=3)),
            arrays={"offsets": ("shape",), "counts": ("shape",),
                    "log_probs": ("nonfinite", "shape"), "key": KEY_KINDS},
            nonfinite_values=(math.nan, math.inf), nan_ok=("nonfinite",),
            traced=("key", "x", "offsets", "counts", "log_probs"),
            specials=(Special("batch_size", "batch_size <= 0", bad_count),
                      Special("counts", "empty dataset drawn",
                              st.just(jnp.asarray([2, 0])), nan_ok=True),
                      Special("offsets", "rows outside x", st.just(jnp.asarray([0, 3])),
                              nan_ok=True))),
    }


EXEMPT = {
    "gp": {
        "KERNELS": "constant (name -> kernel function)",
        "MIN_VARIANCE": "constant",
        "FitResult": "result type, built by fit_hypers",
        "GPParams": "plain container; gp_params is the checked constructor",
        "Posterior": "result type, built by condition",
    },
    "bocvs": {
        "COST_REGIMES": "constant", "PROBLEMS": "constant", "STATUS": "constant",
        "BOError": "exception type", "History": "result type, built by run_bo",
        "Policy": "plain container; the policy constructors are walked",
        "Problem": "plain container; make_problem is walked",
        "ProblemSpec": "plain container; its arrays are walked through run_bo",
    },
    "smc": {
        "FilterOutput": "result type", "SMCInfo": "result type",
        "SMCState": "plain container; init is the checked constructor",
        "RESAMPLERS": "constant",
    },
    "xit": {
        "OBJECTIVES": "constant", "Dataset": "host-side container",
        "Pool": "host-side container", "FinetuneState": "result type",
        "PretrainInfo": "result type", "PretrainState": "result type",
        "Classifier": "Flax module; its inputs come through the drivers",
        "ContextTransformer": "Flax module; its inputs come through the drivers",
        "Encoder": "Flax module; its inputs come through the drivers",
        "TemporalContrast": "Flax module; its inputs come through the drivers",
        "available_datasets": "lists files in a directory; no array input",
        "load_dataset": "reads files; the file format checks are tested in tests/xit/test_data.py",
        "build_pool": "reads files through load_dataset",
        "init_finetune": "training driver over Flax parameter trees (not walked yet)",
        "init_pretrain": "training driver over Flax parameter trees (not walked yet)",
        "make_finetune_update": "training driver over Flax parameter trees (not walked yet)",
        "make_pretrain_update": "training driver over Flax parameter trees (not walked yet)",
        "pretrain_loss": "training driver over Flax parameter trees (not walked yet)",
        "evaluate": "training driver over Flax parameter trees (not walked yet)",
    },
}

_CASE_BUILDERS = {"gp": _gp_cases, "bocvs": _bocvs_cases, "smc": _smc_cases, "xit": _xit_cases}


@functools.cache
def cases(package: str) -> dict:
    return _CASE_BUILDERS[package]()


# ----------------------------------------------------------------------------------------------
# corruptions


def _is_key(value) -> bool:
    return hasattr(value, "dtype") and jax.dtypes.issubdtype(value.dtype, jax.dtypes.prng_key)


def _corruptible(value, kind):
    """Whether ``kind`` applies to ``value`` (float leaves for NaN, arrays for shape/dtype)."""
    leaves = jax.tree_util.tree_leaves(value)
    if kind == "int_key":
        return _is_key(value)
    if kind == "nonfinite":
        return any(jnp.issubdtype(jnp.asarray(v).dtype, jnp.floating) for v in leaves)
    return len(leaves) == 1 and not _is_key(value)


def bad_inputs(package: str, name: str):
    """Every bad input of ``name``: ``(label, arg, kind_or_special)``."""
    case = cases(package)[name]
    _, kwargs = built(package, name)
    out = []
    for arg, kinds in case.arrays.items():
        for kind in kinds:
            if arg in kwargs and _corruptible(kwargs[arg], kind):
                out.append((f"{arg}:{kind}", arg, kind))
    for special in case.specials:
        out.append((f"{special.arg}:{special.label}", special.arg, special))
    return out


def _corrupt_leaf(draw, leaf, kind, nonfinite_values=(math.nan, math.inf, -math.inf)):
    a = np.array(leaf)
    if kind == "nonfinite":
        value = draw(st.sampled_from(nonfinite_values))
        if a.ndim == 0:
            return np.asarray(value, a.dtype)
        flat = a.reshape(-1).copy()
        flat[draw(st.integers(0, flat.size - 1))] = value
        return flat.reshape(a.shape)
    if kind == "shape":
        how = draw(st.sampled_from(["extra_axis", "drop_axis", "resize"] if a.ndim else
                                   ["extra_axis"]))
        if how == "extra_axis":
            return np.stack([a, a], axis=draw(st.integers(0, a.ndim)))
        if how == "drop_axis":
            return np.take(a, 0, axis=draw(st.integers(0, a.ndim - 1)))
        axis = draw(st.integers(0, a.ndim - 1))
        grow = a.shape[axis] < 2 or draw(st.booleans())
        return (np.concatenate([a, np.take(a, [0], axis=axis)], axis=axis) if grow
                else np.take(a, range(a.shape[axis] - 1), axis=axis))
    if kind == "dtype":
        if np.issubdtype(a.dtype, np.floating):
            return a.astype(draw(st.sampled_from([np.complex64, np.bool_])))
        return a.astype(np.float32) + 0.5  # indices / labels / masks as fractional floats
    raise AssertionError(kind)


def corrupt(draw, kwargs, arg, kind, nonfinite_values=(math.nan, math.inf, -math.inf)):
    """``kwargs`` with argument ``arg`` corrupted by ``kind`` (a generic kind or a Special)."""
    kwargs = dict(kwargs)
    if isinstance(kind, Special):
        kwargs[arg] = draw(kind.values)
        return kwargs
    value = kwargs[arg]
    if kind == "int_key":
        kwargs[arg] = draw(st.integers(0, 2**31 - 1))
        return kwargs
    leaves, treedef = jax.tree_util.tree_flatten(value)
    if kind == "nonfinite":
        floats = [i for i, v in enumerate(leaves)
                  if jnp.issubdtype(jnp.asarray(v).dtype, jnp.floating)]
        i = draw(st.sampled_from(floats))
        leaves = list(leaves)
        leaves[i] = _corrupt_leaf(draw, leaves[i], kind, nonfinite_values)
        kwargs[arg] = jax.tree_util.tree_unflatten(treedef, leaves)
    else:
        kwargs[arg] = _corrupt_leaf(draw, value, kind)
    return kwargs


# ----------------------------------------------------------------------------------------------
# outcomes


def _names_argument(exc: BaseException, arg: str) -> bool:
    text = str(exc)
    return arg in text or arg.replace("_", " ") in text


def classify(case: Case, kind, arg, call) -> tuple[str, str]:
    """Run ``call()`` and sort the outcome into one of :data:`OUTCOMES` (with a detail)."""
    start = time.perf_counter()
    try:
        result = call()
        result = jax.block_until_ready(result)
    except ValueError as exc:
        if _names_argument(exc, arg):
            return "error", f"{type(exc).__name__}: {str(exc)[:120]}"
        return "crash", f"{type(exc).__name__} not naming {arg!r}: {str(exc)[:160]}"
    except jax.errors.JaxRuntimeError as exc:  # error_if under jit
        if "InvalidInputError" in str(exc) and _names_argument(exc, arg):
            return "error", f"runtime check: {str(exc)[:120]}"
        return "crash", f"{type(exc).__name__}: {str(exc)[:160]}"
    except Exception as exc:  # noqa: BLE001  (any other exception is an internal crash)
        return "crash", f"{type(exc).__name__}: {str(exc)[:160]}"
    if time.perf_counter() - start > HANG_SECONDS:
        return "hang", f"took {time.perf_counter() - start:.0f} s"
    leaves = [np.asarray(v) for v in jax.tree_util.tree_leaves(result)
              if hasattr(v, "dtype") and not _is_key(v)]
    nonfinite = any(np.issubdtype(v.dtype, np.inexact) and np.any(np.isnan(v)) for v in leaves)
    try:
        claims_valid = (None if case.flag is None
                        else bool(np.all(np.asarray(case.flag(result)))))
    except AttributeError:  # the result has no such flag
        claims_valid = None
    if claims_valid is False:
        return "flagged", "validity flag False"
    nan_documented = (kind.nan_ok if isinstance(kind, Special) else kind in case.nan_ok)
    if not isinstance(kind, Special) and kind in case.documented and claims_valid is None:
        return "documented_nan", "documented fallback"
    if nonfinite and nan_documented and claims_valid is None:
        return "documented_nan", "NaN out (documented)"
    if nonfinite and claims_valid:
        return "garbage", "non-finite result with the validity flag True"
    return "garbage", "returned without error or flag" + (" (NaN)" if nonfinite else "")


@functools.cache
def _jitted(package: str, name: str):
    """One jitted wrapper per name, reused so value corruptions do not recompile."""
    fn, _ = built(package, name)

    @functools.partial(jax.jit, static_argnames=("static",))
    def wrapper(traced, static):
        return fn(**traced, **dict(static))
    return wrapper


class _Hashable:
    """Closed-over (static) arguments compared by identity: always retraced per call site."""

    def __init__(self, items):
        self.items = items

    def __iter__(self):
        return iter(self.items)

    def __hash__(self):
        return id(self)

    def __eq__(self, other):
        return self is other


@functools.cache
def built(package: str, name: str):
    """The good call of ``name``, built once."""
    return cases(package)[name].build()


def run_bad_input(package, name, arg, kind, mode, draw):
    case = cases(package)[name]
    fn, kwargs = built(package, name)
    bad = corrupt(draw, kwargs, arg, kind, case.nonfinite_values)
    if mode == "eager":
        return classify(case, kind, arg, lambda: fn(**bad))
    traced = {k: v for k, v in bad.items() if k in case.traced}
    static = tuple((k, v) for k, v in bad.items() if k not in case.traced)
    try:
        hash(static)
    except TypeError:
        static = _Hashable(static)
    return classify(case, kind, arg, lambda: _jitted(package, name)(traced, static))


# ----------------------------------------------------------------------------------------------
# tests


def _all_names(package):
    return importlib.import_module(f"jaxpapers.{package}").__all__


def _params():
    out = []
    for package in PACKAGES:
        for name in _all_names(package):
            if name in EXEMPT.get(package, {}):
                continue
            case = cases(package).get(name)
            if case is None:
                continue  # reported by test_every_public_name_is_walked_or_exempt
            for label, arg, kind in bad_inputs(package, name):
                modes = ("eager",) if case.traced is None else ("eager", "jit")
                for mode in modes:
                    marks = [pytest.mark.slow] if case.slow else []
                    out.append(pytest.param(package, name, arg, kind, mode,
                                            id=f"{package}.{name}[{label}]-{mode}", marks=marks))
    return out


def _record(key, outcome, detail):
    path = os.environ.get("BAD_INPUT_CENSUS")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"input": key, "outcome": outcome, "detail": detail}) + "\n")


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_name_is_walked_or_exempt(package):
    names = set(_all_names(package))
    walked, exempt = set(cases(package)), set(EXEMPT.get(package, {}))
    assert not names - walked - exempt, f"not walked, not exempt: {sorted(names - walked - exempt)}"
    assert not (walked | exempt) - names, f"stale entries: {sorted((walked | exempt) - names)}"
    assert not walked & exempt


@pytest.mark.parametrize(("package", "name", "arg", "kind", "mode"), _params())
@settings(max_examples=EXAMPLES, suppress_health_check=list(HealthCheck),
          phases=(Phase.explicit, Phase.generate), database=None)
@given(data=st.data())
def test_bad_input(package, name, arg, kind, mode, data):
    label = kind.label if isinstance(kind, Special) else kind
    outcome, detail = run_bad_input(package, name, arg, kind, mode, data.draw)
    _record(f"{package}.{name}[{arg}:{label}]-{mode}", outcome, detail)
    assert outcome in PASSING, f"{outcome}: {detail}"
