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
import types
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

PACKAGES = ("gp", "bocvs", "smc", "xit", "meanfield", "diffusion_resampling", "expert_iteration",
            "moving_targets")
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


def _parts3():
    from jaxpapers import bocvs
    return bocvs.acquisition.expected_ucb_parts(_posterior3(), _masks(), _w(), 2.0)


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


def _bo_init(key, masks, costs, scales, budget, noise_sd, lengthscale, config="default"):
    from jaxpapers import bocvs
    spec = bocvs.ProblemSpec(masks, costs, scales, budget, noise_sd, lengthscale)
    config = _bo_config() if config == "default" else config
    return bocvs.init(key, spec, bocvs.ucb_cvs(3), _objective, config)


def _bo_step(key, masks, costs, scales, budget, noise_sd, lengthscale, state="default"):
    from jaxpapers import bocvs
    spec = bocvs.ProblemSpec(masks, costs, scales, budget, noise_sd, lengthscale)
    if isinstance(state, str):
        state = bocvs.init(key, _spec(), bocvs.ucb_cvs(3), _objective, _bo_config())
    return bocvs.step(state, spec, bocvs.ucb_cvs(3), _objective, _bo_config())[1]


def _bo_history(state="default", config="default"):
    from jaxpapers import bocvs
    if isinstance(state, str):
        state = bocvs.init(_key(), _spec(), bocvs.ucb_cvs(3), _objective, _bo_config())
    config = _bo_config() if config == "default" else config
    return bocvs.history(state, _spec(), config)


def _validated_optimizer_config(**kwargs):
    from jaxpapers import bocvs
    return bocvs.OptimizerConfig(**kwargs)


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
        "cumulative_regret": Case(lambda: (bocvs.metrics.cumulative_regret,
                                           dict(history=_history(), f_star=1.0)),
                                  specials=(Special("f_star", "non-finite f_star",
                                                    st.sampled_from([math.nan, math.inf])),)),
        "final_simple_regret": Case(lambda: (bocvs.metrics.final_simple_regret,
                                             dict(history=_history(), f_star=1.0)),
                                    specials=(Special("f_star", "non-finite f_star",
                                                      st.sampled_from([math.nan, math.inf])),)),
        "simple_regret_curve": Case(lambda: (bocvs.metrics.simple_regret_curve,
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
        "make_problem": Case(lambda: (bocvs.problems.make_problem, dict(name="hartmann3")),
                             specials=(
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
            lambda: (bocvs.acquisition.maximize_per_control_set,
                     dict(key=_key(), value_fn=_value_fn, masks=_masks(),
                          config=_opt_config())),
            arrays={"masks": ALL_KINDS, "key": KEY_KINDS}, traced=("key", "masks"),
            nan_ok=("nonfinite",), slow=True),
        "newton_refine": Case(
            lambda: (bocvs.acquisition.newton_refine,
                     dict(derivatives=_newton_derivatives, masks=_masks(),
                          starts=jnp.full((3, 2, 3), 0.4), num_steps=2)),
            arrays={"masks": ALL_KINDS, "starts": ALL_KINDS}, traced=("masks", "starts"),
            nan_ok=("nonfinite",),
            specials=(Special("num_steps", "num_steps < 0", st.integers(max_value=-1)),),
            slow=True),
        "ackley": Case(lambda: (bocvs.problems.ackley, dict(x=jnp.full(4, 0.4))),
                       arrays={"x": ALL_KINDS}, traced=("x",), nan_ok=("nonfinite",)),
        "hartmann3": Case(lambda: (bocvs.problems.hartmann3, dict(x=jnp.full(3, 0.4))),
                          arrays={"x": ALL_KINDS}, traced=("x",), nan_ok=("nonfinite",)),
        "hartmann6": Case(lambda: (bocvs.problems.hartmann6, dict(x=jnp.full(6, 0.4))),
                          arrays={"x": ALL_KINDS}, traced=("x",), nan_ok=("nonfinite",)),
        "sample_inputs": Case(
            lambda: (bocvs.problems.sample_inputs,
                     dict(key=_key(), scales=jnp.full(3, 0.2), num=4)),
            arrays={"scales": ALL_KINDS, "key": KEY_KINDS}, traced=("key", "scales"),
            nan_ok=("nonfinite",),
            specials=(Special("num", "num <= 0", bad_count),
                      Special("scales", "non-positive scale",
                              st.just(jnp.asarray([0.2, -0.1, 0.2])), nan_ok=True))),
        "gp_sample_objective": Case(
            lambda: (bocvs.problems.gp_sample_objective,
                     dict(key=_key(), dim=2, num_points=8)),
            arrays={"key": KEY_KINDS},
            specials=(Special("dim", "dim <= 0", bad_count),
                      Special("num_points", "num_points <= 0", bad_count),
                      Special("lengthscale", "lengthscale <= 0 or NaN", bad_positive),
                      Special("jitter", "negative or NaN jitter", st.one_of(neg, nanv)))),
        "assemble": Case(lambda: (bocvs.acquisition.assemble,
                                  dict(mask_row=_masks()[1], x=jnp.full(3, 0.4), w=_w())),
                         arrays={"mask_row": ALL_KINDS, "x": ALL_KINDS, "w": ALL_KINDS},
                         traced=("mask_row", "x", "w"), nan_ok=("nonfinite",)),
        "expected_ucb_parts": Case(
            lambda: (bocvs.acquisition.expected_ucb_parts,
                     dict(posterior=_posterior3(), masks=_masks(), w=_w(), beta=2.0)),
            arrays={"masks": ALL_KINDS, "w": ALL_KINDS},
            traced=("posterior", "masks", "w", "beta"), nan_ok=("nonfinite",),
            specials=(Special("beta", "negative beta", neg, nan_ok=True),)),
        "expected_ucb_value": Case(
            lambda: (bocvs.acquisition.expected_ucb_value,
                     dict(parts=_parts3(), set_index=1, x=jnp.full(3, 0.4))),
            arrays={"x": ALL_KINDS}, traced=("parts", "set_index", "x"), nan_ok=("nonfinite",)),
        "expected_ucb_derivatives": Case(
            lambda: (bocvs.acquisition.expected_ucb_derivatives,
                     dict(parts=_parts3(), set_index=1, x=jnp.full(3, 0.4))),
            arrays={"x": ALL_KINDS}, traced=("parts", "set_index", "x"), nan_ok=("nonfinite",)),
        "problem_spec": Case(lambda: (bocvs.problem_spec,
                                      dict(problem=bocvs.problems.make_problem("hartmann3"))),
                             specials=(Special("dtype", "integer dtype",
                                               st.sampled_from([jnp.int32, jnp.bool_])),)),
        "raise_for_status": Case(lambda: (bocvs.raise_for_status, dict(history=_history())),
                                 specials=(Special("history", "unknown status code",
                                                   st.just(_history()._replace(
                                                       status=jnp.int32(99)))),)),
        "init": Case(lambda: (_bo_init, dict(key=_key(), **good_spec)),
                     arrays={"masks": ("shape",), "costs": ALL_KINDS, "scales": ("shape",),
                             "budget": ("nonfinite", "shape"), "lengthscale": ("shape",),
                             "key": KEY_KINDS},
                     traced=("key",) + tuple(good_spec), flag=lambda s: s.status == 0,
                     specials=(Special("budget", "NaN or negative budget",
                                       st.sampled_from([math.nan, -1.0])),
                               Special("config", "config is None", st.just(None))),
                     slow=True),
        "step": Case(lambda: (_bo_step, dict(key=_key(), **good_spec)),
                     arrays={"masks": ("shape",), "costs": ("shape", "dtype"),
                             "scales": ("shape",), "lengthscale": ("shape",),
                             "key": KEY_KINDS},
                     traced=("key",) + tuple(good_spec),
                     specials=(Special("state", "not a BOState", st.just((1, 2))),),
                     slow=True),
        "history": Case(lambda: (_bo_history, {}),
                        specials=(Special("state", "not a BOState", st.just((1, 2))),
                                  Special("config", "not a BOConfig", st.just(None)))),
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
        "accuracy": Case(lambda: (xit.metrics.accuracy, dict(logits=logits, labels=labels)),
                         arrays={"logits": ALL_KINDS, "labels": ("shape", "dtype")},
                         traced=("logits", "labels"), nan_ok=("nonfinite",),
                         specials=(Special("labels", "label out of range",
                                           st.sampled_from([-1, 3, 7]).map(
                                               lambda b: labels.at[0].set(b)), nan_ok=True),)),
        "macro_f1": Case(lambda: (xit.metrics.macro_f1,
                                  dict(predictions=labels[::-1], labels=labels, num_classes=3)),
                         arrays={"predictions": ("shape", "dtype"), "labels": ("shape", "dtype")},
                         traced=("predictions", "labels"),
                         specials=(Special("labels", "label out of range",
                                           st.sampled_from([-1, 3, 7]).map(
                                               lambda b: labels.at[0].set(b)), nan_ok=True),
                                   Special("num_classes", "num_classes <= 0", bad_count))),
        "auroc": Case(lambda: (xit.metrics.auroc,
                               dict(scores=logits, labels=labels, num_classes=3)),
                      arrays={"scores": ALL_KINDS, "labels": ("shape", "dtype")},
                      traced=("scores", "labels"), nan_ok=("nonfinite",),
                      specials=(Special("labels", "label out of range",
                                        st.sampled_from([-1, 3, 7]).map(
                                            lambda b: labels.at[0].set(b)), nan_ok=True),)),
        "dataset_probabilities": Case(
            lambda: (xit.data.dataset_probabilities, dict(counts=np.asarray([10, 20, 5]),
                                                     mode="temperature")),
            arrays={"counts": ("nonfinite", "shape")},
            specials=(Special("temperature", "negative or NaN", st.one_of(neg, nanv)),
                      Special("counts", "negative count", st.just(np.asarray([10, -2, 5]))))),
        "encoder_length": Case(lambda: (xit.models.encoder_length, dict(length=64)), specials=(
            Special("length", "length <= 0", bad_count),
            Special("s1", "stride <= 0", bad_count))),
        "k_per_class": Case(lambda: (xit.data.k_per_class,
                                     dict(labels=np.asarray([0, 1, 0, 1, 2, 2]), k=1, seed=0)),
                            arrays={"labels": ("shape", "dtype")},
                            specials=(Special("k", "k <= 0", bad_count),
                                      Special("labels", "negative label",
                                              st.just(np.asarray([0, -1, 0, 1]))))),
        "jitter": augment(xit.augment.jitter, sigma=0.1),
        "weak_scale": augment(xit.augment.weak_scale, sigma=0.1),
        "segment_permute": augment(xit.augment.segment_permute, max_segments=4),
        "strong_augment": augment(xit.augment.strong_augment, jitter_sigma=0.1, max_segments=4),
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
        "chance_levels": Case(lambda: (xit.metrics.chance_levels, dict(cfg=xit.PretrainConfig())),
                              specials=(Special("cfg", "not a PretrainConfig",
                                                st.sampled_from([None, 64, "cfg"])),)),
        "augment_table": Case(
            lambda: (xit.augment.augment_table, dict(cfg=xit.PretrainConfig(), names=["a", "b"])),
            specials=(Special("cfg", "not a PretrainConfig", st.sampled_from([None, 64])),
                      Special("names", "not a sequence of names",
                              st.sampled_from(["ab", [1, 2], [None]])))),
        "xd_mixup": Case(lambda: (xit.xd_mixup, dict(key=_key(), x=batch,
                                                     ds_id=jnp.asarray([0, 0, 1, 1]),
                                                     alpha=0.2)),
                         arrays={"x": ("nonfinite", "dtype"), "ds_id": ("shape", "dtype"),
                                 "key": KEY_KINDS},
                         traced=("key", "x", "ds_id", "alpha"), nan_ok=("nonfinite",),
                         specials=(Special("alpha", "alpha <= 0 or NaN", bad_positive,
                                           nan_ok=True),)),
        "resample": Case(lambda: (xit.data.resample, dict(x=np.ones((2, 5)), length=4)),
                         specials=(Special("length", "length < 2", st.integers(max_value=1)),
                                   Special("x", "not (C, L)", st.sampled_from(
                                       [np.ones(5), np.ones((1, 2, 5))])),
                                   Special("x", "a channel without a finite value", st.just(
                                       np.asarray([[1.0, 2.0], [np.nan, np.inf]]))))),
        "znormalize": Case(lambda: (xit.data.znormalize, dict(x=np.arange(10.0).reshape(2, 5))),
                           arrays={"x": ("nonfinite",)}, nan_ok=("nonfinite",)),
        "split_channels": Case(
            lambda: (xit.data.split_channels, dict(x=np.ones((2, 3, 5), np.float32))),
            specials=(Special("x", "not (N, C, L)", st.sampled_from(
                [np.ones((2, 5)), np.ones((1, 2, 3, 4))])),)),
        "sample_batch": Case(
            lambda: (xit.data.sample_batch, dict(key=_key(), x=batch, offsets=jnp.asarray([0, 2]),
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


# --- meanfield ----------------------------------------------------------------------------------

def _tokens(n=5, d=3, seed=5):
    x = np.random.default_rng(seed).normal(size=(n, d))
    return jnp.asarray(x / np.linalg.norm(x, axis=1, keepdims=True), jnp.float32)


def _mf_config(**kw):
    from jaxpapers import meanfield
    return meanfield.ModelConfig(**{"num_layers": 4, "horizon": 1.0, "width": 8, **kw})


def _sde_with_coeffs(key, x0, beta, attn_scale, sigma_u, sigma_w, qk, value):
    """``Coefficients`` walked through its consumer (a NamedTuple: sde_solve checks it)."""
    from jaxpapers import meanfield
    coeffs = meanfield.Coefficients(beta, attn_scale, sigma_u, sigma_w, qk, value)
    return meanfield.sde_solve(key, x0, _mf_config(), coeffs).x


def _meanfield_cases():
    from jaxpapers import meanfield as mf
    from jaxpapers.meanfield import metrics as mfm
    x = _tokens()
    rng = np.random.default_rng(6)
    energies = jnp.asarray(np.exp(-np.linspace(0, 8, 12))[None] * rng.uniform(0.5, 1.5, (4, 1)),
                           jnp.float32)
    times = jnp.linspace(0.0, 3.0, 12)  # the main window is reached (a flag of the fits)
    neg_nan = st.one_of(neg, nanv)
    free_runs = ("nonfinite", "dtype")
    bad_d = Special("d", "d < 2", st.integers(max_value=1))
    coeff_specials = (Special("beta", "beta < 0 or NaN", neg_nan, nan_ok=True),
                      Special("sigma_u", "sigma_u < 0 or NaN", neg_nan, nan_ok=True),
                      Special("sigma_w", "sigma_w < 0 or NaN", neg_nan, nan_ok=True),
                      Special("attn_scale", "attn_scale not finite",
                              st.sampled_from([math.nan, math.inf]), nan_ok=True))
    sim = lambda f: Case(  # noqa: E731
        lambda: (f, dict(key=_key(), x0=x, config=_mf_config())),
        arrays={"x0": ALL_KINDS, "key": KEY_KINDS}, traced=("key", "x0"),
        nan_ok=("nonfinite",),
        specials=(Special("config", "not a ModelConfig", st.just({"num_layers": 4})),))
    metric = lambda f: Case(lambda: (f, dict(x=x)), arrays={"x": ALL_KINDS},  # noqa: E731
                            traced=("x",), nan_ok=("nonfinite",))
    return {
        "ModelConfig": Case(lambda: (mf.ModelConfig, dict(num_layers=4)), specials=(
            Special("num_layers", "num_layers <= 0", bad_count),
            Special("horizon", "horizon <= 0 or NaN", bad_positive),
            Special("noise", "unknown noise", st.just("brownian")))),
        "Coefficients": Case(
            lambda: (_sde_with_coeffs, dict(key=_key(), x0=x, beta=1.0, attn_scale=1.0,
                                            sigma_u=0.1, sigma_w=0.1, qk=jnp.eye(3),
                                            value=jnp.eye(3))),
            arrays={"qk": ALL_KINDS, "value": ALL_KINDS},
            traced=("key", "x0", "beta", "attn_scale", "sigma_u", "sigma_w", "qk", "value"),
            nan_ok=("nonfinite",), specials=coeff_specials),
        "sde_solve": sim(mf.sde_solve),
        "transformer_forward": sim(mf.transformer_forward),
        "lyapunov_exponent": sim(mf.lyapunov_exponent),
        "strong_error": Case(
            lambda: (mfm.strong_error, dict(key=_key(), x0=x, num_layers=(1, 2),
                                            config=_mf_config(noise="features", scheme="ito"))),
            arrays={"x0": ALL_KINDS, "key": KEY_KINDS}, traced=("key", "x0"),
            nan_ok=("nonfinite",),
            specials=(Special("num_layers", "level not dividing L_ref",
                              st.sampled_from([(3,), (0,), (8,)])),), slow=True),
        "uniform_sphere": Case(lambda: (mf.uniform_sphere, dict(key=_key(), num_tokens=4, d=3)),
                               arrays={"key": KEY_KINDS}, traced=("key",),
                               specials=(Special("num_tokens", "num_tokens <= 0", bad_count),
                                         bad_d)),
        "sample_layer_weights": Case(
            lambda: (mf.sample_layer_weights, dict(key=_key(), d=3, width=4)),
            arrays={"key": KEY_KINDS}, traced=("key",),
            specials=(Special("width", "width <= 0", bad_count),
                      Special("d", "d <= 0", bad_count),
                      Special("sigma_u", "NaN sigma_u", nanv, nan_ok=True))),
        "attention": Case(lambda: (mf.attention, dict(x=x, beta=1.0, qk=jnp.eye(3))),
                          arrays={"x": ALL_KINDS, "qk": ALL_KINDS},
                          traced=("x", "beta", "qk"), nan_ok=("nonfinite",),
                          specials=(Special("beta", "beta < 0 or NaN", neg_nan, nan_ok=True),)),
        "layer_map": Case(lambda: (mf.layer_map, dict(x=x, weights=None, dt=0.1,
                                                      coeffs=mf.Coefficients(),
                                                      activation="relu")),
                          arrays={"x": ALL_KINDS}, traced=("x", "dt"), nan_ok=("nonfinite",),
                          specials=(Special("dt", "dt <= 0 or NaN", bad_positive, nan_ok=True),
                                    Special("coeffs", "wrong-shaped qk",
                                            st.just(mf.Coefficients(qk=jnp.eye(4)))),
                                    Special("activation", "unknown", st.just("gelu")))),
        "energy": Case(lambda: (mfm.energy, dict(x=x, beta=1.0)), arrays={"x": ALL_KINDS},
                       traced=("x", "beta"), nan_ok=("nonfinite",),
                       specials=(Special("beta", "beta < 0 or NaN", neg_nan, nan_ok=True),)),
        "order_parameter": metric(mfm.order_parameter),
        "one_minus_mean_cos": metric(mfm.one_minus_mean_cos),
        "one_minus_mean_cos_sq": metric(mfm.one_minus_mean_cos_sq),
        "diameter": metric(mfm.diameter),
        "chaos_proxies": Case(lambda: (mfm.chaos_proxies, dict(x=x, x_ref=_tokens(8, 3, 7))),
                              arrays={"x": ALL_KINDS, "x_ref": ALL_KINDS},
                              traced=("x", "x_ref", "beta"), nan_ok=("nonfinite",),
                              specials=(Special("beta", "beta < 0 or NaN", neg_nan,
                                                nan_ok=True),)),
        "sliced_wasserstein": Case(
            lambda: (mfm.sliced_wasserstein, dict(key=_key(), x=x, y=_tokens(8, 3, 7),
                                                  num_projections=8)),
            arrays={"x": ALL_KINDS, "y": ALL_KINDS, "key": KEY_KINDS},
            traced=("key", "x", "y"), nan_ok=("nonfinite",),
            specials=(Special("num_projections", "num_projections <= 0", bad_count),)),
        # energies [R, S]: another R or S is legal (S must match times: tested by times)
        "energy_rate": Case(lambda: (mfm.energy_rate, dict(energies=energies, horizon=3.0)),
                            arrays={"energies": free_runs}, traced=("energies", "horizon"),
                            nan_ok=("nonfinite",),
                            specials=(Special("horizon", "horizon <= 0 or NaN", bad_positive,
                                              nan_ok=True),
                                      Special("energies", "negative energy",
                                              st.just(energies.at[0, 3].set(-1.0)),
                                              nan_ok=True))),
        "decay_windows": Case(
            lambda: (mfm.decay_windows, dict(mean_energy=energies.mean(0),
                                             min_energy=energies.min(0), times=times,
                                             min_points=3)),
            arrays={"mean_energy": ALL_KINDS, "min_energy": ("shape", "dtype"),
                    "times": ALL_KINDS},
            traced=("mean_energy", "min_energy", "times"), flag=lambda r: r.reached,
            specials=(Special("drop", "drop outside (0, 1) or NaN", bad_unit),
                      Special("min_points", "min_points < 2", st.integers(max_value=1)),
                      Special("times", "decreasing times", st.just(times[::-1]),
                              nan_ok=True))),
        "energy_decay_fit": Case(
            lambda: (mfm.energy_decay_fit, dict(energies=energies, times=times, min_points=3)),
            arrays={"energies": free_runs, "times": ALL_KINDS},
            traced=("energies", "times"), flag=lambda r: r.reached,
            specials=(Special("drop", "drop outside (0, 1) or NaN", bad_unit),
                      Special("floor", "floor <= 0 or NaN", bad_positive))),
        "energy_decay_bootstrap": Case(
            lambda: (mfm.energy_decay_bootstrap, dict(key=_key(), energies=energies, times=times,
                                                      num_resamples=8, min_points=3)),
            arrays={"energies": free_runs, "times": ALL_KINDS, "key": KEY_KINDS},
            traced=("key", "energies", "times"), nan_ok=("nonfinite",),
            specials=(Special("num_resamples", "num_resamples <= 1", st.integers(max_value=1)),)),
        "expected_initial_energy": Case(
            lambda: (mfm.expected_initial_energy, dict(num_tokens=8, d=3, beta=1.0)),
            specials=(Special("num_tokens", "num_tokens <= 0", bad_count), bad_d,
                      Special("beta", "beta <= 0 or NaN", bad_positive))),
        # u is clipped to [-1, 1] (documented): an infinity is not bad input, NaN gives NaN
        "kappa": Case(lambda: (mf.kappa, dict(u=jnp.linspace(-1, 1, 5), activation="relu", d=3)),
                      arrays={"u": ("nonfinite", "dtype")}, traced=("u", "sigma_u", "sigma_w"),
                      nan_ok=("nonfinite",), nonfinite_values=(math.nan,),
                      specials=(Special("activation", "unknown", st.just("gelu")), bad_d,
                                Special("sigma_u", "sigma_u < 0 or NaN", neg_nan, nan_ok=True),
                                Special("sigma_w", "sigma_w < 0 or NaN", neg_nan,
                                        nan_ok=True))),
        "kernel_constants": Case(
            lambda: (mf.kernel_constants, dict(activation="tanh", d=3, sigma_u=0.1)),
            traced=("sigma_u", "sigma_w"),
            specials=(Special("activation", "unknown", st.just("gelu")), bad_d,
                      Special("sigma_u", "sigma_u < 0 or NaN", neg_nan, nan_ok=True),
                      Special("sigma_w", "sigma_w < 0 or NaN", neg_nan, nan_ok=True))),
        "lambda_bar_prime": Case(
            lambda: (mf.lambda_bar_prime, dict(beta=1.0, activation="relu", d=3,
                                               num_points=101)),
            traced=("beta", "sigma_u", "sigma_w"),
            specials=(Special("beta", "beta <= 0 or NaN", bad_positive, nan_ok=True),
                      Special("sigma_u", "sigma_u < 0 or NaN", neg_nan, nan_ok=True), bad_d,
                      Special("num_points", "num_points < 2", st.integers(max_value=1)))),
    }


# --- diffusion_resampling -----------------------------------------------------------------------

_DR_T = 5  # levels of the walked schedule


def _dr_schedule():
    from jaxpapers import diffusion_resampling as dr
    return dr.make_schedule(_DR_T)


def _toy_eps(x, t, cond=None):
    del cond
    return 0.1 * x + 0.01 * jnp.reshape(t, t.shape + (1,) * (x.ndim - 1))


def _toy_logit(x, t, cond=None):
    del t, cond
    return -jnp.sum(x * x, axis=-1)


def _toy_detector(x0, cond=None):
    del cond
    return jax.nn.sigmoid(x0)  # [B, C = event size]


def _toy_potential(x, t, cond=None):
    del t, cond
    return -jnp.sum(x * x, axis=-1)


def _particles(g=2, k=4, d=2, seed=8):
    return jnp.asarray(np.random.default_rng(seed).normal(size=(g, k, d)), jnp.float32)


def _ddpm_move(key, x, t, clip_x0=None):
    from jaxpapers import diffusion_resampling as dr
    return dr.make_ddpm_step(_toy_eps, _dr_schedule(), clip_x0)(key, x, t)


def _ddim_move(key, x, t, eta=0.5):
    from jaxpapers import diffusion_resampling as dr
    return dr.make_ddim_step(_toy_eps, _dr_schedule(), eta)(key, x, t)


def _ddpm_mean(x, t):
    from jaxpapers import diffusion_resampling as dr
    return dr.ddpm_transition(_toy_eps, _dr_schedule(), x, t).mean()


def _cfg(x, t, cond, guidance=0.5):
    from jaxpapers import diffusion_resampling as dr
    return dr.cfg_eps(lambda z, tt, c: _toy_eps(z, tt) + c[:, None], 3, guidance)(x, t, cond)


def _disc_potential(x, t, cond=None, clip=5.0):
    from jaxpapers import diffusion_resampling as dr
    return dr.discriminator_log_potential(_toy_logit, clip)(x, t, cond)


def _x0_of(x, t, cond=None):
    from jaxpapers import diffusion_resampling as dr
    return dr.predicted_x0(_toy_eps, _dr_schedule())(x, t, cond)


def _detector_potential(x, t, prior=0.2, threshold=0.5):
    from jaxpapers import diffusion_resampling as dr
    return dr.detector_log_potential(_x0_of, _toy_detector, prior, threshold=threshold)(x, t)


def _summed(x, t, weights):
    from jaxpapers import diffusion_resampling as dr
    return dr.sum_log_potentials(_toy_potential, _disc_potential, weights=weights)(x, t)


def _guided(x, t, weight=1.0):
    from jaxpapers import diffusion_resampling as dr
    return dr.discriminator_guidance(_toy_eps, _toy_logit, _dr_schedule(), weight)(x, t)


def _miss_rate_at(t, cond, table, levels=(0, 2)):
    from jaxpapers.diffusion_resampling import metrics as drm
    return drm.tabulated_miss_rate(table, levels, _DR_T)(t, cond)


def _smc(key, x_init, num_steps=_DR_T, resample_schedule=(2,), **kw):
    from jaxpapers import diffusion_resampling as dr
    step = dr.make_ddpm_step(_toy_eps, _dr_schedule())
    return dr.smc_sample(key, step, _toy_potential, resample_schedule, 4, x_init, num_steps,
                         **kw)


def _plain(key, x_init, num_steps=_DR_T):
    from jaxpapers import diffusion_resampling as dr
    return dr.plain_sample(key, dr.make_ddpm_step(_toy_eps, _dr_schedule()), x_init, num_steps)


def _train_denoiser(key, data, steps=2):
    from jaxpapers import diffusion_resampling as dr
    from jaxpapers.diffusion_resampling.models import TimeMLP
    return dr.train_denoiser(key, TimeMLP(features=8, depth=1), data, _dr_schedule(),
                             dr.TrainConfig(steps=steps, batch_size=4, checkpoint_every=2))


def _train_discriminator(key, real, fake):
    from jaxpapers import diffusion_resampling as dr
    from jaxpapers.diffusion_resampling.models import TimeMLP
    return dr.train_discriminator(key, TimeMLP(features=8, depth=1, out_features=1), real,
                                  fake, _dr_schedule(),
                                  dr.TrainConfig(steps=2, batch_size=4, checkpoint_every=2))


def _diffusion_resampling_cases():
    from jaxpapers import diffusion_resampling as dr
    from jaxpapers.diffusion_resampling import metrics as drm
    x = _particles()
    x0 = x[0]
    t_bad = st.sampled_from([-1, _DR_T + 1, _DR_T + 10])
    t_move_bad = st.sampled_from([0, -1, _DR_T + 1, _DR_T + 10])
    anc = jnp.asarray(np.random.default_rng(9).integers(0, 4, size=(3, 2, 4)), jnp.int32)
    scores = jnp.asarray(np.random.default_rng(10).normal(size=(2, 4)), jnp.float32)
    probs = jnp.asarray(np.random.default_rng(11).uniform(size=(2, 6, 3)), jnp.float32)
    table = jnp.asarray(np.random.default_rng(12).uniform(size=(2, 2, 3)), jnp.float32)
    # x is [G, K, *event]: a different event shape is legal, not bad input
    free_event = ("nonfinite", "dtype")
    move = dict(arrays={"x": free_event, "key": KEY_KINDS}, traced=("key", "x", "t"),
                nan_ok=("nonfinite",))
    toy = dr.toy
    pts = jnp.asarray(np.random.default_rng(13).normal(size=(6, 2)), jnp.float32)
    bad_modes = Special("modes", "empty or out-of-range modes",
                        st.sampled_from([(), (8,), (-1, 0)]))
    return {
        "ring_centres": Case(lambda: (toy.ring_centres, {}), specials=(
            Special("num_modes", "num_modes <= 0", bad_count),
            Special("radius", "radius <= 0 or NaN", bad_positive))),
        "sample_ring": Case(lambda: (toy.sample_ring, dict(key=_key(), num=5)),
                            arrays={"key": KEY_KINDS}, traced=("key",),
                            specials=(Special("num", "num <= 0", bad_count),
                                      Special("std", "std <= 0 or NaN", bad_positive),
                                      bad_modes)),
        "soft_mode_detector": Case(lambda: (toy.soft_mode_detector, dict(modes=(0, 1))),
                                   specials=(Special("temperature", "temperature <= 0 or NaN",
                                                     bad_positive), bad_modes)),
        "hard_mode_occurrence": Case(
            lambda: (toy.hard_mode_occurrence, dict(x=pts, modes=(0, 1))),
            # documented: a NaN point is a miss (False), not an error
            arrays={"x": ("shape", "dtype")}, traced=("x",),
            specials=(Special("radius", "radius <= 0 or NaN", bad_positive), bad_modes)),
        "near_mode_fraction": Case(lambda: (toy.near_mode_fraction, dict(x=pts)),
                                   # documented: a NaN point is far from every centre
                                   arrays={"x": ("shape", "dtype")}, traced=("x",),
                                   specials=(Special("radius", "radius <= 0 or NaN",
                                                     bad_positive),)),
        "energy_distance": Case(lambda: (toy.energy_distance, dict(x=pts, y=pts[:4])),
                                arrays={"x": ALL_KINDS, "y": ALL_KINDS}, traced=("x", "y"),
                                nan_ok=("nonfinite",)),
        "frechet_distance": Case(lambda: (toy.frechet_distance,
                                          dict(feats_a=np.asarray(pts), feats_b=np.asarray(pts))),
                                 arrays={"feats_a": ("shape", "nonfinite"),
                                         "feats_b": ("shape", "nonfinite")}),
        "make_schedule": Case(lambda: (dr.make_schedule, dict(num_steps=_DR_T)), specials=(
            Special("num_steps", "num_steps <= 0", bad_count),
            Special("kind", "unknown kind", st.just("sigmoid")),
            Special("beta_start", "beta_start <= 0 or NaN", bad_positive),
            Special("cosine_s", "cosine_s < 0 or NaN", st.one_of(neg, nanv)))),
        "q_sample": Case(lambda: (dr.q_sample, dict(key=_key(), x0=x0, t=jnp.asarray(2),
                                                    schedule=_dr_schedule())),
                         # x0 is [B, *event]: any shape is legal
                         arrays={"x0": ("nonfinite", "dtype"), "key": KEY_KINDS},
                         traced=("key", "x0", "t", "schedule"), nan_ok=("nonfinite",),
                         specials=(Special("t", "level outside [0, T]", t_bad, nan_ok=True),)),
        "epsilon_loss": Case(lambda: (dr.epsilon_loss, dict(key=_key(), eps_fn=_toy_eps, x0=x0,
                                                            schedule=_dr_schedule())),
                             arrays={"x0": ("nonfinite", "dtype"), "key": KEY_KINDS},
                             traced=("key", "x0", "schedule"), nan_ok=("nonfinite",),
                             specials=(Special("eps_fn", "wrong output shape",
                                               st.just(lambda z, t, c: z[:, :1])),)),
        "ddpm_transition": Case(lambda: (_ddpm_mean, dict(x=x, t=jnp.asarray(3))),
                                arrays={"x": ("nonfinite", "dtype")}, traced=("x", "t"),
                                nan_ok=("nonfinite",),
                                specials=(Special("t", "level outside [1, T]", t_move_bad,
                                                  nan_ok=True),)),
        "make_ddpm_step": Case(lambda: (_ddpm_move, dict(key=_key(), x=x, t=jnp.asarray(3))),
                               specials=(Special("t", "level outside [1, T]", t_move_bad,
                                                 nan_ok=True),
                                         Special("clip_x0", "clip_x0 <= 0 or NaN",
                                                 bad_positive)), **move),
        "make_ddim_step": Case(lambda: (_ddim_move, dict(key=_key(), x=x, t=jnp.asarray(3))),
                               specials=(Special("t", "level outside [1, T]", t_move_bad,
                                                 nan_ok=True),
                                         Special("eta", "eta < 0 or NaN",
                                                 st.one_of(neg, nanv))), **move),
        "cfg_eps": Case(lambda: (_cfg, dict(x=x0, t=jnp.full(4, 2), cond=jnp.arange(4))),
                        arrays={"x": ("nonfinite", "dtype")}, traced=("x", "t", "cond"),
                        nan_ok=("nonfinite",),
                        specials=(Special("guidance", "guidance not finite",
                                          st.sampled_from([math.nan, math.inf])),
                                  Special("cond", "one condition per row of x missing",
                                          st.just(jnp.arange(3))))),
        "discriminator_log_potential": Case(
            lambda: (_disc_potential, dict(x=x, t=jnp.asarray(2))),
            arrays={"x": free_event}, traced=("x", "t"), nan_ok=("nonfinite",),
            specials=(Special("clip", "clip <= 0 or NaN", bad_positive),)),
        "predicted_x0": Case(lambda: (_x0_of, dict(x=x, t=jnp.asarray(2))),
                             arrays={"x": free_event}, traced=("x", "t"), nan_ok=("nonfinite",),
                             specials=(Special("t", "level outside [0, T]", t_bad,
                                               nan_ok=True),)),
        "detector_log_potential": Case(
            lambda: (_detector_potential, dict(x=x, t=jnp.asarray(2))),
            arrays={"x": free_event}, traced=("x", "t"), nan_ok=("nonfinite",),
            specials=(Special("prior", "prior outside (0, 1)", bad_unit),
                      Special("threshold", "threshold NaN", nanv))),
        "sum_log_potentials": Case(
            lambda: (_summed, dict(x=x, t=jnp.asarray(2), weights=jnp.asarray([1.0, 1.0]))),
            arrays={"x": free_event, "weights": ALL_KINDS},
            traced=("x", "t", "weights"), nan_ok=("nonfinite",)),
        "discriminator_guidance": Case(
            lambda: (_guided, dict(x=x0, t=jnp.full(4, 2))),
            arrays={"x": ("nonfinite", "dtype")}, traced=("x", "t", "weight"),
            nan_ok=("nonfinite",),
            specials=(Special("t", "level outside [0, T]",
                              t_bad.map(lambda b: jnp.full(4, b)), nan_ok=True),
                      Special("weight", "weight not finite",
                              st.sampled_from([math.nan, math.inf]), nan_ok=True))),
        "detection_probabilities": Case(
            lambda: (drm.detection_probabilities,
                     dict(x0_fn=_x0_of, detector_fn=_toy_detector,
                          trajectory=jnp.stack([x] * _DR_T), levels=(0, 2))),
            arrays={"trajectory": free_event}, traced=("trajectory",), nan_ok=("nonfinite",),
            specials=(Special("levels", "level outside [0, T-1]",
                              st.sampled_from([(0, _DR_T), (-1,)])),)),
        "miss_rate_table": Case(
            lambda: (drm.miss_rate_table, dict(probs=probs, conditions=jnp.asarray(
                [0, 1, 0, 1, 0, 1]), num_conditions=2)),
            # probs [L, N, C]: another L or C is legal
            arrays={"probs": ("nonfinite", "dtype"), "conditions": ("shape", "dtype")},
            traced=("probs", "conditions"), nan_ok=("nonfinite",),
            specials=(Special("conditions", "condition outside [0, num_conditions)",
                              st.sampled_from([-1, 2, 9]).map(
                                  lambda b: jnp.asarray([b, 1, 0, 1, 0, 1])), nan_ok=True),
                      Special("num_conditions", "num_conditions <= 0", bad_count),
                      Special("threshold", "threshold NaN", nanv))),
        "tabulated_miss_rate": Case(
            lambda: (_miss_rate_at, dict(t=jnp.asarray(3), cond=jnp.asarray([0, 1]),
                                         table=table)),
            # any number G of groups; a table with fewer conditions than cond names gives NaN
            arrays={"table": ALL_KINDS, "cond": ("dtype",)},
            traced=("t", "cond", "table"), nan_ok=("nonfinite", "shape"),
            specials=(Special("t", "level outside [0, T]", t_bad, nan_ok=True),
                      Special("cond", "condition outside the table",
                              st.sampled_from([-1, 2, 9]).map(lambda b: jnp.asarray([0, b])),
                              nan_ok=True),
                      Special("levels", "level outside [0, T-1]",
                              st.sampled_from([(0, _DR_T), (-1, 2)])))),
        "initial_ancestors": Case(
            lambda: (drm.initial_ancestors, dict(ancestors=anc)),
            # any [S, G, K] is legal; a lineage through a bad index is -1
            arrays={"ancestors": ("dtype",)}, traced=("ancestors",), flag=lambda r: r >= 0,
            specials=(Special("ancestors", "index outside [0, K)",
                              st.sampled_from([-1, 4, 50]).map(
                                  lambda b: anc.at[1, 0, 2].set(b))),)),
        "num_lineages": Case(
            lambda: (drm.num_lineages, dict(ancestors=anc)),
            arrays={"ancestors": ("dtype",)}, traced=("ancestors",),
            flag=lambda r: r > 0,
            specials=(Special("ancestors", "index outside [0, K)",
                              st.sampled_from([-1, 4, 50]).map(
                                  lambda b: anc.at[1, 0, 2].set(b))),)),
        "select_best": Case(
            lambda: (dr.select_best, dict(particles=x, scores=scores)),
            # particles [G, K, *event]: any event shape is legal
            arrays={"particles": ("dtype",), "scores": ("shape", "dtype")},
            traced=("particles", "scores"), flag=lambda r: r[1] >= 0,
            specials=(Special("scores", "a group all NaN",
                              st.just(scores.at[1].set(jnp.nan))),
                      Special("scores", "an infinite score",
                              st.sampled_from([math.inf, -math.inf]).map(
                                  lambda b: scores.at[0].set(b))))),
        "plain_sample": Case(
            lambda: (_plain, dict(key=_key(), x_init=x)),
            arrays={"x_init": free_event, "key": KEY_KINDS}, traced=("key", "x_init"),
            nan_ok=("nonfinite",),
            specials=(Special("num_steps", "more steps than the schedule's T",
                              st.sampled_from([_DR_T + 1, _DR_T + 10])),)),
        "smc_sample": Case(
            lambda: (_smc, dict(key=_key(), x_init=x)),
            arrays={"x_init": free_event, "key": KEY_KINDS}, traced=("key", "x_init"),
            flag=lambda r: r.valid,
            specials=(Special("x_init", "K != num_particles", st.just(_particles(2, 3))),
                      Special("num_steps", "more steps than the schedule's T",
                              st.sampled_from([_DR_T + 1, _DR_T + 10])),
                      Special("resample_schedule", "level outside [1, T-1]",
                              st.sampled_from([(0,), (_DR_T,), (9,)])),
                      Special("ess_threshold", "outside [0, 1] or NaN", bad_unit),
                      Special("scheme", "unknown scheme", st.just("bogus")),
                      Special("final", "unknown final", st.just("max")))),
        "TrainConfig": Case(lambda: (dr.TrainConfig, {}), specials=(
            Special("steps", "steps <= 0", bad_count),
            Special("learning_rate", "learning_rate <= 0 or NaN", bad_positive),
            Special("weight_decay", "weight_decay < 0 or NaN", st.one_of(neg, nanv)))),
        "train_denoiser": Case(
            lambda: (_train_denoiser, dict(key=_key(), data=x0)),
            arrays={"data": ("nonfinite", "dtype"), "key": KEY_KINDS}, slow=True),
        "train_discriminator": Case(
            lambda: (_train_discriminator, dict(key=_key(), real=x0, fake=x[1])),
            # real [N, *event]: another N is legal
            arrays={"real": ("nonfinite", "dtype"), "fake": ("nonfinite", "dtype"),
                    "key": KEY_KINDS},
            specials=(Special("fake", "event shape differs from real",
                              st.just(jnp.zeros((4, 3)))),), slow=True),
        "discriminator_accuracy": Case(
            lambda: (drm.discriminator_accuracy,
                     dict(key=_key(), logit_fn=_toy_logit, real=x0, fake=x[1],
                          schedule=_dr_schedule(), level=2)),
            arrays={"real": ("nonfinite", "dtype"), "fake": ("nonfinite", "dtype"),
                    "key": KEY_KINDS},
            traced=("key", "real", "fake", "schedule"), nan_ok=("nonfinite",),
            specials=(Special("level", "level outside [0, T]", t_bad, nan_ok=True),)),
    }


# --- expert_iteration ---------------------------------------------------------------------------

_EI_N = 3  # board size of the walked searches and games


def _ei_net():
    from jaxpapers import expert_iteration as ei
    return ei.ApprenticeConfig(channels=4, depth=1, value_hidden=4)


@functools.cache
def _ei_params():
    from jaxpapers import expert_iteration as ei
    module = ei.models.make_apprentice(_ei_net())
    return module.init(jax.random.key(1), jnp.zeros((1, _EI_N, _EI_N, ei.hex.NUM_FEATURES)))


def _ei_search_config():
    from jaxpapers import expert_iteration as ei
    return ei.SearchConfig(num_simulations=8)


def _nan_evaluator(params, state):
    del params
    return jnp.full(state.board.size, jnp.nan, jnp.float32), jnp.float32(0.0)


def _nan_value_evaluator(params, state):
    del params
    return jnp.zeros(state.board.size, jnp.float32), jnp.float32(jnp.nan)


def _ei_search(key, simulations=None, uct_c=None, prior_weight=None, value_weight=None,
               evaluate=None):
    from jaxpapers import expert_iteration as ei
    evaluate = ei.uniform_evaluator if evaluate is None else evaluate
    return ei.search(key, ei.hex.init(_EI_N), None, evaluate, _ei_search_config(),
                     simulations=simulations, uct_c=uct_c, prior_weight=prior_weight,
                     value_weight=value_weight)


def _policy_logits(logits, legal, temperature=1.0):
    """The distribution's normalised logits (its .probs, a softmax of NaN, can read finite
    under jit on the CPU: see policy_distribution)."""
    from jaxpapers import expert_iteration as ei
    return ei.models.policy_distribution(logits, legal, temperature).logits


def _ei_exit_config(**kw):
    from jaxpapers import expert_iteration as ei
    return ei.ExItConfig(**{"board_size": _EI_N, "network": _ei_net(),
                            "search": _ei_search_config(), "games": 2,
                            "positions_per_game": 2, "capacity": 8, "batch_size": 4, **kw})


def _ei_games(key=None):
    from jaxpapers import expert_iteration as ei
    module = ei.models.make_apprentice(_ei_net())
    return ei.selfplay.self_play(jax.random.key(2) if key is None else key, _ei_params(),
                                 module.apply, _EI_N, 2)


def _ei_positions():
    from jaxpapers import expert_iteration as ei
    return ei.selfplay.sample_positions(jax.random.key(3), _ei_games(), 2)


def _label(key, config=None):
    from jaxpapers import expert_iteration as ei
    return ei.selfplay.label_positions(key, _ei_positions(), None, ei.uniform_evaluator,
                                       _ei_search_config() if config is None else config)


def _add(evaluations, positions=None):
    from jaxpapers import expert_iteration as ei
    state = ei.init_exit(jax.random.key(4), _ei_exit_config())
    return ei.add_positions(state, _ei_positions() if positions is None else positions,
                            evaluations).evaluations


def _exit_step(key, count, visit_counts=None):
    from jaxpapers import expert_iteration as ei
    state = ei.init_exit(jax.random.key(4), _ei_exit_config())
    state = ei.add_positions(state, _ei_positions(), 1.0)
    buffer = state.buffer
    if visit_counts is not None:
        buffer = buffer._replace(visit_counts=visit_counts)
    state = state._replace(buffer=buffer, count=count)
    return ei.exit_step(key, state, _ei_exit_config())[1].loss


def _reinforce(key, step=0):
    from jaxpapers import expert_iteration as ei
    config = ei.ReinforceConfig(board_size=_EI_N, network=_ei_net(), games=2, pool_size=2,
                                snapshot_every=1)
    state = ei.init_reinforce(_ei_params(), config)
    return ei.reinforce_step(key, state, step, config)[1].loss


def _match(key, simulations=0, openings=None):
    from jaxpapers import expert_iteration as ei
    module = ei.models.make_apprentice(_ei_net())
    a = ei.evaluate.make_agent(_ei_params(), simulations=simulations)
    b = ei.evaluate.make_agent(_ei_params(), use_network=False, greedy=False)
    return ei.evaluate.play_match(key, a, b, module, _EI_N, _ei_search_config(), openings)


def _expert_iteration_cases():
    from jaxpapers import expert_iteration as ei
    counts = jnp.asarray([[0, 3, 1, 0, 4, 0, 0, 2, 0], [1, 0, 0, 0, 0, 0, 0, 0, 5]], jnp.int32)
    rng = np.random.default_rng(13)
    logits = jnp.asarray(rng.normal(size=(2, 9)), jnp.float32)
    legal = jnp.asarray(rng.uniform(size=(2, 9)) < 0.6).at[:, 0].set(True)
    target = ei.tree_policy_target(jnp.where(legal, counts + 1, 0))
    wins = np.asarray([[0, 3, 5], [2, 0, 4], [1, 2, 0]], np.float64)
    return {
        "SearchConfig": Case(lambda: (ei.SearchConfig, {}), specials=(
            Special("num_simulations", "num_simulations <= 0", bad_count),
            Special("uct_c", "uct_c < 0 or NaN", st.one_of(neg, nanv)),
            Special("value_weight", "value_weight outside [0, 1]", bad_unit))),
        "ApprenticeConfig": Case(lambda: (ei.ApprenticeConfig, {}), specials=(
            Special("channels", "channels <= 0", bad_count),)),
        "ExItConfig": Case(lambda: (ei.ExItConfig, {}), specials=(
            Special("board_size", "board_size <= 0", bad_count),
            Special("learning_rate", "learning_rate <= 0 or NaN", bad_positive),
            Special("target", "unknown target", st.just("mcts")))),
        "ReinforceConfig": Case(lambda: (ei.ReinforceConfig, {}), specials=(
            Special("games", "odd or <= 0 games", st.sampled_from([0, -2, 3])),
            Special("temperature", "temperature <= 0 or NaN", bad_positive))),
        "tree_policy_target": Case(
            lambda: (ei.tree_policy_target, dict(visit_counts=counts, temperature=1.0)),
            arrays={"visit_counts": ("nonfinite", "dtype")}, traced=("visit_counts",),
            nan_ok=("nonfinite",),
            specials=(Special("temperature", "temperature <= 0 or NaN", bad_positive),
                      Special("visit_counts", "negative count",
                              st.just(counts.at[0, 1].set(-2)), nan_ok=True))),
        "chosen_action_target": Case(
            lambda: (ei.chosen_action_target, dict(visit_counts=counts)),
            arrays={"visit_counts": ("nonfinite", "dtype")}, traced=("visit_counts",),
            nan_ok=("nonfinite",),
            specials=(Special("visit_counts", "negative count",
                              st.just(counts.at[0, 1].set(-2)), nan_ok=True),)),
        "policy_distribution": Case(
            lambda: (_policy_logits, dict(logits=logits, legal=legal)),
            arrays={"logits": ALL_KINDS, "legal": ("shape", "dtype")},
            traced=("logits", "legal", "temperature"), nan_ok=("nonfinite",),
            specials=(Special("legal", "no legal move", st.just(jnp.zeros_like(legal)),
                              nan_ok=True),
                      Special("temperature", "temperature <= 0 or NaN", bad_positive,
                              nan_ok=True))),
        "imitation_loss": Case(
            lambda: (ei.imitation_loss, dict(logits=logits, value_logit=jnp.zeros(2),
                                             legal=legal, target=target,
                                             value_target=jnp.asarray([0.0, 1.0]))),
            arrays={"logits": ALL_KINDS, "value_logit": ALL_KINDS, "legal": ("shape",),
                    "target": ALL_KINDS, "value_target": ALL_KINDS},
            traced=("logits", "value_logit", "legal", "target", "value_target"),
            nan_ok=("nonfinite",),
            specials=(Special("target", "target on an illegal move",
                              st.just(jnp.where(legal, 0.0, 1.0) / jnp.sum(
                                  ~legal, axis=-1, keepdims=True)), nan_ok=True),
                      Special("value_target", "value_target outside [0, 1]",
                              st.just(jnp.asarray([-1.0, 2.0])), nan_ok=True))),
        "search": Case(
            lambda: (_ei_search, dict(key=_key())),
            arrays={"key": KEY_KINDS}, traced=("key", "simulations", "uct_c", "prior_weight",
                                               "value_weight"),
            flag=lambda r: r.valid,
            specials=(Special("simulations", "simulations < 0 or above the capacity",
                              st.sampled_from([-5, 9, 100])),
                      Special("uct_c", "uct_c < 0 or NaN", st.one_of(neg, nanv)),
                      Special("prior_weight", "prior_weight < 0 or NaN", st.one_of(neg, nanv)),
                      Special("value_weight", "value_weight outside [0, 1]", bad_unit),
                      Special("evaluate", "evaluator returns NaN",
                              st.sampled_from([_nan_evaluator, _nan_value_evaluator])))),
        "uniform_evaluator": Case(
            lambda: (ei.uniform_evaluator, dict(params=None, state=ei.hex.init(_EI_N))),
            specials=(Special("state", "not a hex state", st.just(jnp.zeros((3, 3)))),)),
        "make_apprentice": Case(
            lambda: (ei.models.make_apprentice, dict(config=_ei_net())), specials=(
                Special("config", "not an ApprenticeConfig", st.just({"channels": 4})),)),
        "network_evaluator": Case(
            lambda: (lambda state: ei.models.network_evaluator(
                ei.models.make_apprentice(_ei_net()))(_ei_params(), state),
                dict(state=ei.hex.init(_EI_N))),
            # the network is fully convolutional: a board of another size is legal
            specials=(Special("state", "not a hex state", st.just(jnp.zeros((3, 3)))),)),
        "self_play": Case(
            lambda: (lambda key, num_games=2, temperature=1.0, board_size=_EI_N:
                     ei.selfplay.self_play(key, _ei_params(),
                                           ei.models.make_apprentice(_ei_net()).apply,
                                           board_size, num_games, temperature).length,
                     dict(key=_key())),
            arrays={"key": KEY_KINDS}, traced=("key", "temperature"),
            specials=(Special("num_games", "num_games <= 0", bad_count),
                      Special("temperature", "temperature <= 0 or NaN", bad_positive,
                              nan_ok=True),
                      Special("board_size", "board_size <= 0", bad_count)), slow=True),
        "sample_positions": Case(
            lambda: (ei.selfplay.sample_positions, dict(key=_key(), games=_ei_games(), per_game=2)),
            arrays={"key": KEY_KINDS}, traced=("key", "games"),
            specials=(Special("per_game", "per_game <= 0 or > 2n - 1",
                              st.sampled_from([0, -1, 2 * _EI_N])),), slow=True),
        "label_positions": Case(
            lambda: (_label, dict(key=_key())), arrays={"key": KEY_KINDS}, traced=("key",),
            specials=(Special("config", "not a SearchConfig", st.just({"num_simulations": 8})),),
            slow=True),
        "init_exit": Case(lambda: (ei.init_exit, dict(key=_key(), config=_ei_exit_config())),
                          arrays={"key": KEY_KINDS},
                          specials=(Special("config", "not an ExItConfig", st.just(None)),),
                          slow=True),
        "generate_positions": Case(
            lambda: (lambda key, config=_ei_exit_config(): ei.generate_positions(
                key, _ei_params(), config)[1], dict(key=_key())),
            arrays={"key": KEY_KINDS}, traced=("key",),
            specials=(Special("config", "not an ExItConfig", st.just(None)),), slow=True),
        "add_positions": Case(
            lambda: (_add, dict(evaluations=1.0)), traced=("evaluations",),
            specials=(Special("evaluations", "negative or NaN evaluations",
                              st.one_of(neg, nanv), nan_ok=True),
                      Special("positions", "positions of another board size",
                              st.builds(lambda: _ei_positions()._replace(
                                  visit_counts=jnp.zeros((4, 16), jnp.int32))))),
            slow=True),
        "exit_step": Case(
            lambda: (_exit_step, dict(key=_key(), count=jnp.int32(4))),
            arrays={"key": KEY_KINDS}, traced=("key", "count", "visit_counts"),
            nan_ok=("nonfinite",),
            specials=(Special("count", "negative count", st.integers(-1000, -1),
                              nan_ok=True),
                      Special("visit_counts", "visit counts of another board size",
                              st.just(jnp.ones((8, 16), jnp.int32)))), slow=True),
        "init_reinforce": Case(
            lambda: (ei.init_reinforce, dict(params=_ei_params(), config=ei.ReinforceConfig(
                board_size=_EI_N, network=_ei_net(), games=2))),
            specials=(Special("config", "not a ReinforceConfig", st.just(None)),), slow=True),
        "reinforce_step": Case(
            lambda: (_reinforce, dict(key=_key())), arrays={"key": KEY_KINDS},
            traced=("key", "step"), nan_ok=("nonfinite",),
            specials=(Special("step", "negative step", st.integers(-1000, -1),
                              nan_ok=True),), slow=True),
        "make_agent": Case(lambda: (ei.evaluate.make_agent, dict(params=None)), specials=(
            Special("simulations", "simulations < 0", st.integers(max_value=-1)),
            Special("uct_c", "uct_c < 0 or NaN", st.one_of(neg, nanv)),
            Special("value_weight", "value_weight outside [0, 1]", bad_unit))),
        "expert_settings": Case(
            lambda: (ei.evaluate.expert_settings, dict(config=_ei_search_config())),
            specials=(Special("config", "not a SearchConfig", st.just(None)),)),
        "play_match": Case(
            lambda: (_match, dict(key=_key())), arrays={"key": KEY_KINDS},
            traced=("key",), flag=lambda r: r.valid,
            specials=(Special("openings", "opening cell outside the board",
                              st.sampled_from([(-1,), (_EI_N * _EI_N,), (0, 99)])),
                      Special("simulations", "simulations above the capacity",
                              st.just(50))), slow=True),
        "bradley_terry": Case(
            lambda: (ei.evaluate.bradley_terry, dict(wins=wins)),
            arrays={"wins": ("nonfinite", "shape")},
            specials=(Special("anchor", "anchor outside [0, K)",
                              st.sampled_from([-1, 3, 5])),
                      Special("prior_games", "prior_games < 0 or NaN", st.one_of(neg, nanv)),
                      Special("max_iter", "max_iter <= 0", bad_count))),
    }


# --- moving_targets -----------------------------------------------------------------------------

def _mt_spec():
    from jaxpapers import moving_targets as mt
    return mt.tasks.delay_task(2, hidden=1, low=0.1, high=0.9)


def _mt_weights(spec=None):
    n = (_mt_spec() if spec is None else spec).kind.shape[-1]
    return jnp.asarray(np.random.default_rng(14).normal(size=(n, n)) * 0.5, jnp.float32)


def _mt_targets():
    spec = _mt_spec()
    return jnp.asarray(np.random.default_rng(15).normal(size=spec.kind.shape), jnp.float32)


def _mt_budget():
    from jaxpapers import moving_targets as mt
    return mt.Budget(evaluations=6, check_every=2)


def _validate(kind, value, activation="logistic"):
    from jaxpapers import moving_targets as mt
    return mt.tasks.validate_events(mt.EventSpec(kind, value), activation).value


def _mt_method():
    from jaxpapers import moving_targets as mt
    return mt.BPTT(minimizer=mt.Minimizer(max_linesearch=3))


def _mt_init(key, value, method=None):
    from jaxpapers import moving_targets as mt
    spec = _mt_spec()._replace(value=value)
    return mt.init(key, spec, _mt_method() if method is None else method).loss


def _mt_state():
    from jaxpapers import moving_targets as mt
    return mt.init(jax.random.key(5), _mt_spec(), _mt_method())


def _mt_step(key, value, budget=None):
    from jaxpapers import moving_targets as mt
    spec = _mt_spec()._replace(value=value)
    return mt.step(key, _mt_state(), spec, _mt_method(),
                   _mt_budget() if budget is None else budget)[0].loss


def _mt_evaluate(key, value):
    from jaxpapers import moving_targets as mt
    spec = _mt_spec()._replace(value=value)
    return mt.evaluate(key, _mt_state(), spec, _mt_method(), _mt_budget()).free_run_error


def _mt_train(key, value):
    from jaxpapers import moving_targets as mt
    spec = _mt_spec()._replace(value=value)
    return mt.train(key, spec, _mt_method(), _mt_budget())


def _mt_summarize(value):
    from jaxpapers import moving_targets as mt
    spec = _mt_spec()._replace(value=value)
    return mt.summarize(_mt_state(), spec, _mt_method())


def _mt_targets_of(value, method=None):
    from jaxpapers import moving_targets as mt
    spec = _mt_spec()._replace(value=value)
    return mt.moving_targets_of(_mt_state(), spec, _mt_method() if method is None else method)


def _moving_targets_cases():
    from jaxpapers import moving_targets as mt
    spec = _mt_spec()
    W, Xh = _mt_weights(), _mt_targets()
    value = spec.value
    bad_value = (Special("value", "target 3.0 or NaN target",
                         st.sampled_from([
                             value.at[0, 1, 0].set(3.0),
                             value.at[0, 1, 2].set(jnp.nan)]), nan_ok=True),)
    kinds = ALL_KINDS
    on_spec = dict(arrays={"W": kinds, "spec": ("nonfinite",)}, traced=("W", "spec"),
                   nan_ok=("nonfinite",))
    with_targets = dict(arrays={"W": kinds, "Xh": kinds, "spec": ("nonfinite",)},
                        traced=("W", "Xh", "spec"), nan_ok=("nonfinite",))
    lam_bad = Special("lam", "lam < 0 or NaN", st.one_of(neg, nanv), nan_ok=True)
    trainer = lambda cls, field, values: Case(  # noqa: E731
        lambda: (cls, {}), specials=(Special(field, f"bad {field}", values),
                                     Special("init_scale", "init_scale <= 0 or NaN",
                                             bad_positive)))
    driver = dict(arrays={"key": KEY_KINDS, "value": ("nonfinite", "shape")},
                  traced=("key", "value"), nan_ok=("nonfinite",), specials=bad_value)
    return {
        "Budget": Case(lambda: (mt.Budget, {}), specials=(
            Special("evaluations", "evaluations <= 0", bad_count),
            Special("threshold", "threshold <= 0 or NaN", bad_positive),
            Special("tolerance", "tolerance outside [0, 1) or NaN", bad_unit))),
        "Minimizer": Case(lambda: (mt.Minimizer, {}), specials=(
            Special("method", "unknown method", st.just("sgd")),
            Special("learning_rate", "learning_rate <= 0 or NaN", bad_positive),
            Special("gtol", "gtol < 0 or NaN", st.one_of(neg, nanv)))),
        "MTVarpro": trainer(mt.MTVarpro, "lam", st.one_of(neg, nanv)),
        "MTJoint": trainer(mt.MTJoint, "power", st.integers(max_value=0)),
        "MTAlternating": trainer(mt.MTAlternating, "inner", bad_count),
        "MTShooting": trainer(mt.MTShooting, "segment", bad_count),
        "BPTT": Case(lambda: (mt.BPTT, {}), specials=(
            Special("init_scale", "init_scale <= 0 or NaN", bad_positive),)),
        "RandomSearch": Case(lambda: (mt.RandomSearch, {}), specials=(
            Special("scale", "scale <= 0 or NaN", bad_positive),
            Special("batch", "batch <= 0", bad_count))),
        "Hybrid": Case(lambda: (mt.Hybrid, {}), specials=(
            Special("fraction", "fraction outside (0, 1) or NaN", bad_unit),
            Special("second", "not a weight trainer", st.just(mt.MTVarpro())))),
        "validate_events": Case(
            lambda: (_validate, dict(kind=spec.kind, value=spec.value)),
            arrays={"kind": ("shape", "dtype"), "value": ("nonfinite", "shape")},
            traced=("kind", "value"), nan_ok=("nonfinite",),
            specials=(Special("kind", "kind outside {0, 1, 2}",
                              st.sampled_from([7, -1]).map(lambda b: spec.kind.at[0, 0, 0].set(b)),
                              nan_ok=True),
                      Special("value", "target outside the range of f",
                              st.just(value.at[0, 1, 0].set(3.0)), nan_ok=True),
                      Special("activation", "unknown", st.just("relu")))),
        "make_events": Case(
            lambda: (mt.tasks.make_events, dict(input_mask=spec.kind == mt.tasks.INPUT,
                                          target_mask=spec.kind == mt.tasks.TARGET,
                                          values=spec.value)),
            arrays={"values": ("nonfinite", "shape"), "input_mask": ("shape",)},
            traced=("input_mask", "target_mask", "values"), nan_ok=("nonfinite",),
            specials=(Special("space", "unknown space", st.just("hidden")),
                      Special("target_mask", "overlapping masks",
                              st.just(spec.kind != mt.tasks.HIDDEN), nan_ok=True))),
        "activation_fns": Case(
            lambda: (mt.tasks.activation_fns, dict(activation="tanh")), specials=(
                Special("activation", "unknown", st.just("relu")),)),
        "compose": Case(lambda: (mt.losses.compose, dict(spec=spec, Xh=Xh)),
                        arrays={"Xh": kinds, "spec": ("nonfinite",)}, traced=("spec", "Xh"),
                        nan_ok=("nonfinite",)),
        "free_run": Case(lambda: (mt.losses.free_run, dict(W=W, spec=spec)), **on_spec),
        "free_run_error": Case(lambda: (mt.losses.free_run_error, dict(W=W, spec=spec)), **on_spec),
        "bptt_loss": Case(lambda: (mt.losses.bptt_loss, dict(W=W, spec=spec)), **on_spec),
        "one_step": Case(lambda: (mt.losses.one_step, dict(W=W, spec=spec, Xh=Xh)), **with_targets),
        "one_step_error": Case(lambda: (mt.losses.one_step_error, dict(W=W, spec=spec, Xh=Xh)),
                               **with_targets),
        "act_deficit": Case(lambda: (mt.losses.act_deficit, dict(W=W, Xh=Xh, spec=spec)),
                            specials=(Special("alpha", "alpha < 0 or NaN",
                                              st.one_of(neg, nanv), nan_ok=True),),
                            **with_targets),
        "out_deficit": Case(lambda: (mt.losses.out_deficit, dict(W=W, Xh=Xh, spec=spec)),
                            specials=(Special("power", "power <= 0", bad_count),),
                            **with_targets),
        "shooting_loss": Case(lambda: (mt.losses.shooting_loss, dict(W=W, Xh=Xh, spec=spec,
                                                              segment=2)),
                              specials=(Special("segment", "segment <= 0", bad_count),),
                              **with_targets),
        "solve_weights": Case(
            lambda: (mt.losses.solve_weights, dict(Yall=mt.losses.compose(spec, Xh)[0],
                                            Xall=mt.losses.compose(spec, Xh)[1],
                                            mask=mt.losses.compose(spec, Xh)[0][:, 1:] > -1)),
            arrays={"Yall": kinds, "Xall": kinds, "mask": ("shape",)},
            traced=("Yall", "Xall", "mask", "lam"), nan_ok=("nonfinite",),
            specials=(lam_bad, Special("method", "unknown method", st.just("qr")))),
        "solve_events": Case(lambda: (mt.losses.solve_events, dict(Xh=Xh, spec=spec)),
                             arrays={"Xh": kinds, "spec": ("nonfinite",)},
                             traced=("Xh", "spec", "lam"), nan_ok=("nonfinite",),
                             specials=(lam_bad,)),
        "reduced_act": Case(lambda: (mt.losses.reduced_act, dict(Xh=Xh, spec=spec)),
                            arrays={"Xh": kinds, "spec": ("nonfinite",)},
                            traced=("Xh", "spec", "lam"), nan_ok=("nonfinite",),
                            specials=(lam_bad,)),
        "reduced_act_grad": Case(lambda: (mt.losses.reduced_act_grad, dict(Xh=Xh, spec=spec)),
                                 arrays={"Xh": kinds, "spec": ("nonfinite",)},
                                 traced=("Xh", "spec", "lam"), nan_ok=("nonfinite",),
                                 specials=(lam_bad,)),
        "curvature_avoidance": Case(lambda: (mt.curvature_avoidance, {}), specials=(
            Special("decay", "decay outside [0, 1) or NaN", bad_unit),
            Special("eps", "eps < 0 or NaN", st.one_of(neg, nanv)))),
        "delay_task": Case(lambda: (mt.tasks.delay_task, dict(delay=2)), specials=(
            Special("delay", "delay <= 0", bad_count),
            Special("hidden", "hidden < 0", st.integers(max_value=-1)),
            Special("high", "high outside the range of f or NaN",
                    st.sampled_from([1.5, -0.5, math.nan])))),
        "limit_cycle_task": Case(lambda: (mt.tasks.limit_cycle_task, {}), specials=(
            Special("periods", "periods <= 0", bad_count),
            Special("low", "low outside the range of f or NaN",
                    st.sampled_from([-0.5, 1.5, math.nan])))),
        "parity_task": Case(lambda: (mt.tasks.parity_task, {}), specials=(
            Special("length", "length < 2", st.integers(max_value=1)),
            Special("pulses", "pulse outside the sequence",
                    st.just(((0, 20), (3,)))))),
        "latch_weights": Case(lambda: (mt.tasks.latch_weights, {}), specials=(
            Special("hidden", "hidden <= 0", bad_count),
            Special("self_weight", "non-finite weight",
                    st.sampled_from([math.nan, math.inf])))),
        "init": Case(lambda: (_mt_init, dict(key=_key(), value=value)),
                     **{**driver, "specials": bad_value + (
                         Special("method", "not a trainer", st.just("bptt")),)}),
        "step": Case(lambda: (_mt_step, dict(key=_key(), value=value)), **driver),
        "evaluate": Case(lambda: (_mt_evaluate, dict(key=_key(), value=value)), **driver),
        "train": Case(lambda: (_mt_train, dict(key=_key(), value=value)),
                      slow=True, **driver),
        "summarize": Case(lambda: (_mt_summarize, dict(value=value)),
                          arrays={"value": ("nonfinite", "shape")}, traced=("value",),
                          nan_ok=("nonfinite",), specials=bad_value),
        "moving_targets_of": Case(lambda: (_mt_targets_of, dict(value=value)),
                                  arrays={"value": ("nonfinite", "shape")}, traced=("value",),
                                  nan_ok=("nonfinite",),
                                  specials=(Special("method", "not a trainer",
                                                    st.just("bptt")),)),
    }


_XIT_DRIVER = "Flax training driver: not walked (a case needs a model, a pool, optimiser state)"

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
        "ExpectedUCBParts": "result type, built by expected_ucb_parts",
        "BOState": "plain container; init is the checked constructor",
        "BOInfo": "result type, built by step",
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
        "OBJECTIVES": "constant", "AUGMENT_DRAWS": "constant", "WEAK_AUGMENT": "constant",
        "SAMPLING_MODES": "constant", "BUNDLED": "constant", "BUNDLE_DIR": "constant",
        "Dataset": "host-side container",
        "Pool": "host-side container", "FinetuneState": "result type",
        "FinetuneInfo": "result type", "TSFile": "result type, built by read_ts",
        "TSFormatError": "exception type",
        "PretrainInfo": "result type", "PretrainState": "result type",
        "Classifier": "Flax module; its inputs come through the drivers",
        "ContextTransformer": "Flax module; its inputs come through the drivers",
        "Encoder": "Flax module; its inputs come through the drivers",
        "TemporalContrast": "Flax module; its inputs come through the drivers",
        "available_datasets": "lists files in a directory; no array input",
        "load_dataset": "reads files; the file format checks are tested in tests/xit/test_data.py",
        "read_ts": "reads files; the file format checks are tested in tests/xit/test_data.py",
        "build_pool": "reads files through load_dataset",
        "init_finetune": _XIT_DRIVER,
        "init_pretrain": _XIT_DRIVER,
        "make_finetune_step": _XIT_DRIVER,
        "make_pretrain_step": _XIT_DRIVER,
        "pretrain_loss": _XIT_DRIVER,
        "evaluate": _XIT_DRIVER,
    },
    "meanfield": {
        "ACTIVATIONS": "constant", "DecayFit": "result type", "DecayWindows": "result type",
        "KernelConstants": "result type", "Saved": "result type", "Trajectory": "result type",
        "MLPWeights": "plain container; sample_layer_weights is the checked constructor",
    },
    "diffusion_resampling": {
        "SMCOutput": "result type",
        "Schedule": "plain container; make_schedule is the checked constructor",
        "TimeMLP": "Flax module; its inputs come through the training drivers",
        "ConvDenoiser": "Flax module; its inputs come through the training drivers",
        "ConvDiscriminator": "Flax module; its inputs come through the training drivers",
        "eps_fn_from": "closes a Flax module over its parameters; the call is module.apply",
        "logit_fn_from": "closes a Flax module over its parameters; the call is module.apply",
    },
    "expert_iteration": {
        "Agent": "plain container; make_agent is the checked constructor",
        "EloFit": "result type", "ExItState": "result type", "ExItInfo": "result type",
        "Games": "result type", "ReinforceInfo": "result type",
        "MatchResult": "result type", "Positions": "result type",
        "ReinforceState": "result type", "SearchOutput": "result type", "Tree": "result type",
        "hex": "the game module (States from hex.init; an illegal move sets State.illegal)",
    },
    "moving_targets": {
        "INPUT": "constant", "TARGET": "constant", "HIDDEN": "constant",
        "EventSpec": "plain container; validate_events / make_events check it",
        "TrainState": "result type", "TrainInfo": "result type", "TrainSummary": "result type",
    },
}

_CASE_BUILDERS = {"gp": _gp_cases, "bocvs": _bocvs_cases, "smc": _smc_cases, "xit": _xit_cases,
                  "meanfield": _meanfield_cases,
                  "diffusion_resampling": _diffusion_resampling_cases,
                  "expert_iteration": _expert_iteration_cases,
                  "moving_targets": _moving_targets_cases}


#: compile-heavy names of the later packages, run with ``-m slow`` only (the default run must stay
#: well under 90 s on two cores; measured per name with a timing pass over every bad input)
SLOW = {
    "meanfield": {"lyapunov_exponent", "sliced_wasserstein", "chaos_proxies",
                  "energy_decay_bootstrap"},
    "diffusion_resampling": {"smc_sample", "plain_sample", "epsilon_loss",
                             "detection_probabilities", "ddpm_transition", "make_ddpm_step",
                             "discriminator_guidance"},
    "expert_iteration": {"search", "network_evaluator"},
    "moving_targets": {"init", "step", "evaluate", "summarize", "moving_targets_of",
                       "solve_weights", "reduced_act_grad"},
}


@functools.cache
def cases(package: str) -> dict:
    built_cases = _CASE_BUILDERS[package]()
    slow = SLOW.get(package, set())
    assert slow <= set(built_cases), f"SLOW names without a case: {slow - set(built_cases)}"
    return {name: dataclasses.replace(case, slow=True) if name in slow else case
            for name, case in built_cases.items()}


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
    # building a good call can be costly (games, networks): only when a value must be looked at
    needs_values = any(kind != "int_key" for kinds in case.arrays.values() for kind in kinds)
    kwargs = built(package, name)[1] if needs_values else None
    out = []
    for arg, kinds in case.arrays.items():
        for kind in kinds:
            if kwargs is None or (arg in kwargs and _corruptible(kwargs[arg], kind)):
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
    """The public names of a package: its ``__all__`` and those of the public submodules it lists
    there (``jaxpapers.xit.data``, ...), one flat set (names are unique within a package). A
    submodule named in ``EXEMPT`` stays one name (``expert_iteration.hex``: the game, walked by
    its own tests)."""
    mod = importlib.import_module(f"jaxpapers.{package}")
    names = []
    for name in mod.__all__:
        value = getattr(mod, name)
        if isinstance(value, types.ModuleType) and name not in EXEMPT.get(package, {}):
            names.extend(n for n in value.__all__ if n not in names)
        elif name not in names:
            names.append(name)
    return names


def _params(packages=PACKAGES):
    out = []
    for package in packages:
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


def _check_bad_input(package, name, arg, kind, mode, data):
    label = kind.label if isinstance(kind, Special) else kind
    outcome, detail = run_bad_input(package, name, arg, kind, mode, data.draw)
    _record(f"{package}.{name}[{arg}:{label}]-{mode}", outcome, detail)
    assert outcome in PASSING, f"{outcome}: {detail}"


def _walker(package):
    """The walk of one package as its own test function: hypothesis nests the settings of a
    test function at each of its runs, and one function over every package's inputs (about
    1,400) reached Python's recursion limit after about 950 of them."""

    @pytest.mark.parametrize(("package", "name", "arg", "kind", "mode"), _params((package,)))
    @settings(max_examples=EXAMPLES, suppress_health_check=list(HealthCheck),
              phases=(Phase.explicit, Phase.generate), database=None)
    @given(data=st.data())
    def test(package, name, arg, kind, mode, data):
        _check_bad_input(package, name, arg, kind, mode, data)

    test.__name__ = test.__qualname__ = f"test_bad_input_{package}"
    return test


for _package in PACKAGES:
    globals()[f"test_bad_input_{_package}"] = _walker(_package)
