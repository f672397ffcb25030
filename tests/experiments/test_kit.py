"""The experiment kit: estimates, verdicts, rows and reports, the results diff, the timer."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers.experiments import SCHEMA, Row, Timer, diff_results
from jaxpapers.experiments.report import format_value
from jaxpapers.experiments.stats import Estimate, agree, compare, estimate, paired


def test_estimate_matches_numpy():
    x = np.array([0.3, 1.2, -0.7, 2.5, 0.9])
    e = estimate(x)
    assert e.mean == pytest.approx(x.mean()) and e.n == 5
    assert e.se == pytest.approx(x.std(ddof=1) / math.sqrt(5))
    assert e.median == pytest.approx(0.9)
    assert estimate([4.0]).se is None
    with pytest.raises(ValueError, match="non-finite"):
        estimate([1.0, np.nan])
    dropped = estimate([1.0, np.inf, 3.0], drop_nonfinite=True)
    assert dropped.n == 2 and dropped.mean == 2.0


@pytest.mark.parametrize("a, b, better, verdict", [
    (Estimate(1.0, 0.1), Estimate(2.0, 0.1), "lower", "held"),     # z = -7.1
    (Estimate(1.0, 0.1), Estimate(1.2, 0.1), "lower", "tie"),      # z = -1.4
    (Estimate(3.0, 0.1), Estimate(2.0, 0.1), "lower", "reversed"),
    (Estimate(3.0, 0.1), Estimate(2.0, 0.1), "higher", "held"),
    (Estimate(1.0, 0.2), 1.5, "equal", "held"),                    # z = -2.5, threshold 3
    (Estimate(1.0, 0.1), 1.5, "equal", "reversed"),                # z = -5
])
def test_compare_uses_one_vocabulary(a, b, better, verdict):
    threshold = 3.0 if better == "equal" else 2.0
    c = compare(a, b, better=better, threshold=threshold)
    assert c.verdict == verdict
    se = math.hypot(a.se, getattr(b, "se", 0.0) or 0.0)
    assert c.se == pytest.approx(se) and c.z == pytest.approx((a.mean - np.mean(b.mean
                                                                if isinstance(b, Estimate)
                                                                else b)) / se)


def test_paired_uses_the_per_pair_differences():
    rng = np.random.default_rng(0)
    common = rng.normal(0.0, 10.0, 20)          # large shared noise cancels in pairs
    a, b = common + 1.0, common + 1.3 + rng.normal(0.0, 0.05, 20)
    assert paired(a, b, better="lower").verdict == "held"
    assert compare(estimate(a), estimate(b), better="lower").verdict == "tie"  # unpaired
    assert paired([1.0], [2.0]).verdict == "tie"   # one pair: no standard error
    with pytest.raises(ValueError, match="same nonzero length"):
        paired([1.0, 2.0], [1.0])


def test_agree_and_exact_values():
    assert agree(Estimate(-0.0953, 0.0094), -0.1).verdict == "held"
    assert compare(1.0, 2.0).verdict == "held" and compare(1.0, 1.0).verdict == "tie"


def test_rows_hold_numbers_not_strings():
    Row("q", Estimate(1.0, 0.1), "a claim in words", unit="s")
    with pytest.raises(ValueError, match="Row.ours"):
        Row("q", "1.0 ± 0.1")
    row = Row("q", 2.5, 3, comparison=compare(2.5, 3.0)).to_json()
    assert row["ours"] == 2.5 and row["paper"] == 3 and row["comparison"]["verdict"] == "held"


def test_format_value():
    assert format_value({"mean": 1.23456, "se": 0.0123, "n": 4}) == "1.235 ± 0.012"
    assert format_value({"mean": 12.3, "se": 3.6, "n": 4}) == "12.3 ± 3.6"
    assert format_value(0.000123) == "1.230e-04"
    assert format_value(2.0, "s") == "2 s"
    assert format_value("≤ multinomial") == "≤ multinomial"
    assert format_value(None) == "–"


def test_diff_results_skips_timings_and_honours_rtol():
    a = {"schema": SCHEMA, "config": {"n": 1}, "metrics": {"x": 1.0, "run_s": 3.0},
         "table": [{"section": "", "quantity": "q", "ours": 2.0}]}
    b = {"schema": SCHEMA, "config": {"n": 1}, "metrics": {"x": 1.0 + 1e-9, "run_s": 9.0},
         "table": [{"section": "", "quantity": "q", "ours": 2.5}]}
    found = dict((p, (x, y)) for p, x, y in diff_results(a, b))
    assert set(found) == {"metrics.x", "table[|q].ours"}
    assert [p for p, _, _ in diff_results(a, b, rtol=1e-6)] == ["table[|q].ours"]


def test_timer_compiles_once_per_signature_and_matches_jit():
    timer = Timer()
    f = lambda x, k: jnp.sin(x) * jax.random.normal(k, x.shape)
    timed = timer.jit(f)
    x, key = jnp.linspace(0.0, 1.0, 7), jax.random.key(3)
    out = timed(x, key)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(jax.jit(f)(x, key)))
    timed(x + 1.0, jax.random.key(4))
    assert timer.compilations == 1 and timer.compile_s > 0 and timer.run_s > 0
    timed(jnp.ones(3), key)
    assert timer.compilations == 2
